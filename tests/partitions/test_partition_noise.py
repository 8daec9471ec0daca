"""Node noise inside the split circuits (PlacementNoise): the dense reference, the data-level model, closed forms,
and the contraction factor."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.errors import ValidationError
from ceas.partitions import CircuitLevel, DataLevel, PlacementNoise, UnitaryLevel
from ceas.qnn import CircuitSpec, NodeNoise, QNNSimulator
from ceas.qnn.shots import parameter_shift

from . import partition_dense_reference as ref
from .test_partition_schemes import random_inputs

CASES = [
    # n, L, entangler, reupload, n_classes, blocks, qubits_per_qpu
    (4, 4, "ring", False, 2, 2, 2),
    (4, 3, "linear", True, 2, 3, 1),
    (4, 3, "all_to_all", False, 3, 2, 3),
    (3, 5, "ring", True, 3, 3, 2),
]


def random_noise(n_nodes: int, n_qpus: int, rng: np.random.Generator) -> PlacementNoise:
    return PlacementNoise(
        rng.uniform(0.0, 0.3, (n_nodes, n_qpus)), rng.uniform(0.0, 0.2, (n_nodes, n_qpus))
    )


@pytest.mark.parametrize("case", CASES, ids=[f"{c[2]}-n{c[0]}L{c[1]}" for c in CASES])
def test_node_and_pair_noise_match_dense_reference(case):
    """Random p, r per QPU and a random visibility per pair, against Kraus sums written in the reference."""
    n, n_layers, entangler, reupload, n_classes, blocks, m = case
    rng = np.random.default_rng(10 * n + n_layers)
    spec = CircuitSpec(n, n_layers, entangler=entangler, reupload=reupload, n_classes=n_classes)
    theta, x = random_inputs(spec, 2, 2, rng)
    kw = {"n": n, "n_layers": n_layers, "entangler": entangler, "reupload": reupload}
    kw["n_classes"] = n_classes
    for scheme in (UnitaryLevel(spec, blocks), CircuitLevel(spec, m)):
        w = rng.uniform(0.5, 1.0, (2, *scheme.pair_shape))
        noise = random_noise(2, scheme.n_qpus, rng)
        got = scheme.expval(theta, x, w, noise=noise)
        split = {"blocks": blocks} if scheme.name == "unitary" else {"qubits_per_qpu": m}
        run = ref.unitary_level if scheme.name == "unitary" else ref.circuit_level
        want = [
            [
                run(
                    theta[k], x[k, b], w[k], node_p=noise.depolarizing[k],
                    node_r=noise.readout_error[k], **split, **kw,
                )
                for b in range(2)
            ]
            for k in range(2)
        ]  # fmt: skip
        np.testing.assert_allclose(got, want, atol=1e-10, rtol=0)
        assert np.abs(got - scheme.expval(theta, x, w)).max() > 1e-3  # the node noise is visible


def test_noisy_gradients_are_parameter_shift_of_the_noisy_expectation():
    """shifted_expvals are the expectations at the shifted θ, so the Jacobian is their difference, and it matches
    central finite differences of the dense reference with node noise."""
    rng = np.random.default_rng(8)
    spec = CircuitSpec(3, 2, reupload=True)
    theta, x = random_inputs(spec, 1, 1, rng)
    scheme = CircuitLevel(spec, 2)
    w = rng.uniform(0.5, 0.95, (1, *scheme.pair_shape))
    noise = random_noise(1, 2, rng)
    _, jac = scheme.expval_and_jacobian(theta, x, w, noise=noise)
    kw = {"n": 3, "n_layers": 2, "reupload": True, "qubits_per_qpu": 2}
    f = lambda th: ref.circuit_level(
        th, x[0, 0], w[0], node_p=noise.depolarizing[0], node_r=noise.readout_error[0], **kw
    )[0]
    h = 1e-5
    fd = np.array([(f(theta[0] + h * e) - f(theta[0] - h * e)) / (2 * h) for e in np.eye(12)])
    np.testing.assert_allclose(jac[0, 0, 0], fd, atol=1e-8, rtol=0)


@pytest.mark.parametrize("reupload", [False, True])
def test_one_qpu_is_the_data_level_noisy_model(reupload):
    """K = 1 (one block / all qubits on one QPU) with noise (N, 1) is NodeNoise: ⟨Z⟩·(1−p)^L(1−2r), and DataLevel
    with the same noise is parameter_shift(..., noise=NodeNoise) of the simulator."""
    rng = np.random.default_rng(12 + int(reupload))
    spec = CircuitSpec(4, 3, entangler="linear", reupload=reupload, n_classes=3)
    theta, x = random_inputs(spec, 3, 2, rng)
    noise = random_noise(3, 1, rng)
    node = noise.to_node_noise()
    sim = QNNSimulator(spec)
    e_ref, jac_ref = parameter_shift(sim, theta, x, noise=node)
    np.testing.assert_allclose(
        e_ref, sim.expval(theta, x) * node.contraction(3)[:, None, None], atol=1e-15
    )
    for scheme in (UnitaryLevel(spec, 1), CircuitLevel(spec, 4), DataLevel(spec, simulator=sim)):
        e, jac = scheme.expval_and_jacobian(theta, x, noise=noise)
        np.testing.assert_allclose(e, e_ref, atol=1e-12, rtol=0)
        np.testing.assert_allclose(jac, jac_ref, atol=1e-12, rtol=0)
        np.testing.assert_allclose(scheme.expval(theta, x, noise=noise), e_ref, atol=1e-12, rtol=0)
        np.testing.assert_allclose(
            scheme.contraction(noise),
            np.repeat(node.contraction(3)[:, None], 3, axis=1),
            atol=1e-15,
        )
    # the data level draws its shots as parameter_shift does
    e_s, j_s = DataLevel(spec, simulator=sim).expval_and_jacobian(
        theta, x, shots=64, rng=np.random.default_rng(0), noise=noise
    )
    e_p, j_p = parameter_shift(sim, theta, x, shots=64, rng=np.random.default_rng(0), noise=node)
    np.testing.assert_array_equal(e_s, e_p)
    np.testing.assert_array_equal(j_s, j_p)


def test_unitary_level_closed_form_product_of_block_contractions():
    """Global depolarising commutes with every gate and pair channel: ⟨Z⟩ = Π_k (1−p_k)^{L_k}·(1−2r_{K−1}) times
    the pair-noisy value, for values and gradients, and contraction() is that factor."""
    rng = np.random.default_rng(21)
    spec = CircuitSpec(4, 5, n_classes=3)
    scheme = UnitaryLevel(spec, 3)  # blocks of 2, 2, 1 layers
    theta, x = random_inputs(spec, 2, 3, rng)
    w = rng.uniform(0.6, 1.0, (2, *scheme.pair_shape))
    noise = random_noise(2, 3, rng)
    p, r = noise.depolarizing, noise.readout_error
    factor = (1 - p[:, 0]) ** 2 * (1 - p[:, 1]) ** 2 * (1 - p[:, 2]) * (1 - 2 * r[:, 2])
    e0, j0 = scheme.expval_and_jacobian(theta, x, w)
    e, jac = scheme.expval_and_jacobian(theta, x, w, noise=noise)
    np.testing.assert_allclose(e, e0 * factor[:, None, None], atol=1e-14)
    np.testing.assert_allclose(jac, j0 * factor[:, None, None, None], atol=1e-14)
    np.testing.assert_allclose(
        scheme.contraction(noise), np.repeat(factor[:, None], 3, 1), atol=1e-15
    )


def test_circuit_level_contraction_is_a_first_order_calibration():
    """(1−2r_q)(1−p_q)^L is exact only for the readout error; depolarising on the other QPU reaches the readout
    qubit through the remote CNOTs, so the true shrink is stronger. On this example (4-qubit ring on 2 QPUs, L = 3,
    p = 0.05 and r = 0.02 on both, 64 samples) the factor is 0.823 while the true ratio noisy/clean has median
    0.743; factor × clean is off by 0.042 at most (mean 0.017), against 0.135 (mean 0.056) uncalibrated. At
    p = 0.01: 0.0098 against 0.046 — the calibration error is of first order in p, about a quarter of the
    uncorrected one."""
    rng = np.random.default_rng(5)
    spec = CircuitSpec(4, 3)
    scheme = CircuitLevel(spec, 2)
    theta, x = random_inputs(spec, 1, 64, rng)
    noise = PlacementNoise(np.full((1, 2), 0.05), np.full((1, 2), 0.02))
    clean = scheme.expval(theta, x)
    noisy = scheme.expval(theta, x, noise=noise)
    c = scheme.contraction(noise)
    np.testing.assert_allclose(c, [[0.95**3 * 0.96]], atol=1e-15)
    calibrated_error = np.abs(noisy - c[:, None, :] * clean).max()
    assert 1e-3 < calibrated_error < 0.05
    assert calibrated_error < np.abs(noisy - clean).max()
    # readout error alone is exactly the factor
    only_r = PlacementNoise(np.zeros((1, 2)), np.full((1, 2), 0.1))
    np.testing.assert_allclose(scheme.expval(theta, x, noise=only_r), 0.8 * clean, atol=1e-14)


def test_placement_noise_is_validated():
    spec = CircuitSpec(4, 2)
    scheme = CircuitLevel(spec, 2)
    theta, x = np.zeros((2, spec.n_params)), np.zeros((2, 1, 4))
    with pytest.raises(ValidationError, match=r"depolarizing must be in \[0, 1\], got 1.5"):
        PlacementNoise(np.full((2, 2), 1.5))
    with pytest.raises(ValidationError, match="depolarizing must have 2 dimensions"):
        PlacementNoise(np.zeros(2))
    with pytest.raises(ValidationError, match=r"readout_error must have shape \(2, 2\)"):
        PlacementNoise(np.zeros((2, 2)), np.zeros((2, 1)))
    with pytest.raises(ValidationError, match=r"readout_error must be in \[0, 0.5\]"):
        PlacementNoise(np.zeros((2, 2)), np.full((2, 2), 0.6))
    with pytest.raises(ValidationError, match=r"noise must have shape \(N, K\) = \(2, 2\)"):
        scheme.expval(theta, x, noise=PlacementNoise(np.zeros((2, 3))))
    with pytest.raises(
        ValidationError, match="noise must be a PlacementNoise or None, got NodeNoise"
    ):
        scheme.expval(theta, x, noise=NodeNoise(np.zeros(2)))
    noise = PlacementNoise(np.zeros((2, 1)))
    assert np.array_equal(noise.readout_error, np.zeros((2, 1)))
    assert not noise.depolarizing.flags.writeable
    with pytest.raises(ValidationError, match="only a one-QPU placement is a NodeNoise"):
        PlacementNoise(np.zeros((2, 2))).to_node_noise()
