"""A node's estimate of its own gradient error: same gradient as the model, variance and bias that match draws."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.qnn import NodeNoise, QNNModel
from ceas.qnn.circuit import CircuitSpec
from ceas.qnn.gradient_error import gradient_report
from ceas.qnn.losses import make_loss


def _setup(n_classes=2, loss="bce", nodes=3, batch=6):
    rng = np.random.default_rng(0)
    spec = CircuitSpec(n_qubits=3, n_layers=2, n_classes=n_classes)
    model = QNNModel(spec, loss=loss)
    theta = np.broadcast_to(model.init_params(rng), (nodes, spec.n_params)).copy()
    x = rng.uniform(0, np.pi, size=(nodes, batch, 3))
    y = rng.integers(0, n_classes, size=(nodes, batch))
    noise = NodeNoise(
        depolarizing=np.array([0.0, 0.1, 0.2])[:nodes], readout_error=np.full(nodes, 0.02)
    )
    return model, theta, x, y, noise


@pytest.mark.parametrize("name,classes", [("bce", 2), ("bce", 3), ("mse", 2), ("mse", 3)])
def test_loss_hessian_matches_finite_differences_of_the_derivative(name, classes):
    rng = np.random.default_rng(1)
    loss = make_loss(name, classes, 4.0)
    o = 1 if classes == 2 else classes
    e = rng.uniform(-0.9, 0.9, size=(5, o))
    y = rng.integers(0, classes, size=5)
    h = loss.hessian(e, y)
    eps = 1e-6
    for j in range(o):
        step = np.zeros(o)
        step[j] = eps
        fd = (loss.derivative(e + step, y) - loss.derivative(e - step, y)) / (2 * eps)
        np.testing.assert_allclose(h[..., :, j], fd, atol=1e-6)


def test_gradient_is_bit_identical_to_loss_and_grad():
    model, theta, x, y, noise = _setup()
    loss, grad = model.loss_and_grad(
        theta, x, y, noise=noise, shots=64, rng=np.random.default_rng(5)
    )
    rep = gradient_report(model, theta, x, y, noise=noise, shots=64, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(rep.grad, grad)
    np.testing.assert_array_equal(rep.loss, loss)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_plug_in_variance_and_bias_match_repeated_draws(n_classes):
    """Over 3,000 draws at fixed θ and minibatch: the empirical variance and mean error about the noiseless
    gradient agree with what one draw's report predicts (within 15 % on the summed variance)."""
    model, theta, x, y, noise = _setup(n_classes=n_classes)
    shots, draws = 256, 3000
    rng = np.random.default_rng(7)
    _, clean = model.loss_and_grad(theta, x, y, noise=None, shots=None, rng=None)
    _, noisy = model.loss_and_grad(theta, x, y, noise=noise, shots=None, rng=None)
    samples = np.stack(
        [
            model.loss_and_grad(theta, x, y, noise=noise, shots=shots, rng=rng)[1]
            for _ in range(draws)
        ]
    )
    reports = [
        gradient_report(model, theta, x, y, noise=noise, shots=shots, rng=rng) for _ in range(20)
    ]
    predicted_var = np.mean([r.variance for r in reports], axis=0)
    np.testing.assert_allclose(
        samples.var(axis=0).sum(axis=1), predicted_var.sum(axis=1), rtol=0.15
    )
    predicted_bias = np.mean([r.bias for r in reports], axis=0)
    np.testing.assert_allclose(
        predicted_bias, noisy - clean, atol=4 * np.sqrt(predicted_var.max() / 20)
    )
    # the noiseless node has no bias; the noisy ones do
    assert np.abs(noisy - clean)[0].max() < np.abs(noisy - clean)[2].max()


def test_exact_expectations_have_no_variance_and_the_exact_bias():
    model, theta, x, y, noise = _setup()
    rep = gradient_report(model, theta, x, y, noise=noise)
    _, clean = model.loss_and_grad(theta, x, y)
    assert np.all(rep.variance == 0)
    np.testing.assert_allclose(rep.grad - rep.bias, clean, atol=1e-15)
    np.testing.assert_array_equal(rep.mse, rep.bias**2)
