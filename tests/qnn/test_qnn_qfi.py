"""Pure-state quantum Fisher information: closed forms and finite-difference Fubini–Study metric."""

from __future__ import annotations

import numpy as np
import pytest
import qnn_dense_reference as ref

from ceas.errors import ValidationError
from ceas.qnn import CircuitSpec, QNNSimulator
from ceas.rng import stream


def test_single_qubit_closed_form():
    # RY(x+a) then RZ(b) on |0>: F_ry = 1 (generator Y, <Y> = 0 on a real state), F_rz = sin²(x+a)
    sim = QNNSimulator(CircuitSpec(1, 1))
    a = np.array([0.0, 0.4, 1.3, 2.9])
    x = np.array([0.0, 0.2, 0.5, 3.0])
    f = sim.qfi_diagonal(np.stack([a, np.full(4, 0.7)], 1), x[:, None, None])
    np.testing.assert_allclose(f[:, 0, 0], 1.0, atol=1e-14)
    np.testing.assert_allclose(f[:, 0, 1], np.sin(a + x) ** 2, atol=1e-14)


def fubini_study_fd(theta, x, n, layers, entangler, reupload, h=1e-4):
    """4·Re[<∂i|∂j> - <∂i|ψ><ψ|∂j>] with central differences of the dense reference state."""
    psi = ref.state(theta, x, n, layers, entangler, reupload)
    d = []
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        d.append(
            (
                ref.state(up, x, n, layers, entangler, reupload)
                - ref.state(down, x, n, layers, entangler, reupload)
            )
            / (2 * h)
        )
    d = np.array(d)
    gram = d.conj() @ d.T
    ov = d.conj() @ psi
    return 4 * np.real(gram - np.outer(ov, ov.conj()))


@pytest.mark.parametrize(
    ("n", "layers", "entangler", "reupload"),
    [
        (2, 2, "ring", False),
        (3, 2, "linear", True),
        (4, 1, "all_to_all", False),
        (5, 1, "ring", True),
    ],
)
def test_qfi_matrix_and_diagonal_match_finite_difference_metric(n, layers, entangler, reupload):
    spec = CircuitSpec(n, layers, entangler, reupload=reupload)
    rng = stream(31, "qfi", n)
    theta = rng.uniform(0, 2 * np.pi, (2, spec.n_params))
    x = rng.uniform(0, np.pi, (2, 2, n))
    sim = QNNSimulator(spec)
    f_mat = sim.qfi_matrix(theta, x)
    f_diag = sim.qfi_diagonal(theta, x)
    np.testing.assert_allclose(f_diag, np.diagonal(f_mat, axis1=-2, axis2=-1), atol=1e-12)
    np.testing.assert_allclose(f_mat, np.swapaxes(f_mat, -1, -2), atol=1e-12)
    for k in range(2):
        for b in range(2):
            want = fubini_study_fd(theta[k], x[k, b], n, layers, entangler, reupload)
            np.testing.assert_allclose(f_mat[k, b], want, atol=1e-8)
    assert np.all(f_diag >= -1e-12) and np.all(f_diag <= 1 + 1e-12)  # 1 - <P>² for a Pauli P


def test_qfi_matrix_refuses_large_parameter_counts():
    sim = QNNSimulator(CircuitSpec(4, 2))
    with pytest.raises(
        ValidationError, match=r"qfi_matrix needs P <= max_params = 8 parameters, got P = 16"
    ):
        sim.qfi_matrix(np.zeros((1, 16)), np.zeros((1, 1, 4)), max_params=8)
