"""Registry, pair demand, config section, finite shots and argument checks of the partition schemes."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError as PydanticError

from ceas.errors import UnknownNameError, ValidationError
from ceas.partitions import (
    CircuitLevel,
    DataLevel,
    PartitionParams,
    PartitionScheme,
    UnitaryLevel,
    get_scheme,
    make_scheme,
    pair_demand,
    scheme_from_params,
    scheme_names,
)
from ceas.qnn import CircuitSpec

from . import partition_dense_reference as ref


def test_registry_names_and_unknown_name_suggestion():
    assert scheme_names() == ["circuit", "data", "unitary"]
    spec = CircuitSpec(4, 4)
    for name, cls in (("data", DataLevel), ("unitary", UnitaryLevel), ("circuit", CircuitLevel)):
        scheme = make_scheme(name, spec)
        assert type(scheme) is cls and scheme.name == name
        assert isinstance(scheme, PartitionScheme)
    with pytest.raises(UnknownNameError, match=r"did you mean 'unitary'\?") as err:
        get_scheme("unitry")
    assert "allowed: one of circuit, data, unitary" in str(err.value)


@pytest.mark.parametrize("entangler", ["ring", "linear", "all_to_all"])
@pytest.mark.parametrize("m", [1, 2, 3])
def test_circuit_level_pairs_count_the_remote_cnots(entangler, m):
    n, n_layers = 6, 3
    spec = CircuitSpec(n, n_layers, entangler=entangler)
    scheme = CircuitLevel(spec, m)
    remote = [
        (c, t) for c, t in ref.entangler_pairs(entangler, n) if c // m != t // m
    ]  # independent count
    assert scheme.pair_shape == (n_layers, len(remote))
    assert scheme.n_qpus == -(-n // m)
    per_link = {}
    for c, t in remote:
        key = tuple(sorted((c // m, t // m)))
        per_link[key] = per_link.get(key, 0) + n_layers
    assert dict(zip(scheme.links, scheme.pairs_per_link)) == per_link
    demand = pair_demand(scheme, samples=32, shots=512, nodes=3)
    runs = 3 * 32 * (2 * spec.n_params + 1) * 512
    assert demand.runs == runs
    assert demand.pairs_per_run == n_layers * len(remote)
    assert demand.total == n_layers * len(remote) * runs
    assert demand.per_link == {k: v * runs for k, v in per_link.items()}


def test_unitary_and_data_level_pair_demand():
    spec = CircuitSpec(4, 5)
    uni = UnitaryLevel(spec, 3)
    assert uni.block_layers == (2, 2, 1)
    assert [uni.block_parameters(i) for i in range(3)] == [
        slice(0, 16),
        slice(16, 32),
        slice(32, 40),
    ]
    d = pair_demand(uni, samples=10, shots=100, gradient=False)
    assert (d.pairs_per_run, d.runs, d.total) == (8, 1000, 8000)  # n pairs per hop, 2 hops
    assert d.per_link == {(0, 1): 4000, (1, 2): 4000}
    assert pair_demand(DataLevel(spec), samples=10, shots=100).total == 0
    assert pair_demand(UnitaryLevel(spec, 1), samples=10, shots=100).total == 0


def test_params_defaults_bounds_and_builder():
    p = PartitionParams()
    assert (p.scheme, p.blocks, p.qubits_per_qpu) == ("data", 2, 2)
    for name, field in PartitionParams.model_fields.items():
        assert field.description, name
    with pytest.raises(PydanticError, match="scheme"):
        PartitionParams(scheme="unitry")
    with pytest.raises(PydanticError, match="blocks"):
        PartitionParams(blocks=0)
    with pytest.raises(PydanticError, match="qubits_per_qpu"):
        PartitionParams(qubits_per_qpu=25)
    with pytest.raises(PydanticError, match="extra"):
        PartitionParams(n_blocks=2)
    spec = CircuitSpec(4, 3)
    assert scheme_from_params(PartitionParams(scheme="unitary", blocks=3), spec).block_layers == (
        1,
        1,
        1,
    )
    assert scheme_from_params(PartitionParams(scheme="circuit", qubits_per_qpu=1), spec).n_qpus == 4
    with pytest.raises(ValidationError, match=r"blocks must be an integer in \[1, 3\], got 4"):
        scheme_from_params(PartitionParams(scheme="unitary", blocks=4), spec)
    with pytest.raises(
        ValidationError, match=r"qubits_per_qpu must be an integer in \[1, 4\], got 5"
    ):
        scheme_from_params(PartitionParams(scheme="circuit", qubits_per_qpu=5), spec)


def test_bad_arguments_name_the_argument():
    spec = CircuitSpec(3, 2)
    scheme = CircuitLevel(spec, 1)
    theta, x = np.zeros((1, spec.n_params)), np.zeros((1, 2, 3))
    with pytest.raises(ValidationError, match=r"werner must be in \[0, 1\], got 1.5"):
        scheme.expval(theta, x, 1.5)
    with pytest.raises(
        ValidationError, match=r"werner must broadcast to \(N, \*pair_shape\) = \(1, 2, 3\)"
    ):
        scheme.expval(theta, x, np.ones(4))
    with pytest.raises(ValidationError, match=r"theta must have shape \(N, 12\)"):
        scheme.expval(np.zeros((1, 11)), x)
    with pytest.raises(ValidationError, match="rng must be a numpy.random.Generator"):
        scheme.expval_and_jacobian(theta, x, shots=10)
    with pytest.raises(ValidationError, match=r"n_qubits must be in \[1, 10\] .*simulator='density'"):
        UnitaryLevel(CircuitSpec(11, 2), simulator="density")
    with pytest.raises(ValidationError, match=r"n_qubits must be in \[1, 10\] .*simulator='density'"):
        CircuitLevel(CircuitSpec(12, 2), 4, simulator="density")
    with pytest.raises(ValidationError, match=r"samples must be an integer in \[1, inf\), got 0"):
        pair_demand(scheme, samples=0, shots=1)


@pytest.mark.parametrize("cls", [UnitaryLevel, CircuitLevel])
def test_finite_shots_are_unbiased_with_binomial_variance(cls):
    """Ê and the shift-rule Ĵ are unbiased; standardised errors have unit mean square (z-test on 2·10^3 draws,
    tolerance 5 standard errors of the mean of z², whose variance is ≈ 2)."""
    rng = np.random.default_rng(11)
    spec = CircuitSpec(3, 2)
    scheme = cls(spec, 2)
    theta = rng.uniform(0, 2 * np.pi, (1, spec.n_params))
    x = np.broadcast_to(rng.uniform(0, np.pi, (1, 1, 3)), (1, 2000, 3))
    w = 0.8
    e, jac = scheme.expval_and_jacobian(theta, x[:, :1], w)
    shots = 64
    e_hat, j_hat = scheme.expval_and_jacobian(
        theta, x, w, shots=shots, rng=np.random.default_rng(0)
    )
    z = (e_hat - e) / np.sqrt((1 - e**2) / shots)
    assert abs(z.mean()) < 5 / np.sqrt(z.size)
    assert abs((z**2).mean() - 1) < 5 * np.sqrt(2 / z.size)
    # Var Ĵ_p = (1 − E₊²)/(4S) + (1 − E₋²)/(4S)
    shifted = np.concatenate(
        [theta + np.pi / 2 * np.eye(spec.n_params), theta - np.pi / 2 * np.eye(spec.n_params)]
    )
    e_pm = scheme.expval(shifted, np.repeat(x[:, :1], 2 * spec.n_params, axis=0), w)[:, 0, 0]
    var = ((1 - e_pm[: spec.n_params] ** 2) + (1 - e_pm[spec.n_params :] ** 2)) / (4 * shots)
    zj = (j_hat[0, :, 0] - jac[0, 0, 0]) / np.sqrt(var)
    assert abs(zj.mean()) < 5 / np.sqrt(zj.size)
    assert abs((zj**2).mean() - 1) < 5 * np.sqrt(2 / zj.size)


def test_fidelity_study_runs_and_degrades_with_fidelity():
    """The docs' study on a tiny setting: no error with perfect pairs, more ⟨Z⟩ error at lower fidelity."""
    from ceas.partitions.study import fidelity_sweep

    rows = fidelity_sweep((1.0, 0.9, 0.7), n_qubits=3, n_layers=2, steps=3, batch=4)
    assert [(r.scheme, r.fidelity) for r in rows] == [
        (s, f) for s in ("unitary", "circuit") for f in (1.0, 0.9, 0.7)
    ]
    for scheme in ("unitary", "circuit"):
        errs = [r.z_error_mean for r in rows if r.scheme == scheme]
        assert errs[0] < 1e-12 < errs[1] < errs[2]
        assert all(0.0 <= r.accuracy_trained <= 1.0 for r in rows)
