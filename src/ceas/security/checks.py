"""``check_attack``: does a (user-written) attack keep the contract of its surface? (as gymnasium's ``check_env``)

Run it on any new attack before a sweep spends hours on it. It calls the attack on tiny fixed inputs and raises
:class:`~ceas.errors.ValidationError` with one line naming the attack and the broken rule.
"""

from __future__ import annotations

import numpy as np

from ceas.errors import ValidationError
from ceas.security.attacks import SURFACES, ChannelView, RoundContext, StampClaims, takes_context
from ceas.security.messages import Envelope

__all__ = ["check_attack"]

_H, _F, _D, _R = 6, 3, 4, 3


def _fail(name: str, problem: str) -> ValidationError:
    return ValidationError(f"attack {name!r} {problem}")


def _check_array(name: str, out: object, shape: tuple[int, ...], what: str) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise _fail(
            name, f"returned {type(out).__name__}; expected a numpy array of shape {what} = {shape}"
        )
    if out.shape != shape:
        raise _fail(name, f"returned shape {out.shape}; expected {what} = {shape}")
    if out.dtype.kind not in "iuf" or not np.all(np.isfinite(out)):
        raise _fail(name, "returned non-finite or non-numeric values")
    return out


def _reproducible(name: str, call, seed: int) -> object:
    first = call(np.random.default_rng(seed))
    second = call(np.random.default_rng(seed))
    if isinstance(
        first, np.ndarray
    ):  # NaNs are reported by the value check, not as irreproducibility
        same = np.array_equal(first, second, equal_nan=first.dtype.kind in "fc")
    else:
        same = first == second
    if not same:
        raise _fail(
            name,
            "is not reproducible: two calls with equally seeded Generators gave different results",
        )
    return first


def _check_gradient(name: str, attack: object, honest: np.ndarray, seed: int) -> None:
    """A gradient attack: (f, d) or None (abstain) with or without a RoundContext; shape (0, d) or None at f = 0."""
    if not callable(attack):
        raise _fail(name, "is a gradient attack but is not callable")
    shape, what = (_F, _D), "(f, d)"
    calls = [(None, lambda rng, f=_F: attack(honest, f, rng))]
    if takes_context(attack):
        # round 0 and a late round: a strike-later attack is checked on both of its behaviours
        own = np.random.default_rng(seed + 1).normal(size=(_F, _D))
        for t in (0, 1000):
            ctx = RoundContext(
                round=t,
                byzantine=np.arange(_H, _H + _F, dtype=np.int64),
                participants=np.arange(_H + _F, dtype=np.int64),
                own=own,
            )
            calls.append((t, lambda rng, f=_F, ctx=ctx: attack(honest, f, rng, context=ctx)))
    for t, call in calls:
        out = _reproducible(name, call, seed)
        if out is not None:
            where = "" if t is None else f" (context round {t})"
            try:
                _check_array(name, out, shape, what)
            except ValidationError as exc:
                raise ValidationError(f"{exc}{where}") from None
    empty = attack(honest, 0, np.random.default_rng(seed))
    if empty is not None and (not isinstance(empty, np.ndarray) or empty.shape != (0, _D)):
        got = getattr(empty, "shape", type(empty).__name__)
        raise _fail(name, f"returned {got} for f = 0; expected shape (0, {_D}) or None")


def check_attack(attack: object, *, seed: int = 0) -> None:
    """Check that ``attack`` keeps the contract of its surface; raise ValidationError on the first broken rule.

    Checked for every attack: a non-empty string ``name``; a ``surface`` among :data:`SURFACES`; the output's type,
    shape and finiteness; that inputs are not modified; and that equal Generator seeds give equal outputs (so it
    draws only from the Generator it is given). Gradient attacks are also called with f = 0.

    Parameters
    ----------
    attack : object
        The attack to check.
    seed : int, default 0
        Seed of the test inputs.

    Raises
    ------
    ValidationError
        Naming the attack and what it broke.
    """
    name = getattr(attack, "name", None)
    if not isinstance(name, str) or not name:
        raise ValidationError(
            f"attack {type(attack).__name__} needs a non-empty string 'name', got {name!r}"
        )
    surface = getattr(attack, "surface", None)
    if surface not in SURFACES:
        raise _fail(name, f"has surface {surface!r}; expected one of {list(SURFACES)}")
    data_rng = np.random.default_rng(seed)
    honest = data_rng.normal(size=(_H, _D))
    kept = honest.copy()

    if surface == "gradient":
        _check_gradient(name, attack, honest, seed)
        if not np.array_equal(honest, kept):
            raise _fail(name, "modified the honest updates it was given")
        return

    if surface == "equivocation":
        if not callable(attack):
            raise _fail(name, f"is a {surface} attack but is not callable")
        out = _reproducible(name, lambda rng: attack(honest, _F, _R, rng), seed)
        _check_array(name, out, (_R, _F, _D), "(n_receivers, f, d)")
        if not np.array_equal(honest, kept):
            raise _fail(name, "modified the honest updates it was given")
        return

    if surface == "data":
        labels = np.arange(10) % 3
        out = _reproducible(name, lambda rng: attack.poison(labels.copy(), 3, rng), seed)
        out = _check_array(name, out, labels.shape, "(m,)")
        if out.dtype.kind not in "iu" or np.any(out < 0) or np.any(out >= 3):
            raise _fail(name, "returned labels outside [0, n_classes) = [0, 3)")
        given = labels.copy()
        attack.poison(given, 3, np.random.default_rng(seed))
        if not np.array_equal(given, labels):
            raise _fail(name, "modified the labels it was given")
        return

    if surface == "stamp":
        fidelity, qfi = np.array([0.9, 0.8, 0.95]), np.array([0.5, 0.4, 0.6])
        out = attack.claim(StampClaims(fidelity.copy(), qfi.copy()))
        if not isinstance(out, StampClaims):
            raise _fail(name, f"returned {type(out).__name__}; expected StampClaims")
        f_out = _check_array(
            name, np.asarray(out.fidelity, dtype=float), fidelity.shape, "fidelity (f,)"
        )
        q_out = _check_array(name, np.asarray(out.qfi, dtype=float), qfi.shape, "qfi (f,)")
        if np.any(f_out < 0.25) or np.any(f_out > 1.0) or np.any(q_out < 0):
            raise _fail(name, "claimed a fidelity outside [0.25, 1] or a negative QFI")
        return

    if surface == "message":
        wire = Envelope(1, 0, 0, b"stamp", bytes(32), bytes(16)).to_bytes()
        view = ChannelView(1, (wire,), (wire,), (0, 1), (2,))
        out = _reproducible(name, lambda rng: attack.inject(view, rng), seed)
        if not isinstance(out, list) or not all(isinstance(w, bytes) for w in out):
            raise _fail(
                name, f"returned {type(out).__name__}; expected a list of bytes (wire messages)"
            )
        return

    if surface == "agreement":
        if not isinstance(getattr(attack, "behaviour", None), str):
            raise _fail(name, "is an agreement attack but has no string 'behaviour'")
        return

    if surface == "state":
        p = np.array([0.0, 0.1, 1.0])
        out = _check_array(name, attack.depolarise(p.copy()), p.shape, "(f,)")
        if np.any(out < p - 1e-12) or np.any(out > 1):
            raise _fail(name, "returned a depolarising strength outside [p, 1] (a QPU's own noise stays)")
        return

    requested = np.array([3, 0, 5])
    out = _check_array(name, attack.demand(requested.copy()), requested.shape, "(f,)")
    if np.any(out < 0):
        raise _fail(name, "requested a negative number of pairs")
