"""The trajectory simulator: exact with perfect pairs and no node noise, unbiased (3σ of the density result) with
both, common random numbers across the shifted circuits, and a 12-qubit register."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.errors import ValidationError
from ceas.partitions import CircuitLevel, PlacementNoise, UnitaryLevel
from ceas.partitions.base import readout_factor, shifted_thetas
from ceas.qnn import CircuitSpec, QNNSimulator

from .test_partition_schemes import random_inputs

ENTANGLERS = ("ring", "linear", "all_to_all")


@pytest.mark.parametrize("entangler", ENTANGLERS)
@pytest.mark.parametrize("n_layers", [1, 2, 4])
def test_perfect_pairs_without_node_noise_are_the_monolithic_circuit(entangler, n_layers):
    rng = np.random.default_rng(3 * n_layers + ENTANGLERS.index(entangler))
    for reupload in (False, True):
        spec = CircuitSpec(5, n_layers, entangler=entangler, reupload=reupload, n_classes=3)
        theta, x = random_inputs(spec, 2, 3, rng)
        sim = QNNSimulator(spec)
        e_ref, jac_ref = sim.expval(theta, x), sim.jacobian(theta, x)
        for scheme in (
            UnitaryLevel(spec, min(2, n_layers), simulator="trajectory", trajectories=3),
            CircuitLevel(spec, 2, simulator="trajectory", trajectories=3),
        ):
            e, jac = scheme.expval_and_jacobian(theta, x, 1.0, rng=np.random.default_rng(0))
            np.testing.assert_allclose(e, e_ref, atol=1e-12, rtol=0)
            np.testing.assert_allclose(jac, jac_ref, atol=1e-12, rtol=0)


def _per_trajectory(scheme, theta, x, w, noise, seed):
    """Per-trajectory values (N, B, T, O) and Jacobians (N, B, T, O, P) at θ, readout error included."""
    sets = shifted_thetas(theta)
    samples = scheme._trajectory_samples(
        sets, x, w, noise.depolarizing, np.random.default_rng(seed)
    )  # (N, 2P+1, B, T, O)
    samples = samples * readout_factor(noise, scheme.readout_qpu)[:, None, None, None, :]
    n_params = theta.shape[1]
    jac = (samples[:, 1 : 1 + n_params] - samples[:, 1 + n_params :]) / 2.0  # (N, P, B, T, O)
    return samples[:, 0], np.moveaxis(jac, 1, -1)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("scheme_name", ["unitary", "circuit"])
def test_trajectory_mean_is_within_three_sigma_of_the_density_result(scheme_name, seed):
    """Pair noise and node noise, values and gradients: |mean − exact| <= 3σ, σ = sample std / √T, for each
    entry whose σ > 0 (entries without variance must agree to 1e-12)."""
    rng = np.random.default_rng(100 + seed)
    spec = CircuitSpec(4, 3, reupload=bool(seed % 2))
    theta, x = random_inputs(spec, 1, 1, rng)
    if scheme_name == "unitary":
        dens, traj = (
            UnitaryLevel(spec, 3, simulator=s, trajectories=4000) for s in ("density", "trajectory")
        )
    else:
        dens, traj = (
            CircuitLevel(spec, 2, simulator=s, trajectories=4000) for s in ("density", "trajectory")
        )
    w = rng.uniform(0.7, 1.0, (1, *dens.pair_shape))
    noise = PlacementNoise(
        rng.uniform(0, 0.1, (1, dens.n_qpus)), rng.uniform(0, 0.05, (1, dens.n_qpus))
    )
    e_exact, j_exact = dens.expval_and_jacobian(theta, x, w, noise=noise)
    e_t, j_t = _per_trajectory(traj, theta, x, w, noise, seed)
    for exact, draws in ((e_exact, e_t), (j_exact, j_t)):
        mean = draws.mean(axis=2)
        sigma = draws.std(axis=2, ddof=1) / np.sqrt(draws.shape[2])
        dev = np.abs(mean - exact)
        assert np.all(dev <= 3 * sigma + 1e-12), (dev / np.maximum(sigma, 1e-300)).max()
        assert np.all(sigma < 0.02)
    # the public path averages the same patterns
    e, jac = traj.expval_and_jacobian(theta, x, w, noise=noise, rng=np.random.default_rng(seed))
    np.testing.assert_allclose(e, e_t.mean(axis=2), atol=1e-14)
    np.testing.assert_allclose(jac, j_t.mean(axis=2), atol=1e-14)


def test_shifted_circuits_share_their_error_patterns():
    """Common random numbers: with one trajectory, every shifted circuit of a sample sees the same Pauli pattern,
    so E(θ) and the Jacobian are those of one fixed Pauli-inserted (unitary) circuit — whose shift-rule gradient is
    exact, i.e. equal to the finite differences of that trajectory's value."""
    rng = np.random.default_rng(4)
    spec = CircuitSpec(3, 2)
    theta, x = random_inputs(spec, 1, 1, rng)
    scheme = CircuitLevel(spec, 1, simulator="trajectory", trajectories=1)
    w = np.full((1, *scheme.pair_shape), 0.3)  # errors in most runs
    noise = PlacementNoise(np.full((1, 3), 0.5))
    _, jac = scheme.expval_and_jacobian(theta, x, w, noise=noise, rng=np.random.default_rng(9))
    h = 1e-6
    fd = []
    for e in np.eye(spec.n_params):
        plus = scheme.expval(theta + h * e, x, w, noise=noise, rng=np.random.default_rng(9))
        minus = scheme.expval(theta - h * e, x, w, noise=noise, rng=np.random.default_rng(9))
        fd.append((plus - minus)[0, 0, 0] / (2 * h))
    np.testing.assert_allclose(jac[0, 0, 0], fd, atol=1e-8)


