"""Cross-check of the batched simulator against PennyLane ``default.qubit`` (autograd backprop).

Random circuits over n = 1…8 qubits, L = 1…5 layers, every entangler, with and without re-uploading,
batched over nodes and samples: expectations, Jacobians, weighted adjoint gradients and the loss gradient
must agree within 1e-10. PennyLane is a test extra; without it these tests are skipped.
"""

from __future__ import annotations

import numpy as np
import pytest

qml = pytest.importorskip("pennylane")
pnp = pytest.importorskip("pennylane.numpy")

from ceas.qnn import CircuitSpec, NodeNoise, QNNModel, QNNSimulator
from ceas.rng import stream

TOL = 1e-10


def pairs_of(entangler: str, n: int) -> list[tuple[int, int]]:
    """The SPEC §3 CNOT orders, written out again here so the reference does not reuse ceas code."""
    if entangler == "ring":
        return (
            []
            if n == 1
            else [(0, 1), (1, 0)]
            if n == 2
            else [(q, q + 1) for q in range(n - 1)] + [(n - 1, 0)]
        )
    if entangler == "linear":
        return [(q, q + 1) for q in range(n - 1)]
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def reference_circuit(spec: CircuitSpec):
    """PennyLane QNode θ (P,), x (B, n) -> ⟨Z_q⟩ for the readout qubits (broadcast over the B samples)."""
    n, layers = spec.n_qubits, spec.n_layers
    readout = (
        [0]
        if spec.n_classes == 2 and spec.entangler == "ring"
        else [n - 1]
        if spec.n_classes == 2
        else list(range(spec.n_classes))
        if spec.entangler == "ring"
        else list(range(n - spec.n_classes, n))
    )
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev, diff_method="backprop", interface="autograd")
    def circuit(theta, x):
        t = theta.reshape(layers, n, 2)
        for layer in range(layers):
            if spec.reupload or layer == 0:
                for q in range(n):
                    qml.RY(x[:, q], wires=q)
            for q in range(n):
                qml.RY(t[layer, q, 0], wires=q)
                qml.RZ(t[layer, q, 1], wires=q)
            for c, tg in pairs_of(spec.entangler, n):
                qml.CNOT(wires=[c, tg])
        if len(readout) == 1:
            return qml.expval(qml.PauliZ(readout[0]))
        return [qml.expval(qml.PauliZ(q)) for q in readout]

    return circuit


def reference_expval_and_jacobian(spec, theta, x):
    """(E (B, O), J (B, O, P)) of one node from PennyLane."""
    circuit = reference_circuit(spec)
    t = pnp.array(theta, requires_grad=True)
    xs = pnp.array(x, requires_grad=False)

    def f(tt):
        out = circuit(tt, xs)
        return pnp.stack(out, axis=-1) if isinstance(out, (list, tuple)) else out[:, None]

    e = np.asarray(f(t))
    jac = np.asarray(qml.jacobian(f)(t))  # (B, O, P)
    return e, jac


# n = 1…8 × every entangler × {plain, re-uploading}, with L drawn in 1…5: 48 random circuits
CASES = [
    (n, entangler, int(stream(0, "pl-cases", n, i, int(reupload)).integers(1, 6)), reupload)
    for n in range(1, 9)
    for i, entangler in enumerate(["ring", "linear", "all_to_all"])
    for reupload in (False, True)
]


@pytest.mark.parametrize(("n", "entangler", "layers", "reupload"), CASES)
def test_expectations_jacobian_and_weighted_gradient_match_pennylane(
    n, entangler, layers, reupload
):
    classes = 2 if n < 3 or layers % 2 else 3
    spec = CircuitSpec(n, layers, entangler, n_classes=classes, reupload=reupload)
    rng = stream(1, "pl-inputs", n, layers)
    n_nodes, n_samples = 2, 3
    theta = rng.uniform(0, 2 * np.pi, (n_nodes, spec.n_params))
    x = rng.uniform(0, np.pi, (n_nodes, n_samples, n))
    w = rng.normal(size=(n_nodes, n_samples, spec.n_outputs))
    sim = QNNSimulator(spec)
    e, g = sim.expval_and_grad(theta, x, w)
    jac = sim.jacobian(theta, x)
    for k in range(n_nodes):
        e_ref, j_ref = reference_expval_and_jacobian(spec, theta[k], x[k])
        np.testing.assert_allclose(e[k], e_ref, atol=TOL, rtol=0)
        np.testing.assert_allclose(jac[k], j_ref, atol=TOL, rtol=0)
        np.testing.assert_allclose(g[k], np.einsum("bo,bop->bp", w[k], j_ref), atol=TOL, rtol=0)


@pytest.mark.parametrize(("classes", "loss"), [(2, "bce"), (3, "bce"), (2, "mse")])
def test_noisy_loss_gradient_matches_pennylane_autograd(classes, loss):
    spec = CircuitSpec(5, 3, "ring", n_classes=classes)
    model = QNNModel(spec, loss=loss, output_scale=2.5)
    rng = stream(2, "pl-loss", classes)
    theta = rng.uniform(0, 2 * np.pi, (2, spec.n_params))
    x = rng.uniform(0, np.pi, (2, 4, 5))
    y = rng.integers(0, classes, (2, 4))
    noise = NodeNoise(np.array([0.05, 0.15]), np.array([0.02, 0.1]))
    value, grad = model.loss_and_grad(theta, x, y, noise=noise)
    c = noise.contraction(spec.n_layers)
    circuit = reference_circuit(spec)
    for k in range(2):

        def node_loss(t, k=k):
            out = circuit(t, pnp.array(x[k], requires_grad=False))
            e = c[k] * (pnp.stack(out, axis=-1) if classes > 2 else out[:, None])
            a = 2.5
            if loss == "mse":
                target = 2.0 * y[k] - 1.0
                return pnp.mean((e[:, 0] - target) ** 2)
            if classes == 2:
                z = a * e[:, 0]
                return pnp.mean(pnp.log1p(pnp.exp(z)) - y[k] * z)
            z = a * e
            picked = pnp.stack([z[b, y[k][b]] for b in range(4)])
            return pnp.mean(pnp.log(pnp.sum(pnp.exp(z), axis=1)) - picked)

        t = pnp.array(theta[k], requires_grad=True)
        np.testing.assert_allclose(value[k], node_loss(t), atol=TOL, rtol=0)
        np.testing.assert_allclose(grad[k], qml.grad(node_loss)(t), atol=TOL, rtol=0)
