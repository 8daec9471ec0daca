"""Quantum gradient payloads (SPEC §4, Fig. 3): a gradient sent as qubits teleported through Bell pairs.

Each component g_i, clipped to [−G, G], is encoded as a qubit with ⟨Z⟩ = z_i = g_i/s and teleported through a Bell
pair, where s is the payload's *scale*: s = G in the SPEC's literal encoding (``scale="fixed"``), or the message's own
largest component s = max_i |g_i| ≤ G (``scale="node"``, the default), sent classically inside the authenticated
envelope so the broker can undo it. Teleporting through a Werner pair of visibility w is the depolarising channel
ρ → wρ + (1−w)·I/2, so the received qubit has ⟨Z⟩ = w·z_i. The broker measures S_p copies (one pair each), averages
the ±1 outcomes and rescales by the visibility it believes in, v̂:

    ĝ_i = s · (1/S_p Σ_j s_ij) / v̂,      s_ij = ±1 with P(+1) = (1 + w_ij z_i)/2.

With every pair at visibility w = v̂ the estimate is unbiased with variance s²(1 − w² z_i²)/(S_p w²): it grows as
1/w², which is how pair fidelity enters learning. Pairs per payload: P·S_p.

Why a per-message scale: honest gradient components are typically 0.1–0.3 while G = 1, so with s = G a qubit's ⟨Z⟩
uses a small part of [−1, 1] and the measurement noise (≈ s/(√S_p w) per component) swamps the signal. With
s = max|g| the same pairs carry the same gradient with (G/s)² less variance. A sender still cannot push any component
beyond ±G (s ≤ G), so the bound a Byzantine sender has on its influence is unchanged.
"""

from __future__ import annotations

import numpy as np

from ceas.errors import ValidationError

PAYLOAD_SCALES = ("node", "fixed")
"""How a payload's ⟨Z⟩ range is used: ``node`` (s = max|g| ≤ G per message) or ``fixed`` (s = G, SPEC §4 literally)."""


def payload_scale(gradients: np.ndarray, clip: float, mode: str = "node") -> np.ndarray:
    """The scale s of each payload (see the module docstring), shape (m,) for gradients of shape (m, P).

    ``node``: s = max_i |clip(g_i, −G, G)|, at least G·1e-9 (an all-zero gradient is sent as zeros at that scale);
    ``fixed``: s = G.
    """
    g = np.atleast_2d(np.asarray(gradients, dtype=float))
    if not clip > 0:
        raise ValidationError(f"payload clip G must be > 0, got {clip}")
    if mode == "fixed":
        return np.full(g.shape[0], float(clip))
    if mode != "node":
        raise ValidationError(f"payload scale must be one of {list(PAYLOAD_SCALES)}, got {mode!r}")
    peak = np.abs(np.clip(g, -clip, clip)).max(axis=1, initial=0.0)
    return np.maximum(peak, clip * 1e-9)


def encode(
    gradients: np.ndarray, clip: float, scale: float | np.ndarray | None = None
) -> np.ndarray:
    """z = clip(g, −s, s)/s ∈ [−1, 1] with s = ``scale`` (default G; one per row of a 2-D ``gradients``), same shape
    as ``gradients``. ``scale`` must lie in (0, G]."""
    if not clip > 0:
        raise ValidationError(f"payload clip G must be > 0, got {clip}")
    g = np.asarray(gradients, dtype=float)
    s = np.asarray(float(clip) if scale is None else scale, dtype=float)
    if np.any(s <= 0) or np.any(s > clip * (1 + 1e-12)):
        raise ValidationError(f"payload scale must be in (0, G = {clip}], got {scale!r}")
    if s.ndim == 1:
        s = s[:, None]
    return np.clip(g, -s, s) / s


def deliver(
    gradients: np.ndarray,
    pair_visibility: np.ndarray,
    visibility_estimate: np.ndarray,
    *,
    clip: float,
    rng: np.random.Generator,
    scale: str = "fixed",
) -> np.ndarray:
    """Teleport and measure quantum payloads; return the broker's estimates.

    Pairs are used in delivery order, copy-major: the j-th pair of a payload carries component j mod P (copy
    j // P), so the first P pairs carry one full copy of the gradient.

    Parameters
    ----------
    gradients : ndarray, shape (m, P)
        The senders' gradients.
    pair_visibility : ndarray, shape (m, S_p, P)
        Werner visibility w = (4F−1)/3 at the moment of use of the pair that carries copy s of component i.
    visibility_estimate : ndarray, shape (m,)
        The visibility v̂ the broker divides by (from the ledger ages or a verification test); must be > 0.
    clip : float
        G, the clipping bound.
    rng : Generator
        One uniform draw per pair, in the order of ``pair_visibility``'s elements.
    scale : {"fixed", "node"}
        How each payload's scale s is chosen (:func:`payload_scale`).

    Returns
    -------
    ndarray, shape (m, P)
        ĝ, the received gradients.
    """
    gradients = np.asarray(gradients, dtype=float)
    w = np.asarray(pair_visibility, dtype=float)
    v_hat = np.asarray(visibility_estimate, dtype=float)
    if gradients.ndim != 2 or w.ndim != 3 or (w.shape[0], w.shape[2]) != gradients.shape:
        m, p = gradients.shape if gradients.ndim == 2 else (None, None)
        raise ValidationError(
            f"pair_visibility must have shape (m, S_p, P) = ({m}, S_p, {p}), got {w.shape}"
        )
    if v_hat.shape != (gradients.shape[0],):
        raise ValidationError(
            f"visibility_estimate must have shape ({gradients.shape[0]},), got {v_hat.shape}"
        )
    if np.any(w < -1 / 3 - 1e-12) or np.any(w > 1 + 1e-12):
        raise ValidationError("pair visibilities must be in [-1/3, 1] (fidelity in [0, 1])")
    if np.any(v_hat <= 0):
        raise ValidationError(f"visibility estimates must be > 0, got min {v_hat.min()}")
    s = payload_scale(gradients, clip, scale)
    z = encode(gradients, clip, s)
    p_plus = 0.5 * (1.0 + w * z[:, None, :])
    plus = rng.random(w.shape) < p_plus
    sums = (2.0 * plus - 1.0).sum(axis=1)  # exact: a sum of ±1
    return s[:, None] * sums / w.shape[1] / v_hat[:, None]


def payload_variance(
    gradients: np.ndarray,
    visibility: float | np.ndarray,
    copies: int,
    clip: float,
    scale: str = "fixed",
) -> np.ndarray:
    """Analytic variance of :func:`deliver`'s estimate when every pair has visibility w = v̂:
    s²(1 − w² z²)/(S_p w²), elementwise (same shape as ``gradients``, 1-D: one payload; 2-D: one per row)."""
    g = np.asarray(gradients, dtype=float)
    s = payload_scale(g, clip, scale)
    z = encode(np.atleast_2d(g), clip, s)
    w = np.asarray(visibility, dtype=float)
    var = s[:, None] ** 2 * (1.0 - (w * z) ** 2) / (copies * w**2)
    return var.reshape(g.shape)


def pairs_per_payload(n_params: int, copies: int) -> int:
    """P·S_p pairs carry one gradient."""
    return int(n_params) * int(copies)
