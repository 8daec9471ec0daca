"""What the broker reads off a scheme (slot_link, parameter_owner, shifted_expvals) and the min-cut placement."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ceas.errors import ValidationError
from ceas.partitions import (
    CircuitLevel,
    DataLevel,
    PartitionParams,
    PlacementNoise,
    UnitaryLevel,
    scheme_from_params,
)
from ceas.partitions.placement import (
    contiguous_assignment,
    cut_size,
    min_cut_assignment,
)
from ceas.qnn import CircuitSpec
from ceas.qnn.circuit import ENTANGLERS, Entangler, register_entangler

from . import partition_dense_reference as ref
from .test_partition_schemes import random_inputs

# A pattern for which contiguous blocks of 2 are the worst cut: CNOTs only between qubits q and q + 3 (n = 6).
INTERLEAVED = ((0, 3), (1, 4), (2, 5), (3, 0))


@pytest.fixture
def interleaved_entangler():
    register_entangler(Entangler("test-interleaved", lambda n: INTERLEAVED, "last"))
    yield "test-interleaved"
    ENTANGLERS.pop("test-interleaved", None)


# ---------------------------------------------------------------------------------------------------------------
# slot_link, parameter_owner, shifted_expvals
# ---------------------------------------------------------------------------------------------------------------
def test_slot_link_maps_every_pair_slot_to_its_link():
    spec = CircuitSpec(5, 4)
    uni = UnitaryLevel(spec, 3)
    assert uni.slot_link == (0,) * 5 + (1,) * 5
    assert len(uni.slot_link) == int(np.prod(uni.pair_shape))
    cir = CircuitLevel(spec, 2)  # QPUs {0,1}, {2,3}, {4}; ring remote CNOTs (1,2), (3,4), (4,0)
    assert cir.remote_cnots == ((1, 2), (3, 4), (4, 0))
    assert cir.links == ((0, 1), (0, 2), (1, 2))
    assert cir.slot_link == (0, 2, 1) * 4
    # pairs per link from slot_link agree with pairs_per_link
    counts = np.bincount(cir.slot_link, minlength=len(cir.links))
    assert tuple(counts) == cir.pairs_per_link
    data = DataLevel(spec)
    assert data.slot_link == () and np.array_equal(data.parameter_owner, np.zeros(spec.n_params))


def test_parameter_owner_is_the_qpu_holding_each_parameter():
    spec = CircuitSpec(3, 5)
    uni = UnitaryLevel(spec, 2)  # layers 3 + 2
    owner = uni.parameter_owner
    assert owner.shape == (spec.n_params,) and not owner.flags.writeable
    for block in range(2):
        held = np.zeros(spec.n_params, bool)
        held[uni.block_parameters(block)] = True
        assert np.array_equal(owner == block, held)
    cir = CircuitLevel(spec, 2)
    qubit_of_param = np.broadcast_to(
        np.arange(3)[None, :, None], (5, 3, 2)
    ).ravel()  # θ[l, q, j] -> q
    assert np.array_equal(cir.parameter_owner, np.array(cir.qpu_of_qubit)[qubit_of_param])


@pytest.mark.parametrize(
    "make", [lambda s: UnitaryLevel(s, 2), lambda s: CircuitLevel(s, 2), DataLevel]
)
def test_shifted_expvals_are_the_expectations_at_the_shifted_parameters(make):
    rng = np.random.default_rng(6)
    spec = CircuitSpec(3, 2, n_classes=3)
    scheme = make(spec)
    theta, x = random_inputs(spec, 2, 3, rng)
    w = rng.uniform(0.5, 1.0, (2, *scheme.pair_shape))
    e_all = scheme.shifted_expvals(theta, x, w)
    n_params = spec.n_params
    assert e_all.shape == (2, 2 * n_params + 1, 3, 3)
    for k, p in ((0, 0), (1, 5)):
        shifted = theta.copy()
        shifted[k, p] -= np.pi / 2
        np.testing.assert_allclose(
            e_all[k, 1 + n_params + p], scheme.expval(shifted, x, w)[k], atol=1e-14
        )
    e, jac = scheme.expval_and_jacobian(theta, x, w)
    np.testing.assert_array_equal(e, e_all[:, 0])
    np.testing.assert_array_equal(
        jac, np.moveaxis((e_all[:, 1 : 1 + n_params] - e_all[:, 1 + n_params :]) / 2, 1, 3)
    )


# ---------------------------------------------------------------------------------------------------------------
# min-cut placement
# ---------------------------------------------------------------------------------------------------------------
def _brute_force(n: int, m: int, pairs) -> tuple[int, ...]:
    """The lexicographically smallest assignment of least cut among all k^n labelled ones (capacity m)."""
    k = -(-n // m)
    best = None
    for a in itertools.product(range(k), repeat=n):  # lexicographic order
        if max(np.bincount(a, minlength=k)) > m:
            continue
        cost = cut_size(a, pairs)
        if best is None or cost < best[0]:
            best = (cost, a)
    return best[1]


@pytest.mark.parametrize("seed", range(6))
def test_min_cut_is_the_brute_force_optimum_with_lexicographic_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 8))
    m = int(rng.integers(1, n))
    pairs = [tuple(rng.choice(n, 2, replace=False)) for _ in range(int(rng.integers(2, 10)))]
    assert min_cut_assignment(n, m, pairs) == _brute_force(n, m, pairs)


@pytest.mark.parametrize("entangler", ["ring", "linear"])
@pytest.mark.parametrize("n, m", [(4, 2), (6, 2), (6, 3), (7, 3), (10, 4), (12, 4), (16, 4)])
def test_ring_and_linear_keep_the_contiguous_blocks(entangler, n, m):
    """Contiguous blocks are optimal there (16 qubits: more than 200k assignments, the swap search keeps them)."""
    spec = CircuitSpec(n, 1, entangler=entangler)
    assert min_cut_assignment(n, m, spec.cnot_pairs) == contiguous_assignment(n, m)


def test_min_cut_placement_cuts_fewer_cnots_and_matches_the_dense_reference(interleaved_entangler):
    n, n_layers, m = 6, 2, 2
    spec = CircuitSpec(n, n_layers, entangler=interleaved_entangler)
    contiguous = CircuitLevel(spec, m)
    best = CircuitLevel(spec, m, placement="min-cut")
    assert len(contiguous.remote_cnots) == 4
    assert best.qpu_of_qubit == (0, 1, 2, 0, 1, 2) and best.remote_cnots == ()
    assert best.pairs_per_run == 0 < contiguous.pairs_per_run
    # with m = 3 one of the pairs (1, 4), (2, 5) must be cut: one remote CNOT instead of contiguous's four
    best3 = CircuitLevel(spec, 3, placement="min-cut")
    assert len(CircuitLevel(spec, 3).remote_cnots) == 4
    assert best3.qpu_of_qubit == (0, 0, 1, 0, 1, 1) and best3.remote_cnots == ((1, 4),)
    rng = np.random.default_rng(2)
    theta, x = random_inputs(spec, 1, 1, rng)
    w = rng.uniform(0.4, 1.0, (1, *best3.pair_shape))
    noise = PlacementNoise(rng.uniform(0, 0.2, (1, 2)), rng.uniform(0, 0.1, (1, 2)))
    got = best3.expval(theta, x, w, noise=noise)
    want = [
        ref.circuit_level(
            theta[0], x[0, b], w[0], n=n, n_layers=n_layers, qubits_per_qpu=3, entangler=INTERLEAVED,
            node_p=noise.depolarizing[0], node_r=noise.readout_error[0], placement=best3.qpu_of_qubit,
        )
        for b in range(1)
    ]  # fmt: skip
    np.testing.assert_allclose(got[0], want, atol=1e-10, rtol=0)
    assert np.abs(got - best3.expval(theta, x)).max() > 1e-3
    # node-noise blocks and readout follow the placement
    assert best3.node_blocks[0] == ((0, (0, 1, 3)), (1, (2, 4, 5)))
    assert best3.readout_qpu == (best3.qpu_of_qubit[5],)


def test_placement_in_the_config_section():
    assert PartitionParams().placement == "contiguous"
    spec = CircuitSpec(4, 2)
    scheme = scheme_from_params(PartitionParams(scheme="circuit", placement="min-cut"), spec)
    assert scheme.placement == "min-cut" and scheme.qpu_of_qubit == (0, 0, 1, 1)
    with pytest.raises(Exception, match="placement"):
        PartitionParams(placement="random")
    with pytest.raises(ValidationError, match="placement must be one of contiguous, min-cut"):
        CircuitLevel(spec, 2, placement="best")
    with pytest.raises(ValidationError, match=r"pairs must hold distinct qubits in \[0, 3\]"):
        min_cut_assignment(4, 2, [(0, 4)])
