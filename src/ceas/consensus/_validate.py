"""One phrase per condition: the argument checks every consensus module shares.

Messages name the argument, say what is allowed (bracket notation for ranges) and echo the value received, e.g.
``fidelity must be in [0.25, 1], got 1.3``.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from ceas.errors import ValidationError


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(-inf" if low is None else ("(" if low_open else "[") + _num(low)
    right = "inf)" if high is None else _num(high) + (")" if high_open else "]")
    return f"{left}, {right}"


def check_real(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float after checking it is a finite real in the stated interval."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (low is None or (v > low if low_open else v >= low)) and (
            high is None or (v < high if high_open else v <= high)
        )
    if not ok:
        raise ValidationError(
            f"{name} must be in {_interval(low, high, low_open, high_open)}, got {value!r}"
        )
    return float(value)


def check_int(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int after checking it is an integer in ``[low, high]``."""
    ok = isinstance(value, Integral) and not isinstance(value, bool)
    if ok:
        ok = (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        raise ValidationError(
            f"{name} must be an integer in {_interval(low, high, False, False)}, got {value!r}"
        )
    return int(value)


def check_array(
    name: str,
    value: object,
    *,
    ndim: int,
    low: float | None = None,
    high: float | None = None,
) -> np.ndarray:
    """Return ``value`` as a new float64 array after checking its rank, finiteness and range.

    The copy means callers can never mutate what they were given.
    """
    try:
        arr = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{name} must be a real {ndim}-D array, got {type(value).__name__}"
        ) from exc
    if arr.ndim != ndim:
        raise ValidationError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.argwhere(bad)[:3].tolist()
        raise ValidationError(f"{name} must be finite, got non-finite entries at {where}")
    if low is not None and arr.size and arr.min() < low:
        raise ValidationError(f"{name} must be >= {low:g}, got minimum {arr.min():g}")
    if high is not None and arr.size and arr.max() > high:
        raise ValidationError(f"{name} must be <= {high:g}, got maximum {arr.max():g}")
    return arr
