r"""The reward of the CEAS scheduling MDP (Definition 3, SPEC §5), as plain functions the MDP, the env and the broker share.

.. math::

    r_t = \frac{1}{Z}\sum_{k \in A_t,\ \text{served}} \tau_k\,\phi_k\,\frac{\bar v_k^2}{v_{\phi,k}^2}
          \;-\; \lambda_w\, n_{\text{waste}} \;-\; \lambda_l\, \frac{\ell}{\tau}

* :math:`\tau_k` trust, :math:`\phi_k` the last verified stamp value, evaluated at visibility :math:`v_{\phi,k}`;
  the received gradient's inverse variance scales as :math:`v^2` (SPEC §4), and a payload measured through copies of
  visibilities :math:`v_i` has inverse variance proportional to the harmonic mean :math:`\bar v^2 = n / \sum_i v_i^{-2}`
  (the estimate averages per-copy estimates of variance :math:`\propto 1/v_i^2`).
* A participant is *served* when its payload and verification demands are met and its key pool pays its tags.
* :math:`Z` is the utility of the m best nodes served with fresh pairs, so the learning term lies in [0, 1].
* :math:`n_{\text{waste}}` counts pairs expired, evicted, or consumed without a result (payload of an unserved node,
  key distilled at zero yield or into a full pool).
* :math:`\ell` is the latency in seconds (the binned MDP uses the mean wait for on-demand pairs per participant slot).
"""

from __future__ import annotations

import numpy as np

__all__ = ["harmonic_mean_v2", "learning_utility", "round_reward", "utility_scale"]


def utility_scale(
    trust: np.ndarray, phi: np.ndarray, phi_visibility: np.ndarray, v0: np.ndarray, m: int
) -> float:
    r"""Normaliser :math:`Z`: sum of the m largest :math:`\tau_k \phi_k (v_{0,k}/v_{\phi,k})^2` (1 if that is 0).

    Parameters
    ----------
    trust, phi, phi_visibility : (N,) float
        Node trust, stamp value and the visibility it was evaluated at.
    v0 : (N,) float
        Visibility of a fresh pair on each node's link (0 for a node without a link).
    m : int
        Participant budget.
    """
    best = np.asarray(trust) * np.asarray(phi) * (np.asarray(v0) / np.asarray(phi_visibility)) ** 2
    m = min(int(m), best.shape[0])
    z = float(np.sum(np.partition(best, best.shape[0] - m)[best.shape[0] - m :])) if m > 0 else 0.0
    return z if z > 0 else 1.0


def harmonic_mean_v2(inv_v2_sum: np.ndarray, n_pairs: np.ndarray) -> np.ndarray:
    r"""Harmonic mean of :math:`v^2` over a payload: :math:`n / \sum_i v_i^{-2}` (0 where n = 0). Any shape."""
    n = np.asarray(n_pairs, dtype=float)
    s = np.asarray(inv_v2_sum, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((n > 0) & (s > 0), n / np.where(s > 0, s, 1.0), 0.0)


def learning_utility(
    trust: np.ndarray,
    phi: np.ndarray,
    phi_visibility: np.ndarray,
    v2_served: np.ndarray,
    served: np.ndarray,
    scale: float,
) -> np.ndarray:
    r"""Per-node learning utility :math:`\tau_k \phi_k \bar v_k^2 / (v_{\phi,k}^2 Z)` for served nodes, else 0. (N,)."""
    u = (
        np.asarray(trust)
        * np.asarray(phi)
        * np.asarray(v2_served)
        / np.asarray(phi_visibility) ** 2
    )
    return np.where(np.asarray(served, dtype=bool), u / scale, 0.0)


def round_reward(
    utility: float,
    wasted_pairs: float,
    latency_s: float,
    *,
    waste_penalty: float,
    latency_penalty: float,
    round_s: float,
) -> float:
    r""":math:`r = U - \lambda_w n_{\text{waste}} - \lambda_l \ell/\tau` (U already normalised by Z)."""
    return float(utility - waste_penalty * wasted_pairs - latency_penalty * latency_s / round_s)
