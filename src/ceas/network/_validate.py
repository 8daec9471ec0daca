"""One phrase per condition: the argument checks every network module shares.

Messages name the argument, say what is allowed (bracket notation for ranges) and echo the value received, e.g.
``fidelity must be in [0.25, 1], got 1.3``. Checks run before any state changes, so a rejected call leaves the
ledger exactly as it was.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np

from ceas.errors import UnknownNameError, ValidationError


def interval(
    low: float | None, high: float | None, low_open: bool = False, high_open: bool = False
) -> str:
    """Bracket notation for an interval, e.g. ``[0.25, 1]`` or ``(0, inf)``."""
    left = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
    right = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
    return f"{left}, {right}"


def _inside(v: float, low, high, low_open, high_open) -> bool:
    return (low is None or (v > low if low_open else v >= low)) and (
        high is None or (v < high if high_open else v <= high)
    )


def check_real(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a float after checking it is a real number in the stated interval."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(float(value))
    if ok:
        v = float(value)
        ok = (allow_inf or math.isfinite(v)) and _inside(v, low, high, low_open, high_open)
    if not ok:
        raise ValidationError(
            f"{name} must be in {interval(low, high, low_open, high_open)}, got {value!r}"
        )
    return float(value)


def check_int(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int after checking it is an integer in ``[low, high]``."""
    ok = isinstance(value, Integral) and not isinstance(value, bool)
    if ok:
        ok = _inside(int(value), low, high, False, False)
    if not ok:
        raise ValidationError(f"{name} must be an integer in {interval(low, high)}, got {value!r}")
    return int(value)


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
