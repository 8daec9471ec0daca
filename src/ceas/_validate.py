"""The one validation module: one phrase per condition, shared by every layer.

Messages name the argument, say what is allowed (bracket notation for ranges, or the set of names) and echo the
value received, e.g. ``fidelity must be in [0.25, 1], got 1.3`` or
``entangler 'rnig' is unknown (did you mean 'ring'?); allowed: one of all_to_all, linear, ring``. Config fields carry
their bounds as data instead (pydantic), and :mod:`ceas.config` formats those failures in the same words.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Annotated, Any, Literal

import annotated_types
import numpy as np
import pydantic
from pydantic import BaseModel

from ceas.errors import UnknownNameError, ValidationError


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
    if type(value) is float or type(value) is int:  # fast path: no ABC instance checks
        v = float(value)
        if (
            not math.isnan(v)
            and (allow_inf or math.isfinite(v))
            and _inside(v, low, high, low_open, high_open)
        ):
            return v
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
    if type(value) is int and _inside(value, low, high, False, False):  # fast path
        return value
    ok = isinstance(value, Integral) and not isinstance(value, bool)
    if ok:
        ok = _inside(int(value), low, high, False, False)
    if not ok:
        raise ValidationError(f"{name} must be an integer in {interval(low, high)}, got {value!r}")
    return int(value)


def positive_int(name: str, value: object, low: int = 1, high: int | None = None) -> int:
    """:func:`check_int` with a lower bound of 1 unless stated (counts: qubits, layers, shots)."""
    return check_int(name, value, low, high)


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
    if arr.size:
        # fast path (called many times a round on small arrays): min and max propagate NaN, so two reductions
        # decide every condition below; the full check runs only to name an offending entry
        lo, hi = float(_MIN(arr, axis=None)), float(_MAX(arr, axis=None))
        if (
            not math.isnan(lo)
            and not math.isnan(hi)
            and (allow_inf or (-math.inf < lo and hi < math.inf))
            and (low is None or (lo > low if low_open else lo >= low))
            and (high is None or (hi < high if high_open else hi <= high))
        ):
            return arr
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


_MIN, _MAX = np.minimum.reduce, np.maximum.reduce


def in_range(name: str, arr: np.ndarray, low: float, high: float) -> None:
    """Raise unless every entry of ``arr`` lies in the closed interval [low, high]."""
    check_values(name, arr, low, high, allow_inf=True)


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
        raise ValidationError(f"{name} must be in {interval(low, high)}, got {arr.min():g}")
    if high is not None and arr.size and arr.max() > high:
        raise ValidationError(f"{name} must be in {interval(low, high)}, got {arr.max():g}")
    return arr


def real_array(name: str, value: object, ndim: int) -> np.ndarray:
    """``value`` as a float64 array with ``ndim`` dimensions and only finite entries (no copy if already one)."""
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


def generator(name: str, rng: object) -> np.random.Generator:
    """Raise unless ``rng`` is a numpy Generator (no global RNG, no legacy RandomState)."""
    if not isinstance(rng, np.random.Generator):
        raise ValidationError(f"{name} must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def unknown_name(kind: str, name: object, names: Iterable[str]) -> UnknownNameError:
    """The one error for a name no registry holds: ``{kind} 'x' is unknown (did you mean 'y'?); allowed: one of ...``.

    The suggestion is the closest valid name (difflib), or one the name is a prefix of.
    """
    valid = sorted(names)
    text = str(name)
    close = (
        difflib.get_close_matches(text, valid, n=1) or [v for v in valid if v.startswith(text)][:1]
    )
    hint = f" (did you mean {close[0]!r}?)" if close and text else ""
    return UnknownNameError(f"{kind} {name!r} is unknown{hint}; allowed: one of {', '.join(valid)}")


def lookup(kind: str, name: object, registry: Iterable[str]) -> str:
    """Return ``name`` if ``registry`` holds it; otherwise raise :func:`unknown_name`'s error."""
    names = list(registry)
    if isinstance(name, str) and name in names:
        return name
    raise unknown_name(kind, name, names)


# ----------------------------------------------------------------------------------------------------------------
# config fields: the one formatter of every failure, reading bounds and options from the fields themselves
# ----------------------------------------------------------------------------------------------------------------


