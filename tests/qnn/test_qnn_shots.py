"""Finite shots: binomial estimates and parameter-shift gradients, their bias and variance."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.errors import ValidationError
from ceas.qnn import CircuitSpec, NodeNoise, QNNSimulator, sample_expval
from ceas.rng import stream


def test_sample_expval_grid_extremes_and_moments():
    rng = stream(21, "shots")
    e = np.array([-1.0, -0.4, 0.0, 0.8, 1.0])
    draws = sample_expval(np.broadcast_to(e, (20_000, 5)), 50, rng)
    assert np.all(np.isclose(draws * 50, np.rint(draws * 50)))  # values on the 2/S grid
    np.testing.assert_array_equal(draws[:, 0], -1.0)
    np.testing.assert_array_equal(draws[:, 4], 1.0)
    var = (1 - e**2) / 50
    se_mean = np.sqrt(var / 20_000)
    assert np.all(np.abs(draws.mean(0) - e) <= 4 * se_mean + 1e-15)
    # variance within 5 % (relative standard error of a sample variance ~ sqrt(2/n) = 1 %)
    np.testing.assert_allclose(draws.var(0)[1:4], var[1:4], rtol=0.05)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.array([0.5]), 0), "shots must be an integer in [1, inf), got 0"),
        ((np.array([0.5]), 2.5), "shots must be an integer in [1, inf), got 2.5"),
        ((np.array([1.2]), 10), "e_true must be in [-1, 1], got 1.2"),
    ],
)
def test_sample_expval_validation(args, message):
    with pytest.raises(ValidationError) as err:
        sample_expval(*args, stream(0, "x"))
    assert message in str(err.value)
    with pytest.raises(
        ValidationError, match="rng must be a numpy.random.Generator, got RandomState"
    ):
        sample_expval(np.array([0.1]), 10, np.random.RandomState(0))


def test_exact_parameter_shift_equals_adjoint_jacobian_with_noise():
    spec = CircuitSpec(4, 2, "all_to_all", n_classes=3, reupload=True)
    rng = stream(22, "ps")
    theta = rng.uniform(0, 2 * np.pi, (2, spec.n_params))
    x = rng.uniform(0, np.pi, (2, 3, 4))
    noise = NodeNoise(np.array([0.05, 0.2]), np.array([0.1, 0.0]))
    sim = QNNSimulator(spec)
    e, jac = sim.parameter_shift(theta, x, noise=noise)
    c = noise.contraction(2)
    np.testing.assert_allclose(e, c[:, None, None] * sim.expval(theta, x), atol=1e-13)
    np.testing.assert_allclose(jac, c[:, None, None, None] * sim.jacobian(theta, x), atol=1e-13)


def test_shot_parameter_shift_is_unbiased_with_binomial_variance():
    """2,000 independent draws (as 2,000 copies of one node): mean within 4σ of the exact noisy
    gradient and variance within 10 % of (1-E₊²)/(4S) + (1-E₋²)/(4S) for every parameter."""
    draws, shots = 2000, 64
    spec = CircuitSpec(3, 2, "ring")
    rng = stream(23, "ps-shots")
    theta = rng.uniform(0, 2 * np.pi, spec.n_params)
    x = rng.uniform(0, np.pi, 3)
    p, r = 0.08, 0.05
    sim = QNNSimulator(spec)
    thetas = np.broadcast_to(theta, (draws, spec.n_params))
    xs = np.broadcast_to(x, (draws, 1, 3))
    noise = NodeNoise(np.full(draws, p), np.full(draws, r))
    e_hat, j_hat = sim.parameter_shift(thetas, xs, shots=shots, rng=rng, noise=noise)
    j_hat = j_hat[:, 0, 0]  # (draws, P)
    c = noise.contraction(2)[0]
    exact = c * sim.jacobian(theta[None], x[None, None])[0, 0, 0]
    shift = np.pi / 2 * np.eye(spec.n_params)
    e_plus = c * sim.expval(theta + shift, np.broadcast_to(x, (spec.n_params, 1, 3)))[:, 0, 0]
    e_minus = c * sim.expval(theta - shift, np.broadcast_to(x, (spec.n_params, 1, 3)))[:, 0, 0]
    var = (1 - e_plus**2) / (4 * shots) + (1 - e_minus**2) / (4 * shots)
    assert np.all(np.abs(j_hat.mean(0) - exact) <= 4 * np.sqrt(var / draws))
    np.testing.assert_allclose(j_hat.var(0, ddof=1), var, rtol=0.10)
    e_exact = c * sim.expval(theta[None], x[None, None])[0, 0, 0]
    assert abs(e_hat.mean() - e_exact) <= 4 * np.sqrt((1 - e_exact**2) / shots / draws)


def test_parameter_shift_requires_a_generator_with_shots():
    sim = QNNSimulator(CircuitSpec(2, 1))
    with pytest.raises(ValidationError, match="rng must be a numpy.random.Generator, got NoneType"):
        sim.parameter_shift(np.zeros((1, 4)), np.zeros((1, 1, 2)), shots=10)
    with pytest.raises(
        ValidationError, match=r"noise must have one entry per node \(N = 1\), got 2"
    ):
        sim.parameter_shift(np.zeros((1, 4)), np.zeros((1, 1, 2)), noise=NodeNoise(np.zeros(2)))
