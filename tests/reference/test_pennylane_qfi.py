"""QFI against PennyLane: F_Q = 4 × the Fubini–Study metric tensor, diagonal and full matrix."""

from __future__ import annotations

import numpy as np
import pytest

qml = pytest.importorskip("pennylane")
pnp = pytest.importorskip("pennylane.numpy")

from ceas.qnn import CircuitSpec, QNNSimulator
from ceas.rng import stream


def pairs_of(entangler: str, n: int) -> list[tuple[int, int]]:
    """The SPEC §3 CNOT orders, written out independently of ceas."""
    if entangler == "ring":
        if n == 1:
            return []
        return [(0, 1), (1, 0)] if n == 2 else [(q, q + 1) for q in range(n - 1)] + [(n - 1, 0)]
    if entangler == "linear":
        return [(q, q + 1) for q in range(n - 1)]
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def state_circuit(spec: CircuitSpec):
    n, layers = spec.n_qubits, spec.n_layers
    dev = qml.device("default.qubit", wires=n)

    def ops(theta, x):
        t = theta.reshape(layers, n, 2)
        for layer in range(layers):
            if spec.reupload or layer == 0:
                for q in range(n):
                    qml.RY(x[q], wires=q)
            for q in range(n):
                qml.RY(t[layer, q, 0], wires=q)
                qml.RZ(t[layer, q, 1], wires=q)
            for c, tg in pairs_of(spec.entangler, n):
                qml.CNOT(wires=[c, tg])

    @qml.qnode(dev, diff_method="adjoint")
    def expect(theta, x):
        ops(theta, x)
        return qml.expval(qml.PauliZ(0))

    @qml.qnode(dev)
    def state(theta, x):
        ops(theta, x)
        return qml.state()

    return expect, state


@pytest.mark.parametrize(
    ("n", "layers", "entangler", "reupload"),
    [
        (2, 2, "ring", False),
        (3, 2, "linear", True),
        (4, 2, "all_to_all", False),
        (5, 1, "ring", True),
    ],
)
def test_qfi_equals_four_times_pennylane_metric_tensor(n, layers, entangler, reupload):
    spec = CircuitSpec(n, layers, entangler, reupload=reupload)
    rng = stream(3, "pl-qfi", n)
    theta = rng.uniform(0, 2 * np.pi, (2, spec.n_params))
    x = rng.uniform(0, np.pi, (2, 2, n))
    sim = QNNSimulator(spec)
    f_diag = sim.qfi_diagonal(theta, x)
    f_mat = sim.qfi_matrix(theta, x)
    expect, state = state_circuit(spec)
    for k in range(2):
        for b in range(2):
            t = pnp.array(theta[k], requires_grad=True)
            xs = pnp.array(x[k, b], requires_grad=False)
            full = np.asarray(qml.adjoint_metric_tensor(expect)(t, xs))
            diag = np.asarray(qml.metric_tensor(expect, approx="diag")(t, xs))
            np.testing.assert_allclose(f_mat[k, b], 4 * full, atol=1e-8, rtol=0)
            np.testing.assert_allclose(f_diag[k, b], 4 * np.diag(diag), atol=1e-8, rtol=0)
            # and a finite-difference Fubini–Study metric from PennyLane's state vector
            h = 1e-4
            psi = np.asarray(state(t, xs))
            d = []
            for p in range(spec.n_params):
                step = np.zeros(spec.n_params)
                step[p] = h
                d.append(
                    (np.asarray(state(t + step, xs)) - np.asarray(state(t - step, xs))) / (2 * h)
                )
            d = np.array(d)
            ov = d.conj() @ psi
            fs = 4 * np.real(d.conj() @ d.T - np.outer(ov, ov.conj()))
            np.testing.assert_allclose(f_mat[k, b], fs, atol=1e-8, rtol=0)
