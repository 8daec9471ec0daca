"""QNNModel: losses and their derivatives, exact and shot-based loss gradients, prediction, QFI summary."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceas.errors import UnknownNameError, ValidationError
from ceas.qnn import CircuitSpec, NodeNoise, QNNModel, QNNSimulator
from ceas.qnn.losses import make_loss
from ceas.rng import stream


def test_loss_closed_forms():
    bce = make_loss("bce", 2, 4.0)
    e = np.array([[0.0], [0.5], [-0.5]])
    y = np.array([1, 1, 0])
    # ℓ = -log σ(a E) for y = 1, -log(1 - σ(a E)) for y = 0
    np.testing.assert_allclose(
        bce.value(e, y), [np.log(2), np.log1p(np.exp(-2.0)), np.log1p(np.exp(-2.0))]
    )
    mse = make_loss("mse", 2, 4.0)
    np.testing.assert_allclose(mse.value(e, y), [1.0, 0.25, 0.25])  # targets +1, +1, -1
    ce = make_loss("bce", 3, 2.0)
    e3 = np.array([[0.1, -0.3, 0.7]])
    z = 2.0 * e3[0]
    np.testing.assert_allclose(ce.value(e3, np.array([2])), [np.log(np.exp(z).sum()) - z[2]])
    mse3 = make_loss("mse", 3, 2.0)
    np.testing.assert_allclose(
        mse3.value(e3, np.array([0])), [((0.1 - 1) ** 2 + 0.7**2 + 1.7**2) / 3]
    )


def test_bce_is_stable_for_large_logits():
    bce = make_loss("bce", 2, 100.0)
    value = bce.value(np.array([[1.0], [-1.0]]), np.array([0, 1]))
    np.testing.assert_allclose(value, [100.0, 100.0], rtol=1e-12)
    assert np.all(np.isfinite(bce.derivative(np.array([[1.0]]), np.array([0]))))


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(["bce", "mse"]),
    classes=st.sampled_from([2, 3, 5]),
    scale=st.floats(0.5, 8.0),
    seed=st.integers(0, 10_000),
)
def test_loss_derivative_matches_finite_differences(name, classes, scale, seed):
    loss = make_loss(name, classes, scale)
    rng = np.random.default_rng(seed)
    outputs = 1 if classes == 2 else classes
    e = rng.uniform(-0.95, 0.95, (4, outputs))
    y = rng.integers(0, classes, 4)
    h = 1e-6
    fd = np.empty_like(e)
    for o in range(outputs):
        step = np.zeros_like(e)
        step[:, o] = h
        fd[:, o] = (loss.value(e + step, y) - loss.value(e - step, y)) / (2 * h)
    np.testing.assert_allclose(loss.derivative(e, y), fd, atol=1e-7)


def test_unknown_loss_suggests_closest():
    with pytest.raises(UnknownNameError, match="did you mean 'mse'"):
        QNNModel(CircuitSpec(2, 1), loss="mes")


@pytest.mark.parametrize(
    ("loss", "classes", "reupload"), [("bce", 2, False), ("mse", 3, True), ("bce", 3, False)]
)
def test_exact_loss_gradient_matches_finite_differences_with_noise(loss, classes, reupload):
    spec = CircuitSpec(4, 2, "ring", n_classes=classes, reupload=reupload)
    model = QNNModel(spec, loss=loss, output_scale=3.0)
    rng = stream(41, "model", classes)
    theta = rng.uniform(0, 2 * np.pi, (3, spec.n_params))
    x = rng.uniform(0, np.pi, (3, 5, 4))
    y = rng.integers(0, classes, (3, 5))
    noise = NodeNoise(np.array([0.0, 0.1, 0.25]), np.array([0.05, 0.0, 0.2]))
    value, grad = model.loss_and_grad(theta, x, y, noise=noise)
    # independent: loss from exact expectations, contraction applied by hand
    c = noise.contraction(2)[:, None, None]
    lf = make_loss(loss, classes, 3.0)

    def total(th):
        return lf.value(c * model.simulator.expval(th, x), y).mean(axis=1)

    np.testing.assert_allclose(value, total(theta), atol=1e-14)
    h = 1e-6
    fd = np.empty_like(theta)
    for p in range(spec.n_params):
        step = np.zeros(spec.n_params)
        step[p] = h
        fd[:, p] = (total(theta + step) - total(theta - step)) / (2 * h)
    np.testing.assert_allclose(grad, fd, atol=1e-8)


def test_shot_loss_gradient_is_unbiased_for_mse():
    """For MSE, ∂ℓ/∂E is linear and Ê, Ĵ come from independent shots, so E[∂ℓ(Ê)·Ĵ] = ∂ℓ(E)·J."""
    spec = CircuitSpec(3, 1, "ring")
    model = QNNModel(spec, loss="mse")
    rng = stream(42, "shots-model")
    theta = rng.uniform(0, 2 * np.pi, spec.n_params)
    x = rng.uniform(0, np.pi, (2, 3))
    y = np.array([0, 1])
    draws = 1500
    noise = NodeNoise(np.full(draws, 0.1))
    _, exact = model.loss_and_grad(theta[None], x[None], y[None], noise=noise.subset([0]))
    _, grads = model.loss_and_grad(
        np.broadcast_to(theta, (draws, spec.n_params)),
        np.broadcast_to(x, (draws, 2, 3)),
        np.broadcast_to(y, (draws, 2)),
        noise=noise,
        shots=100,
        rng=rng,
    )
    se = grads.std(axis=0, ddof=1) / np.sqrt(draws)
    assert np.all(np.abs(grads.mean(axis=0) - exact[0]) <= 4 * se)


def test_shots_need_a_generator():
    model = QNNModel(CircuitSpec(2, 1))
    with pytest.raises(ValidationError, match="rng must be a numpy.random.Generator"):
        model.loss_and_grad(np.zeros((1, 4)), np.zeros((1, 2, 2)), np.zeros((1, 2), int), shots=10)


def test_predict_accuracy_and_sign_convention():
    spec = CircuitSpec(1, 1)
    model = QNNModel(spec)
    x = np.array([[0.0], [np.pi], [0.3], [2.9]])  # <Z> = cos x
    pred = model.predict(np.zeros(2), x)
    np.testing.assert_array_equal(pred, [1, 0, 1, 0])  # label 1 <-> <Z> >= 0
    assert model.accuracy(np.zeros(2), x, np.array([1, 0, 0, 0])) == 0.75
    spec3 = CircuitSpec(3, 1, "ring", n_classes=3)
    model3 = QNNModel(spec3)
    # θ = 0: the ring maps basis states; x = π on qubit 1 only -> |010> -> readout bits decide the argmax
    e = model3.simulator.expval(np.zeros((1, spec3.n_params)), np.array([[[0, np.pi, 0]]]))[0]
    np.testing.assert_array_equal(
        model3.predict(np.zeros(spec3.n_params), np.array([[0, np.pi, 0]])), np.argmax(e, 1)
    )


@pytest.mark.parametrize(
    "spec, loss, chunk_bytes",
    [
        (CircuitSpec(4, 4), "bce", 2**20),
        (CircuitSpec(4, 3, reupload=True), "bce", 2**20),
        (CircuitSpec(5, 2), "mse", 2**20),
        (CircuitSpec(3, 2, "ring", n_classes=3), "bce", 2**20),
        (CircuitSpec(4, 2), "bce", 1024),  # several chunks of samples
    ],
)
def test_loss_and_accuracy_equals_the_two_pass_values_bit_for_bit(spec, loss, chunk_bytes):
    """One forward pass gives the very loss of loss_and_grad and the accuracy of accuracy (0 ulp)."""
    model = QNNModel(spec, loss=loss, simulator=QNNSimulator(spec, chunk_bytes=chunk_bytes))
    rng = np.random.default_rng(7)
    theta = model.init_params(rng)
    x = rng.uniform(0, np.pi, size=(143, spec.n_qubits))
    y = rng.integers(0, spec.n_classes, size=143)
    loss_value, accuracy = model.loss_and_accuracy(theta, x, y)
    two_pass, _ = model.loss_and_grad(theta[None], x[None], y[None])
    assert loss_value == float(two_pass[0])
    assert accuracy == model.accuracy(theta, x, y)


def test_label_validation():
    model = QNNModel(CircuitSpec(2, 1))
    theta, x = np.zeros((1, 4)), np.zeros((1, 3, 2))
    with pytest.raises(ValidationError, match=r"y must be in \[0, 1\] \(n_classes = 2\), got 2"):
        model.loss_and_grad(theta, x, np.array([[0, 1, 2]]))
    with pytest.raises(ValidationError, match=r"y must have shape \(1, 3\)"):
        model.loss_and_grad(theta, x, np.array([0, 1, 1]))
    with pytest.raises(ValidationError, match="y must be integer labels"):
        model.loss_and_grad(theta, x, np.array([[0.5, 1, 1]]))
    with pytest.raises(ValidationError, match="output_scale must be a finite number > 0, got -1"):
        QNNModel(CircuitSpec(2, 1), output_scale=-1)
    with pytest.raises(ValidationError, match=r"init must be one of \['uniform', 'small'\]"):
        QNNModel(CircuitSpec(2, 1), init="zeros")


def test_init_params_are_reproducible_and_in_range():
    model = QNNModel(CircuitSpec(3, 2))
    a = model.init_params(stream(5, "init"))
    b = model.init_params(stream(5, "init"))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (12,) and a.min() >= 0 and a.max() < 2 * np.pi
    small = QNNModel(CircuitSpec(3, 2), init="small").init_params(stream(5, "init"))
    assert np.abs(small).max() < 1.0


def test_qfi_summary_is_mean_of_the_diagonal_and_shrinks_with_noise():
    spec = CircuitSpec(3, 2)
    model = QNNModel(spec)
    rng = stream(43, "summary")
    theta = rng.uniform(0, 2 * np.pi, (2, spec.n_params))
    probe = rng.uniform(0, np.pi, (4, 3))
    f = QNNSimulator(spec).qfi_diagonal(theta, np.broadcast_to(probe, (2, 4, 3)))
    np.testing.assert_allclose(model.qfi_summary(theta, probe), f.mean(axis=(1, 2)), atol=1e-14)
    np.testing.assert_allclose(
        model.qfi_summary(theta, np.broadcast_to(probe, (2, 4, 3))), f.mean(axis=(1, 2)), atol=1e-14
    )
    noise = NodeNoise(np.array([0.0, 0.2]))
    q = 1 - 0.8**2
    factor = (1 - q) ** 2 / ((1 - q) + 2 * q / 8)
    np.testing.assert_allclose(
        model.qfi_summary(theta, probe, noise), f.mean(axis=(1, 2)) * [1.0, factor], atol=1e-14
    )


def test_gradient_descent_lowers_the_loss_on_a_separable_task():
    spec = CircuitSpec(2, 2, "ring")
    model = QNNModel(spec)
    rng = stream(44, "train")
    x = rng.uniform(0, np.pi, (1, 40, 2))
    y = (x[0, :, 0] < np.pi / 2).astype(int)[None]  # label 1 <-> small first angle (<Z_0> large)
    theta = model.init_params(rng)[None]
    first, _ = model.loss_and_grad(theta, x, y)
    for _ in range(60):
        _, g = model.loss_and_grad(theta, x, y)
        theta = theta - 0.2 * g
    last, _ = model.loss_and_grad(theta, x, y)
    assert last[0] < 0.5 * first[0]
    assert model.accuracy(theta[0], x[0], y[0]) >= 0.9
