"""Unitary- and circuit-level schemes: exact with perfect pairs, a dense density-matrix reference with noisy ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceas.partitions import CircuitLevel, DataLevel, UnitaryLevel
from ceas.qnn import CircuitSpec, QNNSimulator

from . import partition_dense_reference as ref

ENTANGLERS = ("ring", "linear", "all_to_all")


def random_inputs(spec: CircuitSpec, nodes: int, samples: int, rng: np.random.Generator):
    theta = rng.uniform(0, 2 * np.pi, (nodes, spec.n_params))
    x = rng.uniform(0, np.pi, (nodes, samples, spec.n_qubits))
    return theta, x


# ---------------------------------------------------------------------------------------------------------------
# perfect pairs: the monolithic circuit, exactly
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("entangler", ENTANGLERS)
@pytest.mark.parametrize("reupload", [False, True])
def test_perfect_pairs_reproduce_monolithic_expectations_and_gradients(entangler, reupload):
    rng = np.random.default_rng(2 * ENTANGLERS.index(entangler) + int(reupload))
    spec = CircuitSpec(5, 4, entangler=entangler, reupload=reupload, n_classes=3)
    theta, x = random_inputs(spec, 2, 3, rng)
    sim = QNNSimulator(spec)
    e_ref, jac_ref = sim.expval(theta, x), sim.jacobian(theta, x)  # pure states, adjoint gradients
    for scheme in (
        UnitaryLevel(spec, 3),
        UnitaryLevel(spec, 4),
        CircuitLevel(spec, 2),
        CircuitLevel(spec, 1),
    ):
        e, jac = scheme.expval_and_jacobian(theta, x, 1.0)
        np.testing.assert_allclose(e, e_ref, atol=1e-12, rtol=0)
        np.testing.assert_allclose(jac, jac_ref, atol=1e-12, rtol=0)
        np.testing.assert_allclose(scheme.expval(theta, x), e_ref, atol=1e-12, rtol=0)
    e, jac = DataLevel(spec).expval_and_jacobian(theta, x)
    np.testing.assert_allclose(jac, jac_ref, atol=1e-12, rtol=0)


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 5),
    n_layers=st.integers(1, 4),
    entangler=st.sampled_from(ENTANGLERS),
    reupload=st.booleans(),
    split=st.integers(1, 5),
    seed=st.integers(0, 2**31),
)
def test_perfect_pairs_property(n, n_layers, entangler, reupload, split, seed):
    spec = CircuitSpec(n, n_layers, entangler=entangler, reupload=reupload)
    theta, x = random_inputs(spec, 1, 2, np.random.default_rng(seed))
    e_ref = QNNSimulator(spec).expval(theta, x)
    for scheme in (UnitaryLevel(spec, min(split, n_layers)), CircuitLevel(spec, min(split, n))):
        np.testing.assert_allclose(scheme.expval(theta, x), e_ref, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------------------------------------------
# noisy pairs: the dense reference
# ---------------------------------------------------------------------------------------------------------------
CASES = [
    # n, L, entangler, reupload, n_classes, blocks, qubits_per_qpu
    (4, 4, "ring", False, 2, 2, 2),
    (4, 3, "linear", True, 2, 3, 1),
    (4, 3, "all_to_all", False, 3, 2, 3),
    (3, 5, "ring", True, 3, 3, 2),
    (2, 2, "ring", False, 2, 2, 1),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[2]}-n{c[0]}L{c[1]}" for c in CASES])
def test_noisy_pairs_match_dense_reference(case):
    n, n_layers, entangler, reupload, n_classes, blocks, m = case
    rng = np.random.default_rng(n * 100 + n_layers)
    spec = CircuitSpec(n, n_layers, entangler=entangler, reupload=reupload, n_classes=n_classes)
    theta, x = random_inputs(spec, 2, 2, rng)
    kw = {
        "n": n,
        "n_layers": n_layers,
        "entangler": entangler,
        "reupload": reupload,
        "n_classes": n_classes,
    }

    uni = UnitaryLevel(spec, blocks)
    w_u = rng.uniform(0.3, 1.0, (2, *uni.pair_shape))  # a different visibility for every pair
    got = uni.expval(theta, x, w_u)
    want = [
        [ref.unitary_level(theta[k], x[k, b], w_u[k], blocks=blocks, **kw) for b in range(2)]
        for k in range(2)
    ]
    np.testing.assert_allclose(got, want, atol=1e-10, rtol=0)
    assert np.abs(got - QNNSimulator(spec).expval(theta, x)).max() > 1e-3  # the noise is visible

    cir = CircuitLevel(spec, m)
    w_c = rng.uniform(0.3, 1.0, (2, *cir.pair_shape))
    got = cir.expval(theta, x, w_c)
    want = [
        [ref.circuit_level(theta[k], x[k, b], w_c[k], qubits_per_qpu=m, **kw) for b in range(2)]
        for k in range(2)
    ]
    np.testing.assert_allclose(got, want, atol=1e-10, rtol=0)
    assert np.abs(got - QNNSimulator(spec).expval(theta, x)).max() > 1e-3


@pytest.mark.parametrize("scheme_cls", [UnitaryLevel, CircuitLevel])
def test_noisy_gradients_match_reference_finite_differences(scheme_cls):
    """Parameter shift stays exact under the θ-independent pair channels: check against central differences
    of the dense reference (h = 1e-5, truncation ~h² and rounding ~1e-16/h)."""
    rng = np.random.default_rng(7)
    n, n_layers, entangler = 3, 2, "ring"
    spec = CircuitSpec(n, n_layers, entangler=entangler, reupload=True)
    theta, x = random_inputs(spec, 1, 1, rng)
    scheme = scheme_cls(spec, 2)
    w = rng.uniform(0.4, 0.95, (1, *scheme.pair_shape))
    _, jac = scheme.expval_and_jacobian(theta, x, w)
    kw = {"n": n, "n_layers": n_layers, "entangler": entangler, "reupload": True}
    if scheme_cls is UnitaryLevel:
        f = lambda th: ref.unitary_level(th, x[0, 0], w[0], blocks=2, **kw)[0]
    else:
        f = lambda th: ref.circuit_level(th, x[0, 0], w[0], qubits_per_qpu=2, **kw)[0]
    h = 1e-5
    eye = np.eye(spec.n_params)
    fd = np.array([(f(theta[0] + h * e) - f(theta[0] - h * e)) / (2 * h) for e in eye])
    np.testing.assert_allclose(jac[0, 0, 0], fd, atol=1e-8, rtol=0)
    assert np.abs(jac[0, 0, 0]).max() > 0.05


# ---------------------------------------------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------------------------------------------
def test_unitary_level_single_qubit_shrinks_by_product_of_visibilities():
    """n = 1: depolarising commutes with every single-qubit gate, so ⟨Z⟩ = Π_h w_h · ⟨Z⟩_ideal."""
    rng = np.random.default_rng(3)
    spec = CircuitSpec(1, 5)
    theta, x = random_inputs(spec, 3, 4, rng)
    scheme = UnitaryLevel(spec, 5)
    w = rng.uniform(0, 1, (3, 4, 1))
    expect = QNNSimulator(spec).expval(theta, x) * w.prod(axis=(1, 2))[:, None, None]
    np.testing.assert_allclose(scheme.expval(theta, x, w), expect, atol=1e-14)


def test_circuit_level_two_qubit_ring_closed_form():
    """n = 2 ring on two QPUs, L = 1: CNOT(0→1), CNOT(1→0), both remote. Heisenberg picture: Z_0 ← Z_0Z_1 ← Z_1,
    and each remote CNOT's X-on-target error (prob (1−w)/2) flips the sign once, so
    ⟨Z_0⟩ = w_1 w_2 cos(x_1 + θ_{RY,1})."""
    rng = np.random.default_rng(4)
    spec = CircuitSpec(2, 1)
    theta, x = random_inputs(spec, 3, 5, rng)
    scheme = CircuitLevel(spec, 1)
    assert scheme.pair_shape == (1, 2)
    w = rng.uniform(0, 1, (3, 1, 2))
    expect = w.prod(axis=(1, 2))[:, None] * np.cos(x[:, :, 1] + theta[:, None, 2])
    np.testing.assert_allclose(scheme.expval(theta, x, w)[..., 0], expect, atol=1e-14)


def test_scalar_visibility_broadcasts_and_zero_visibility_is_maximal_noise():
    spec = CircuitSpec(3, 2)
    theta, x = random_inputs(spec, 2, 3, np.random.default_rng(5))
    uni = UnitaryLevel(spec, 2)
    np.testing.assert_allclose(
        uni.expval(theta, x, 0.7), uni.expval(theta, x, np.full((2, 1, 3), 0.7)), atol=0
    )
    # a hop through useless pairs (w = 0) leaves I/d, which the second block cannot undo
    np.testing.assert_allclose(uni.expval(theta, x, 0.0), 0.0, atol=1e-14)
