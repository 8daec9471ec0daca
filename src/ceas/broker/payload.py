"""Quantum gradient payloads (SPEC §4, Fig. 3): a gradient sent as qubits teleported through Bell pairs.

Each component g_i, clipped to [−G, G], is encoded as a qubit with ⟨Z⟩ = z_i = g_i/G and teleported through a Bell
pair. Teleporting through a Werner pair of visibility w is the depolarising channel ρ → wρ + (1−w)·I/2, so the received
qubit has ⟨Z⟩ = w·z_i. The broker measures S_p copies (one pair each), averages the ±1 outcomes and rescales by the
visibility it believes in, v̂:

    ĝ_i = G · (1/S_p Σ_j s_ij) / v̂,      s_ij = ±1 with P(+1) = (1 + w_ij z_i)/2.

With every pair at visibility w = v̂ the estimate is unbiased with variance G²(1 − w² z_i²)/(S_p w²): it grows as 1/w²,
which is how pair fidelity enters learning. Pairs per payload: P·S_p.
"""

from __future__ import annotations

import numpy as np

from ceas.errors import ValidationError


def encode(gradients: np.ndarray, clip: float) -> np.ndarray:
    """z = clip(g, −G, G)/G ∈ [−1, 1], same shape as ``gradients``."""
    if not clip > 0:
        raise ValidationError(f"payload clip G must be > 0, got {clip}")
    return np.clip(gradients, -clip, clip) / clip


def deliver(
    gradients: np.ndarray,
    pair_visibility: np.ndarray,
    visibility_estimate: np.ndarray,
    *,
    clip: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Teleport and measure quantum payloads; return the broker's estimates.

    Parameters
    ----------
    gradients : ndarray, shape (m, P)
        The senders' gradients.
    pair_visibility : ndarray, shape (m, P, S_p)
        Werner visibility w = (4F−1)/3 of the pair that carries each copy, at the moment of use.
    visibility_estimate : ndarray, shape (m,)
        The visibility v̂ the broker divides by (from the ledger ages or a verification test); must be > 0.
    clip : float
        G, the clipping bound.
    rng : Generator

    Returns
    -------
    ndarray, shape (m, P)
        ĝ, the received gradients.
    """
    gradients = np.asarray(gradients, dtype=float)
    w = np.asarray(pair_visibility, dtype=float)
    v_hat = np.asarray(visibility_estimate, dtype=float)
    if gradients.ndim != 2 or w.ndim != 3 or w.shape[:2] != gradients.shape:
        raise ValidationError(
            f"pair_visibility must have shape (m, P, S_p) = {gradients.shape} + (S_p,), got {w.shape}"
        )
    if v_hat.shape != (gradients.shape[0],):
        raise ValidationError(
            f"visibility_estimate must have shape ({gradients.shape[0]},), got {v_hat.shape}"
        )
    if np.any(w < -1 / 3 - 1e-12) or np.any(w > 1 + 1e-12):
        raise ValidationError("pair visibilities must be in [-1/3, 1] (fidelity in [0, 1])")
    if np.any(v_hat <= 0):
        raise ValidationError(f"visibility estimates must be > 0, got min {v_hat.min()}")
    z = encode(gradients, clip)
    p_plus = 0.5 * (1.0 + w * z[..., None])
    plus = rng.random(w.shape) < p_plus
    mean_outcome = (2.0 * plus - 1.0).mean(axis=-1)
    return clip * mean_outcome / v_hat[:, None]


def payload_variance(
    gradients: np.ndarray, visibility: float | np.ndarray, copies: int, clip: float
) -> np.ndarray:
    """Analytic variance of :func:`deliver`'s estimate when every pair has visibility w = v̂:
    G²(1 − w² z²)/(S_p w²), elementwise."""
    z = encode(np.asarray(gradients, dtype=float), clip)
    w = np.asarray(visibility, dtype=float)
    return clip**2 * (1.0 - (w * z) ** 2) / (copies * w**2)


def pairs_per_payload(n_params: int, copies: int) -> int:
    """P·S_p pairs carry one gradient."""
    return int(n_params) * int(copies)
