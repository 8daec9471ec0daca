"""One phrase per condition: the scalar argument checks every layer shares.

Messages name the argument, say what is allowed (bracket notation for ranges) and echo the value received, e.g.
``fidelity must be in [0.25, 1], got 1.3``. Layers add their own checks (arrays, registries) on top of these.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from ceas.errors import ValidationError


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def interval(
    low: float | None, high: float | None, low_open: bool = False, high_open: bool = False
) -> str:
    """Bracket notation for an interval, e.g. ``[0.25, 1]`` or ``(0, inf)``."""
    left = "(-inf" if low is None else ("(" if low_open else "[") + _num(low)
    right = "inf)" if high is None else _num(high) + (")" if high_open else "]")
    return f"{left}, {right}"


def _inside(v: float, low, high, low_open: bool, high_open: bool) -> bool:
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
    """Return ``value`` as a float after checking it is a real number (finite unless ``allow_inf``) in the
    stated interval."""
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
