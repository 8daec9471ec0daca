"""Finite-shot estimation of Pauli expectations (binomial sampling)."""

from __future__ import annotations

import numpy as np

from ceas.qnn._validate import generator, in_range, positive_int, real_array

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