def _field_at(model: type[BaseModel], loc: tuple) -> pydantic.fields.FieldInfo | None:
    info = None
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return info
        info = current.model_fields.get(str(part))
        if info is None:
            return None
        current = info.annotation
    return info


def _with_constraints(kind: str, metadata: Any) -> str:
    """Append the bounds and length limits found in ``metadata`` to a type description."""
    lo = hi = None
    lo_open = hi_open = False
    min_len = max_len = pattern = None
    for meta in metadata:
        if getattr(meta, "pattern", None):
            pattern = meta.pattern
        elif isinstance(meta, annotated_types.Ge):
            lo = meta.ge
        elif isinstance(meta, annotated_types.Gt):
            lo, lo_open = meta.gt, True
        elif isinstance(meta, annotated_types.Le):
            hi = meta.le
        elif isinstance(meta, annotated_types.Lt):
            hi, hi_open = meta.lt, True
        elif isinstance(meta, annotated_types.MinLen):
            min_len = meta.min_length
        elif isinstance(meta, annotated_types.MaxLen):
            max_len = meta.max_length
    if lo is not None or hi is not None:
        left = "(-inf" if lo is None else ("(" if lo_open else "[") + str(lo)
        right = "inf)" if hi is None else str(hi) + (")" if hi_open else "]")
        kind = f"{kind} in {left}, {right}"
    items = "characters" if kind == "string" else "items"
    if min_len or max_len:
        kind = f"{kind} with {min_len or 0} to {max_len if max_len is not None else 'any number of'} {items}"
    if pattern:
        kind = f"{kind}, {_pattern_words(pattern)}"
    return kind


def _pattern_words(pattern: str) -> str:
    """A character-class pattern (``^[A-Za-z0-9_.-]+$``) in words; any other pattern as the regular expression."""
    m = re.fullmatch(r"\^\[([^\]]+)\][+*]\$", pattern)
    if not m:
        return f"matching the regular expression {pattern}"
    body = m.group(1)
    ranges = re.findall(r"(.)-(.)", body)
    rest = re.sub(r"(.)-(.)", "", body)
    parts = [f"{a}-{b}" for a, b in ranges] + [repr(c) for c in rest]
    return f"each one of {' '.join(parts)}"


def _describe_type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is Annotated:
        return _with_constraints(_describe_type(args[0]), args[1:])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe_type(a) for a in args)
    if origin is list:
        return f"a list of {_describe_type(args[0])}" if args else "a list"
    names = {
        int: "integer",
        float: "float",
        str: "string",
        bool: "true or false",
        type(None): "none",
    }
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def allowed(model: type[BaseModel], loc: tuple) -> str:
    """What a field accepts, read from its annotation and constraints (e.g. ``integer in [1, 20]``)."""
    info = _field_at(model, loc)
    if info is None:
        return "a known key"
    return _with_constraints(_describe_type(info.annotation), info.metadata)


def _valid_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    parent = _field_at(model, loc[:-1]) if len(loc) > 1 else None
    cls = parent.annotation if parent is not None else model
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return list(cls.model_fields)
    return []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_error(model: type[BaseModel], err: dict) -> str:
    """One line for one pydantic error: field path, value received, what is allowed."""
    loc = tuple(err.get("loc", ()))
    path = ".".join(str(p) for p in loc) or "config"
    kind = err.get("type", "")
    msg = err.get("msg", "")
    if kind == "extra_forbidden":
        keys = _valid_keys(model, loc)
        hint = difflib.get_close_matches(str(loc[-1]), keys, n=1)
        sugg = f" (did you mean {hint[0]!r}?)" if hint else ""
        return f"{path}: unknown key{sugg}; valid keys here: {', '.join(keys)}"
    if kind == "value_error":
        text = msg.removeprefix("Value error, ")
        head = text.split(" ")[0]
        if not head.endswith(":"):
            return f"{path}: {text}"
        # a section's own rule names its field bare ("n_repeaters: ..."): complete the path
        return text if "." in head or not loc else f"{path}.{text}"
    if kind == "missing":
        return f"{path}: required key is missing; allowed: {allowed(model, loc)}"
    return f"{path}: {_short(err.get('input'))} is not allowed; allowed: {allowed(model, loc)}"
