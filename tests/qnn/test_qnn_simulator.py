"""The batched simulator against closed forms and an independent dense-matrix reference."""

from __future__ import annotations

import numpy as np
import pytest
import qnn_dense_reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from ceas.errors import ValidationError
from ceas.qnn import CircuitSpec, QNNSimulator
from ceas.rng import stream


def random_inputs(spec, n_nodes, n_samples, seed):
    rng = stream(seed, "qnn-test-inputs")
    theta = rng.uniform(0, 2 * np.pi, (n_nodes, spec.n_params))
    x = rng.uniform(0, np.pi, (n_nodes, n_samples, spec.n_qubits))
    return theta, x


# ---------------------------------------------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------------------------------------------


def test_single_qubit_ry_gives_cosine_and_rz_leaves_z_alone():
    sim = QNNSimulator(CircuitSpec(1, 1))
    a = np.linspace(-3, 3, 7)
    b = np.linspace(0.1, 5, 7)
    x = np.linspace(0, np.pi, 7)
    theta = np.stack([a, b], axis=1)  # (N=7, P=2)
    e = sim.expval(theta, x[:, None, None])
    np.testing.assert_allclose(e[:, 0, 0], np.cos(a + x), atol=1e-14)
    # d<Z>/d(ry) = -sin(a+x), d<Z>/d(rz) = 0
    _, g = sim.expval_and_grad(theta, x[:, None, None], np.ones((7, 1, 1)))
    np.testing.assert_allclose(g[:, 0, 0], -np.sin(a + x), atol=1e-14)
    np.testing.assert_allclose(g[:, 0, 1], 0.0, atol=1e-14)


def test_two_qubit_ring_closed_form():
    # Layer: RY(a) on q0, RY(b) on q1 (RZ = 0), then CNOT(0,1), CNOT(1,0). Input x = 0.
    # After the CNOTs, wire 0 carries b0 xor b1 xor b0 = b1, so <Z_0> = cos(b).
    sim = QNNSimulator(CircuitSpec(2, 1, "ring"))
    a, b = 0.7, -1.9
    theta = np.array([[a, 0.3, b, -0.8]])
    e = sim.expval(theta, np.zeros((1, 1, 2)))
    assert e[0, 0, 0] == pytest.approx(np.cos(b), abs=1e-14)
    # linear (single CNOT(0,1)), readout on the last qubit: wire 1 carries b0 xor b1 -> <Z_1> = cos a cos b
    sim = QNNSimulator(CircuitSpec(2, 1, "linear"))
    e = sim.expval(theta, np.zeros((1, 1, 2)))
    assert e[0, 0, 0] == pytest.approx(np.cos(a) * np.cos(b), abs=1e-14)


def test_cnot_truth_table_on_basis_states():
    # x in {0, π} prepares basis states; with θ = 0 the circuit is only the entangler.
    spec = CircuitSpec(3, 1, "linear", n_classes=3)
    sim = QNNSimulator(spec)
    bits = np.array([[b >> 2 & 1, b >> 1 & 1, b & 1] for b in range(8)], dtype=float)
    e = sim.expval(np.zeros((1, spec.n_params)), (np.pi * bits)[None])  # (1, 8, 3)
    out_bits = np.rint((1 - e[0]) / 2).astype(int)
    # linear: CNOT(0,1) then CNOT(1,2): b1 ^= b0, then b2 ^= b1'
    expected = bits.astype(int).copy()
    expected[:, 1] ^= expected[:, 0]
    expected[:, 2] ^= expected[:, 1]
    np.testing.assert_array_equal(out_bits, expected)


def test_states_are_normalised_and_match_the_dense_reference():
    for entangler in ("ring", "linear", "all_to_all"):
        for reupload in (False, True):
            spec = CircuitSpec(5, 3, entangler, reupload=reupload)
            theta, x = random_inputs(spec, 2, 3, seed=1)
            psi = QNNSimulator(spec).state(theta, x)
            np.testing.assert_allclose(np.linalg.norm(psi, axis=-1), 1.0, atol=1e-13)
            for k in range(2):
                for b in range(3):
                    want = ref.state(theta[k], x[k, b], 5, 3, entangler, reupload)
                    np.testing.assert_allclose(psi[k, b], want, atol=1e-13)


