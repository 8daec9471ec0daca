r"""The two channels a partitioned circuit pays for its Bell pairs (SPEC §4, §7), from a pair's Pauli mixture.

A Bell-diagonal pair :math:`\rho_{ab} = \sum_k \lambda_k |B_k\rangle\langle B_k|` (order
:data:`ceas.network.werner.BELL_STATES` = Φ⁺, Ψ⁻, Ψ⁺, Φ⁻) is :math:`|\Phi^+\rangle` with a random Pauli error on
one half, :math:`|B_k\rangle \propto (I \otimes P_k)|\Phi^+\rangle` with :math:`P = (I, Y, X, Z)` respectively.
(The error may equally be put on the other half: :math:`(I\otimes P)|\Phi^+\rangle = \pm(P^T \otimes I)|\Phi^+\rangle`.)
A Werner pair of visibility :math:`w` has :math:`\lambda = ((1+3w)/4, (1-w)/4, (1-w)/4, (1-w)/4)`.

**Teleportation** (unitary-level scheme, one pair per qubit per hop). Bell measurement and Pauli correction
deliver the input with the pair's error applied to it: the Pauli channel
:math:`\rho \mapsto \lambda_{\Phi^+}\rho + \lambda_{\Psi^+}X\rho X + \lambda_{\Psi^-}Y\rho Y + \lambda_{\Phi^-}Z\rho Z`,
which for a Werner pair is the depolarising channel :math:`\rho \mapsto w\rho + (1-w)\,\mathrm{tr}(\rho)\,I/2`.

**Remote CNOT by gate teleportation** (circuit-level scheme, one pair per non-local CNOT; Eisert et al., PRA 62,
052317 (2000)). Control c sits with pair half a, target t with half b. (1) CNOT(c→a), measure a in Z, send m₁;
(2) apply X^{m₁} to b, then CNOT(b→t); (3) measure b in X, send m₂; apply Z^{m₂} to c. With a perfect pair this is
CNOT(c→t). A Pauli error on b propagates as follows:

* X_b: after the correction b holds c ⊕ 1 instead of c, so CNOT(b→t) flips t once more: **X on the target**.
  (X_b also commutes with the final X-basis measurement, so it leaves no other trace.)
* Z_b: Z on the control of CNOT(b→t) passes through unchanged and flips the X-basis outcome m₂, so the
  correction Z^{m₂} on c is wrong: **Z on the control**.
* Y_b ∝ X_b Z_b: both, **Z_c X_t**.

Z_c and X_t commute with CNOT(c→t), so the error may be placed before or after the gate. The remote CNOT is
therefore the ideal CNOT followed by the correlated two-qubit Pauli channel

.. math:: \rho \mapsto \lambda_{\Phi^+}\rho + \lambda_{\Psi^+}X_t\rho X_t + \lambda_{\Phi^-}Z_c\rho Z_c
          + \lambda_{\Psi^-}(Z_cX_t)\rho(Z_cX_t),

for a Werner pair :math:`p_{II} = (1+3w)/4`, :math:`p_{IX} = p_{ZI} = p_{ZX} = (1-w)/4` (total error
probability :math:`3(1-w)/4 = 1 - F`). It is *not* a product of independent single-qubit channels (that would
need :math:`p_{IX}p_{ZI} = p_{II}p_{ZX}`). ``tests/partitions`` checks both derivations against a dense
simulation of the two protocols (with deferred measurement), independent of this module.
"""

from __future__ import annotations

import numpy as np

from ceas._validate import in_range
from ceas.errors import ValidationError

__all__ = [
    "REMOTE_CNOT_ERRORS",
    "TELEPORT_ERRORS",
    "remote_cnot_error_probs",
    "teleport_error_probs",
    "werner_pauli_mixture",
]

TELEPORT_ERRORS = ("I", "X", "Y", "Z")
"""Order of the entries of :func:`teleport_error_probs` (Pauli applied to the teleported qubit)."""

REMOTE_CNOT_ERRORS = ("II", "IX", "ZI", "ZX")
"""Order of the entries of :func:`remote_cnot_error_probs` (Pauli on control, Pauli on target)."""

# Bell-vector index (phi+, psi-, psi+, phi-) feeding each error, in the orders above.
_TELEPORT_FROM_BELL = np.array([0, 2, 1, 3])  # I <- phi+, X <- psi+, Y <- psi-, Z <- phi-
_REMOTE_FROM_BELL = np.array([0, 2, 3, 1])  # II <- phi+, IX <- psi+, ZI <- phi-, ZX <- psi-


def _bell(bell) -> np.ndarray:
    arr = np.asarray(bell, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != 4:
        raise ValidationError(f"bell must have shape (..., 4), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValidationError("bell must contain only finite values, got NaN or inf")
    in_range("bell", arr, 0.0, 1.0)
    total = arr.sum(axis=-1)
    if not np.allclose(total, 1.0, atol=1e-9):
        bad = float(np.ravel(total)[np.argmax(np.abs(np.ravel(total) - 1.0))])
        raise ValidationError(f"bell entries must sum to 1, got {bad:.12g}")
    return arr


def werner_pauli_mixture(werner) -> np.ndarray:
    """Bell-diagonal vector (..., 4) of a Werner pair of visibility ``werner`` in [0, 1]:
    ((1+3w)/4, (1-w)/4, (1-w)/4, (1-w)/4), order Φ⁺, Ψ⁻, Ψ⁺, Φ⁻."""
    w = np.asarray(werner, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise ValidationError("werner must contain only finite values, got NaN or inf")
    in_range("werner", w, 0.0, 1.0)
    err = (1.0 - w) / 4.0
    return np.stack([1.0 - 3.0 * err, err, err, err], axis=-1)


def teleport_error_probs(bell) -> np.ndarray:
    """Probabilities (..., 4) of the Pauli (I, X, Y, Z) that teleportation through ``bell`` (..., 4) applies."""
    return _bell(bell)[..., _TELEPORT_FROM_BELL]


def remote_cnot_error_probs(bell) -> np.ndarray:
    """Probabilities (..., 4) of the errors (II, IX, ZI, ZX) on (control, target) after a remote CNOT
    through a pair ``bell`` (..., 4); see the module docstring for the derivation."""
    return _bell(bell)[..., _REMOTE_FROM_BELL]
