r"""Teleportation through a stored pair, as a quantum channel on the teleported qubit (SPEC §4).

Teleporting a qubit :math:`\rho` through a Werner pair of visibility :math:`w` (Bell measurement, two classical
bits, Pauli correction) delivers the depolarised state

.. math:: \rho \mapsto w\,\rho + (1 - w)\,\frac{I}{2},

so Bloch vectors and traceless expectations such as :math:`\langle Z\rangle` shrink by :math:`w`. Through a
general Bell-diagonal pair the channel is the Pauli channel
:math:`\rho \mapsto \lambda_{\Phi^+}\rho + \lambda_{\Psi^+}X\rho X + \lambda_{\Psi^-}Y\rho Y + \lambda_{\Phi^-}Z\rho Z`.
"""

from __future__ import annotations

import numpy as np

from ceas._validate import check_values
from ceas.errors import ValidationError
from ceas.network.werner import _check_bell

__all__ = ["teleport_bloch", "teleport_pauli", "teleport_qubit"]

_I = np.eye(2, dtype=complex)
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
_Z = np.array([[1, 0], [0, -1]], dtype=complex)
# Pauli applied to the qubit for each Bell state of the pair, in BELL_STATES order (phi+, psi-, psi+, phi-).
_PAULIS = np.stack([_I, _Y, _X, _Z])


def _density(rho) -> np.ndarray:
    rho = np.asarray(rho, dtype=complex)
    if rho.ndim < 2 or rho.shape[-2:] != (2, 2):
        raise ValidationError(f"rho must have shape (..., 2, 2), got {rho.shape}")
    return rho


def teleport_qubit(rho, werner):
    r"""Teleport qubit state(s) ``rho`` (..., 2, 2) through Werner pair(s) of visibility ``werner`` in [0, 1].

    Returns :math:`w\rho + (1-w)\,\mathrm{tr}(\rho)\,I/2`, shape (..., 2, 2).
    """
    rho = _density(rho)
    w = check_values("werner", werner, 0.0, 1.0)[..., None, None]
    trace = np.trace(rho, axis1=-2, axis2=-1)[..., None, None]
    return w * rho + (1.0 - w) * trace * _I / 2.0


def teleport_pauli(rho, bell):
    """Teleport ``rho`` (..., 2, 2) through Bell-diagonal pair(s) ``bell`` (..., 4): the Pauli channel."""
    rho = _density(rho)
    lam = _check_bell(bell)
    terms = np.einsum("kab,...bc,kdc->...kad", _PAULIS, rho, _PAULIS.conj())
    return np.einsum("...k,...kad->...ad", lam.astype(complex), terms)


def teleport_bloch(bloch, werner):
    """Bloch vector(s) (..., 3) after teleportation through Werner pair(s): shrunk by ``werner``."""
    bloch = np.asarray(bloch, dtype=float)
    return check_values("werner", werner, 0.0, 1.0)[..., None] * bloch
