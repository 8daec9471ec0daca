"""Input checks shared by the learning layer: one phrase per condition, raised before any compute.

Every message names the argument, states what is allowed and echoes what was received, e.g.
``"theta must have shape (N, 32), got (50, 31)"``.
"""

from __future__ import annotations

import numbers

import numpy as np

from ceas.errors import ValidationError


def real_array(name: str, value, ndim: int) -> np.ndarray:
    """``value`` as a float64 array with ``ndim`` dimensions and only finite entries."""
    arr = np.asarray(value)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValidationError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValidationError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name} must contain only finite values, got NaN or inf")
    return arr


def shape_is(name: str, arr: np.ndarray, expected: tuple, pretty: str) -> None:
    """Raise unless ``arr.shape == expected``; ``pretty`` is the expected shape as users read it."""
    if arr.shape != tuple(expected):
        raise ValidationError(f"{name} must have shape {pretty}, got {arr.shape}")


def in_range(name: str, arr: np.ndarray, low: float, high: float) -> None:
    """Raise unless every entry lies in the closed interval [low, high]."""
    if arr.size and (arr.min() < low or arr.max() > high):
        bad = arr.min() if arr.min() < low else arr.max()
        raise ValidationError(f"{name} must be in [{low:g}, {high:g}], got {bad:g}")


def positive_int(name: str, value, low: int = 1, high: int | None = None) -> int:
    """``value`` as a Python int in [low, high] (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValidationError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        upper = "inf" if high is None else str(high)
        raise ValidationError(f"{name} must be an integer in [{low}, {upper}], got {value}")
    return value


def generator(name: str, rng) -> np.random.Generator:
    """Raise unless ``rng`` is a numpy Generator (no global RNG, no legacy RandomState)."""
    if not isinstance(rng, np.random.Generator):
        raise ValidationError(f"{name} must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng
