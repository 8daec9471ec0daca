"""One phrase per condition: the argument checks every network module shares.

Messages name the argument, say what is allowed (bracket notation for ranges) and echo the value received, e.g.
``fidelity must be in [0.25, 1], got 1.3``. Checks run before any state changes, so a rejected call leaves the
ledger exactly as it was.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np

from ceas._validate import check_int, check_real, interval
from ceas.errors import UnknownNameError, ValidationError

__all__ = ["check_int", "check_real", "check_values", "interval", "lookup"]


def check_values(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> np.ndarray:
    """Return ``value`` as a float64 array (any shape) after checking every entry lies in the interval.

    The message names the first offending entry, e.g. ``fidelity must be in [0.25, 1], got 1.3``.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be real numbers, got {value!r}") from exc
    ok = ~np.isnan(arr)
    if not allow_inf:
        ok &= np.isfinite(arr)
    with np.errstate(invalid="ignore"):
        if low is not None:
            ok &= arr > low if low_open else arr >= low
        if high is not None:
            ok &= arr < high if high_open else arr <= high
    if not ok.all():
        bad = arr[~ok].flat[0]
        raise ValidationError(
            f"{name} must be in {interval(low, high, low_open, high_open)}, got {bad:g}"
        )
    return arr


def lookup(kind: str, name: str, registry: Iterable[str]) -> str:
    """Return ``name`` if it is in ``registry``; otherwise raise UnknownNameError suggesting the closest name."""
    names = list(registry)
    if isinstance(name, str) and name in names:
        return name
    hint = difflib.get_close_matches(str(name), names, n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise UnknownNameError(
        f"{kind} {name!r} is unknown{suggestion}; allowed: one of {', '.join(names)}"
    )
