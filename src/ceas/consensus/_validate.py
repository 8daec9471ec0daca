"""One phrase per condition: the array checks of the consensus layer (scalar checks come from ``ceas._validate``).

Messages name the argument, say what is allowed (bracket notation for ranges) and echo the value received, e.g.
``fidelity must be in [0.25, 1], got 1.3``.
"""

from __future__ import annotations

import numpy as np

from ceas._validate import check_int, check_real
from ceas.errors import ValidationError

__all__ = ["check_array", "check_int", "check_real"]


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