def test_twelve_qubits_run_with_trajectories_only():
    spec = CircuitSpec(12, 2)
    rng = np.random.default_rng(0)
    theta, x = random_inputs(spec, 1, 2, rng)
    cir = CircuitLevel(spec, 4, trajectories=4)
    uni = UnitaryLevel(spec, 2, trajectories=4)
    assert (cir.simulator, uni.simulator) == ("trajectory", "trajectory")
    e_ref = QNNSimulator(spec).expval(theta, x)
    for scheme in (cir, uni):
        # perfect pairs, no node noise: the monolithic 12-qubit circuit
        np.testing.assert_allclose(scheme.expval(theta, x, rng=rng), e_ref, atol=1e-12, rtol=0)
        noise = PlacementNoise(np.full((1, scheme.n_qpus), 0.02), np.full((1, scheme.n_qpus), 0.01))
        e, jac = scheme.expval_and_jacobian(theta, x, 0.95, noise=noise, rng=rng, shots=128)
        assert e.shape == (1, 2, 1) and jac.shape == (1, 2, 1, spec.n_params)
        assert np.all(np.abs(e) <= 1) and np.all(np.isfinite(jac))
        assert scheme.shifted_expvals(theta, x, 0.95, noise=noise, rng=rng).shape == (1, 97, 2, 1)
        with pytest.raises(
            ValidationError, match="rng must be a numpy.random.Generator: the trajectory"
        ):
            scheme.expval(theta, x)
    with pytest.raises(
        ValidationError, match=r"n_qubits must be in \[1, 10\] .*simulator='density'"
    ):
        CircuitLevel(spec, 4, simulator="density")
    with pytest.raises(ValidationError, match="simulator must be one of auto, density, trajectory"):
        CircuitLevel(CircuitSpec(4, 2), 2, simulator="dense")
    with pytest.raises(
        ValidationError, match=r"trajectories must be an integer in \[1, inf\), got 0"
    ):
        UnitaryLevel(CircuitSpec(4, 2), 2, trajectories=0)