@pytest.mark.parametrize("entangler", ["ring", "linear", "all_to_all"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_expectations_match_dense_reference(entangler, n_classes):
    spec = CircuitSpec(4, 2, entangler, n_classes=n_classes, reupload=True)
    theta, x = random_inputs(spec, 3, 2, seed=2)
    e = QNNSimulator(spec).expval(theta, x)
    for k in range(3):
        for b in range(2):
            psi = ref.state(theta[k], x[k, b], 4, 2, entangler, True)
            want = [ref.expval_z(psi, q, 4) for q in spec.readout_qubits]
            np.testing.assert_allclose(e[k, b], want, atol=1e-13)


# ---------------------------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------------------------


def central_difference(sim, theta, x, weights, h=1e-5):
    """d/dθ Σ_o w_o<Z_o> by central differences, per sample: (N, B, P)."""
    n_nodes, n_params = theta.shape
    out = np.empty((n_nodes, x.shape[1], n_params))
    for p in range(n_params):  # a test loop over parameters, fine
        step = np.zeros(n_params)
        step[p] = h
        up = (sim.expval(theta + step, x) * weights).sum(-1)
        down = (sim.expval(theta - step, x) * weights).sum(-1)
        out[..., p] = (up - down) / (2 * h)
    return out


@pytest.mark.parametrize(
    ("n", "layers", "entangler", "classes", "reupload"),
    [
        (3, 2, "ring", 2, False),
        (6, 2, "linear", 3, True),
        (7, 1, "all_to_all", 2, False),
        (9, 2, "ring", 4, True),
    ],
)
def test_adjoint_gradient_matches_finite_differences(n, layers, entangler, classes, reupload):
    spec = CircuitSpec(n, layers, entangler, n_classes=classes, reupload=reupload)
    sim = QNNSimulator(spec)
    theta, x = random_inputs(spec, 2, 3, seed=3)
    w = stream(3, "weights").normal(size=(2, 3, spec.n_outputs))
    e, g = sim.expval_and_grad(theta, x, w)
    np.testing.assert_allclose(e, sim.expval(theta, x), atol=1e-14)
    np.testing.assert_allclose(g, central_difference(sim, theta, x, w), atol=1e-8)


def test_reduced_callable_and_jacobian_forms_agree():
    spec = CircuitSpec(7, 2, "ring", n_classes=3)
    sim = QNNSimulator(spec)
    theta, x = random_inputs(spec, 3, 4, seed=4)
    w = stream(4, "weights").normal(size=(3, 4, 3))
    e, g = sim.expval_and_grad(theta, x, w)
    _, g_sum = sim.expval_and_grad(theta, x, w, reduce=True)
    np.testing.assert_allclose(g_sum, g.sum(axis=1), atol=1e-13)
    seen = {}

    def weights_of(e_arg):
        seen["e"] = e_arg
        return np.tanh(e_arg) * w

    e2, g2 = sim.expval_and_grad(theta, x, weights_of)
    np.testing.assert_allclose(e2, e, atol=1e-14)
    np.testing.assert_allclose(seen["e"], e, atol=1e-14)
    _, g3 = sim.expval_and_grad(theta, x, np.tanh(e) * w)
    np.testing.assert_allclose(g2, g3, atol=1e-13)
    jac = sim.jacobian(theta, x)  # (N, B, O, P)
    np.testing.assert_allclose(np.einsum("kbo,kbop->kbp", w, jac), g, atol=1e-13)


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_results_do_not_depend_on_grouping_chunking_or_threads(data):
    n = data.draw(st.integers(2, 8), label="n")
    sizes, left = [], n
    while left:
        s = data.draw(st.integers(1, min(4, left)), label="group")
        sizes.append(s)
        left -= s
    reupload = data.draw(st.booleans(), label="reupload")
    spec = CircuitSpec(
        n, 2, data.draw(st.sampled_from(["ring", "linear", "all_to_all"])), reupload=reupload
    )
    theta, x = random_inputs(spec, 3, 5, seed=5)
    w = stream(5, "weights").normal(size=(3, 5, 1))
    base = QNNSimulator(spec, threads=1)
    other = QNNSimulator(spec, group_sizes=tuple(sizes), threads=2, chunk_bytes=1024)
    e0, g0 = base.expval_and_grad(theta, x, w)
    e1, g1 = other.expval_and_grad(theta, x, w)
    np.testing.assert_allclose(e1, e0, atol=1e-13)
    np.testing.assert_allclose(g1, g0, atol=1e-13)
    _, r1 = other.expval_and_grad(theta, x, w, reduce=True)
    np.testing.assert_allclose(r1, g0.sum(axis=1), atol=1e-12)


def test_simulator_and_model_survive_pickling_for_worker_processes():
    import pickle

    from ceas.qnn import QNNModel

    spec = CircuitSpec(7, 1)
    sim = QNNSimulator(spec, threads=2, chunk_bytes=4096)
    theta, x = random_inputs(spec, 3, 4, seed=6)
    e = sim.expval(theta, x)  # starts the worker threads and fills the workspace pool
    clone = pickle.loads(pickle.dumps(QNNModel(spec, simulator=sim)))
    np.testing.assert_array_equal(clone.simulator.expval(theta, x), e)


# ---------------------------------------------------------------------------------------------------------------
# input validation
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("theta_shape", "x_shape", "message"),
    [
        ((2, 15), (2, 3, 4), "theta must have shape (N, 16), got (2, 15)"),
        ((2, 16), (3, 3, 4), "x must have shape (N=2, B, 4), got (3, 3, 4)"),
        ((2, 16), (2, 3, 5), "x must have shape (N=2, B, 4), got (2, 3, 5)"),
        ((16,), (2, 3, 4), "theta must have 2 dimensions, got shape (16,)"),
        ((2, 16), (2, 0, 4), "x must have at least one sample per node"),
    ],
)
def test_bad_shapes_are_rejected_before_compute(theta_shape, x_shape, message):
    sim = QNNSimulator(CircuitSpec(4, 2))
    with pytest.raises(ValidationError) as err:
        sim.expval(np.zeros(theta_shape), np.zeros(x_shape))
    assert message in str(err.value)


def test_bad_values_and_weights_are_rejected():
    sim = QNNSimulator(CircuitSpec(2, 1))
    theta, x = np.zeros((1, 4)), np.zeros((1, 2, 2))
    with pytest.raises(ValidationError, match="theta must contain only finite values"):
        sim.expval(np.full((1, 4), np.nan), x)
    with pytest.raises(
        ValidationError, match="x must be a real numeric array, got dtype complex128"
    ):
        sim.expval(theta, x + 0j)
    with pytest.raises(ValidationError, match=r"weights must have shape \(N, B, O\) = \(1, 2, 1\)"):
        sim.expval_and_grad(theta, x, np.ones((1, 2, 2)))
    with pytest.raises(
        ValidationError, match=r"weights must have 3 dimensions, got shape \(1, 2\)"
    ):
        sim.expval_and_grad(theta, x, np.ones((1, 2)))
    with pytest.raises(ValidationError, match=r"weights must have shape"):
        sim.expval_and_grad(theta, x, lambda e: np.ones((2, 2, 1)))
    with pytest.raises(
        ValidationError, match=r"group_sizes must be integers in \[1, 6\] summing to"
    ):
        QNNSimulator(CircuitSpec(3, 1), group_sizes=(2, 2))
    small = QNNSimulator(CircuitSpec(3, 1), max_state_bytes=1000)
    with pytest.raises(ValidationError, match="more than max_state_bytes"):
        small.state(np.zeros((2, 6)), np.zeros((2, 8, 3)))
