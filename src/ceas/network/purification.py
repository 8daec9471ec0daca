r"""Entanglement purification: BBPSSW and DEJMPS, two pairs in, at most one better pair out (SPEC §4).

Both protocols apply bilateral CNOTs from the kept pair (control) to the sacrificed pair (target), measure the
target in Z at both ends and keep the control when the outcomes agree.

**BBPSSW** (Bennett et al. 1996) twirls the inputs into Werner pairs of fidelities :math:`F_1, F_2`:

.. math::
    p = F_1F_2 + \frac{F_1(1-F_2) + (1-F_1)F_2}{3} + \frac{5(1-F_1)(1-F_2)}{9}, \qquad
    F' = \frac{F_1F_2 + (1-F_1)(1-F_2)/9}{p},

and twirls the output back into a Werner pair of fidelity :math:`F'`.

**DEJMPS** (Deutsch et al. 1996) first rotates with :math:`R_x(\pi/2)` at one end and :math:`R_x(-\pi/2)` at the
other, and keeps the Bell-diagonal form. With :math:`\lambda = (A, B, C, D)` in the order
:data:`~ceas.network.werner.BELL_STATES`:

.. math::
    p = (A_1+B_1)(A_2+B_2) + (C_1+D_1)(C_2+D_2), \quad
    A' = \frac{A_1A_2 + B_1B_2}{p}, \; B' = \frac{C_1D_2 + D_1C_2}{p}, \;
    C' = \frac{C_1C_2 + D_1D_2}{p}, \; D' = \frac{A_1B_2 + B_1A_2}{p}.

Each protocol is a :class:`PurificationProtocol` (Bell vectors in, success probability and output Bell vector
out) registered in :data:`PURIFICATION_PROTOCOLS` under its config name.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ceas._validate import check_values, lookup
from ceas.network.werner import _check_bell, _werner_bell_vector

__all__ = [
    "PURIFICATION_PROTOCOLS",
    "PurificationProtocol",
    "bbpssw",
    "bbpssw_bell",
    "dejmps",
    "get_purification_protocol",
]


class PurificationProtocol(Protocol):
    """Maps two Bell-diagonal vectors (..., 4) to (success probability (...), output Bell vector (..., 4))."""

    def __call__(self, bell1: np.ndarray, bell2: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def _bbpssw(f1, f2):
    g1, g2 = 1.0 - f1, 1.0 - f2
    p = f1 * f2 + (f1 * g2 + g1 * f2) / 3.0 + 5.0 * g1 * g2 / 9.0
    return p, (f1 * f2 + g1 * g2 / 9.0) / p


def bbpssw(f1, f2):
    """BBPSSW on two Werner pairs: returns ``(p_success, f_out)``, broadcast over ``f1``, ``f2`` in [1/4, 1].

    Examples
    --------
    >>> p, f = bbpssw(0.9, 0.9)
    >>> round(float(p), 4), round(float(f), 4)
    (0.8756, 0.9264)
    """
    return _bbpssw(check_values("f1", f1, 0.25, 1.0), check_values("f2", f2, 0.25, 1.0))


def _bbpssw_bell(bell1, bell2):
    p, f = _bbpssw(np.asarray(bell1)[..., 0], np.asarray(bell2)[..., 0])
    return p, _werner_bell_vector(f)


def bbpssw_bell(bell1, bell2):
    """BBPSSW in the :class:`PurificationProtocol` form: inputs twirled to Werner, Werner output."""
    return _bbpssw_bell(_check_bell(bell1), _check_bell(bell2))


def _dejmps(bell1, bell2):
    a1, b1, c1, d1 = np.moveaxis(np.asarray(bell1), -1, 0)
    a2, b2, c2, d2 = np.moveaxis(np.asarray(bell2), -1, 0)
    p = (a1 + b1) * (a2 + b2) + (c1 + d1) * (c2 + d2)
    out = np.stack(
        [a1 * a2 + b1 * b2, c1 * d2 + d1 * c2, c1 * c2 + d1 * d2, a1 * b2 + b1 * a2], axis=-1
    )
    # p = 0 only for inputs that can never pass (e.g. |Phi+> with |Psi+>): no output state then
    with np.errstate(invalid="ignore", divide="ignore"):
        return p, np.where(p[..., None] > 0, out / p[..., None], np.nan)


def dejmps(bell1, bell2):
    """DEJMPS on two Bell-diagonal pairs (each (..., 4)): returns ``(p_success, bell_out)``.

    ``bell_out`` is NaN where ``p_success`` is 0 (inputs that can never pass the parity check).
    """
    return _dejmps(_check_bell(bell1), _check_bell(bell2))


PURIFICATION_PROTOCOLS: dict[str, PurificationProtocol] = {
    "bbpssw": _bbpssw_bell,
    "dejmps": _dejmps,
}
"""Purification protocols by config name (unchecked fast forms; inputs come from the ledger)."""


def get_purification_protocol(name: str) -> PurificationProtocol:
    """The protocol registered as ``name``; an unknown name raises UnknownNameError with the closest match."""
    return PURIFICATION_PROTOCOLS[lookup("purification protocol", name, PURIFICATION_PROTOCOLS)]
