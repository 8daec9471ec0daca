"""Finite shots: binomial estimates of Pauli expectations and parameter-shift Jacobians from them."""

from __future__ import annotations

import numpy as np

from ceas._validate import generator, in_range, positive_int, real_array
from ceas.qnn.shift import shifted_expval

# Expectations computed in floating point can exceed ±1 by rounding; beyond this it is a caller error.
_ROUNDING = 1e-9


def sample_expval(e_true, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Estimate ⟨P⟩ of a ±1-valued observable from ``shots`` measurements.

    The number of +1 outcomes is Binomial(S, (1+E)/2), so the estimate Ê = 2k/S - 1 is unbiased with
    variance (1 - E²)/S.

    Parameters
    ----------
    e_true : array_like
        Exact expectations in [-1, 1], any shape.
    shots : int
        S >= 1 measurements per expectation.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, same shape as ``e_true``
        Values on the grid {-1, -1 + 2/S, …, 1}.
    """
    shots = positive_int("shots", shots)
    rng = generator("rng", rng)
    e = np.asarray(e_true)
    flat = real_array("e_true", e.reshape(-1), 1)
    in_range("e_true", flat, -1.0 - _ROUNDING, 1.0 + _ROUNDING)
    p_plus = np.clip((1.0 + flat.reshape(e.shape)) / 2.0, 0.0, 1.0)
    return 2.0 * rng.binomial(shots, p_plus) / shots - 1.0


def shifted_samples(sim, theta, x, *, shots=None, rng=None, noise=None) -> np.ndarray:
    """The 2P+1 expectations of the parameter-shift rule as a node measures them, shape (N, 2P+1, B, O).

    Order along axis 1: θ, then θ + π/2·e_p for every p, then θ − π/2·e_p (:func:`ceas.qnn.qfi.shifted_thetas`).
    Every expectation is shrunk by its node's noise contraction (1-p)^L(1-2r) and, with ``shots = S``,
    estimated from S binomial shots. Arguments as in :func:`parameter_shift`.
    """
    theta, x = sim._check(theta, x)
    if shots is not None:
        shots = positive_int("shots", shots)
        generator("rng", rng)
    factor = sim._contraction(noise, x.shape[0])
    e_all = shifted_expval(sim, theta, x, np.pi / 2)
    e_all *= factor[:, None, None, None]
    if shots is not None:
        e_all = sample_expval(e_all, shots, rng)
    return e_all


def jacobian_from_shifts(e_all: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E (N, B, O), J (N, B, O, P)) from the shifted expectations (N, 2P+1, B, O) of :func:`shifted_samples`."""
    n_params = (e_all.shape[1] - 1) // 2
    jac = (e_all[:, 1 : 1 + n_params] - e_all[:, 1 + n_params :]) / 2.0  # (N, P, B, O)
    return e_all[:, 0], np.moveaxis(jac, 1, 3)


def parameter_shift(sim, theta, x, *, shots=None, rng=None, noise=None):
    """Expectations and their Jacobian by the two-term parameter-shift rule, with finite shots.

    ∂⟨Z⟩/∂θ_p = [⟨Z⟩(θ+π/2·e_p) - ⟨Z⟩(θ-π/2·e_p)] / 2 (exact for these gates). With ``shots = S``, every
    expectation (the unshifted one and the 2P shifted ones) is estimated from S binomial shots, so
    Var Ĵ_p = (1-E₊²)/(4S) + (1-E₋²)/(4S). ``noise`` shrinks every expectation by its node's contraction
    (1-p)^L(1-2r) before sampling.

    Parameters
    ----------
    sim : QNNSimulator
    theta : array_like, shape (N, P)
    x : array_like, shape (N, B, n)
    shots : int or None
        S >= 1 shots per expectation; None gives exact expectations.
    rng : numpy.random.Generator
        Required when ``shots`` is set.
    noise : NodeNoise, optional
        One entry per node.

    Returns
    -------
    E : ndarray, shape (N, B, O)
    J : ndarray, shape (N, B, O, P)
    """
    return jacobian_from_shifts(shifted_samples(sim, theta, x, shots=shots, rng=rng, noise=noise))
