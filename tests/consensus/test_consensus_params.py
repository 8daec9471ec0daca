"""The [consensus] config section: SPEC defaults, constraints as data (fuzzed from the schema), builders."""

from __future__ import annotations

import annotated_types
import pydantic
import pytest

from ceas.consensus.aggregators import AGGREGATORS, TrimmedMean
from ceas.consensus.checker import check_aggregator
from ceas.consensus.params import (
    ConsensusParams,
    aggregation_from_params,
    aggregator_from_params,
    trust_from_params,
)


def test_spec_defaults():
    p = ConsensusParams()
    assert p.aggregator == "trimmed-mean"  # SPEC §3: CEAS default rule
    assert p.fidelity_weighting is True
    assert all(f.description for f in ConsensusParams.model_fields.values())


def test_every_rule_declares_its_hyperparameters_with_reasons():
    for name in AGGREGATORS.names():
        for field, info in AGGREGATORS.params_model(name).model_fields.items():
            assert info.description, f"{name}.{field} needs a description giving its reason"


def _past_bounds(info) -> list:
    out = []
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Ge):
            out.append(meta.ge - (1 if isinstance(meta.ge, int) else 1e-9))
        elif isinstance(meta, annotated_types.Gt):
            out.append(meta.gt)
        elif isinstance(meta, annotated_types.Le):
            out.append(meta.le + (1 if isinstance(meta.le, int) else 1e-9))
        elif isinstance(meta, annotated_types.Lt):
            out.append(meta.lt)
    return out


CASES = [
    (name, v) for name, info in ConsensusParams.model_fields.items() for v in _past_bounds(info)
]


@pytest.mark.parametrize("name,value", CASES)
def test_every_bound_rejects_the_value_just_past_it(name, value):
    with pytest.raises(pydantic.ValidationError) as info:
        ConsensusParams(**{name: value})
    assert info.value.errors()[0]["loc"] == (name,)


def test_fuzz_covers_every_numeric_field():
    numeric = {n for n, i in ConsensusParams.model_fields.items() if _past_bounds(i)}
    assert {
        "weight_cap",
        "trust_rate",
    } <= numeric
    assert len(CASES) >= 2 * len(numeric) - 2


def test_unknown_option_unknown_key_and_frozen():
    with pytest.raises(
        pydantic.ValidationError,
        match=r"aggregator 'trimmed_mean' is unknown \(did you mean 'trimmed-mean'\?\); allowed: one of",
    ):
        ConsensusParams(aggregator="trimmed_mean")
    with pytest.raises(pydantic.ValidationError, match="extra_forbidden|Extra inputs"):
        ConsensusParams(trim=0.1)
    with pytest.raises(pydantic.ValidationError):
        ConsensusParams().weight_cap = 3.0  # type: ignore[misc]
    with pytest.raises(
        pydantic.ValidationError, match="consensus.aggregator_params.trim: 0.6 is not allowed"
    ):
        ConsensusParams(aggregator_params={"trim": 0.6})
    with pytest.raises(
        pydantic.ValidationError, match="aggregator 'median' takes hyperparameters: none"
    ):
        ConsensusParams(aggregator="median", aggregator_params={"trim": 0.1})


def test_rules_that_need_f_take_the_one_byzantine_fraction():
    """Krum's f follows security.byzantine_fraction (the only Byzantine fraction of a run)."""
    for fraction in (0.1, 0.3):
        rule = aggregator_from_params(ConsensusParams(aggregator="krum"), fraction)
        assert rule.byzantine_fraction == fraction


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_builders_give_working_objects(name):
    p = ConsensusParams(aggregator=name)
    rule = aggregator_from_params(p)
    assert rule.name == name
    check_aggregator(rule)
    wrapped = aggregation_from_params(p)
    assert wrapped.cap_c == p.weight_cap and wrapped.rule == rule


def test_builders_pass_hyperparameters():
    assert aggregator_from_params(ConsensusParams(aggregator_params={"trim": 0.1})) == TrimmedMean(
        trim=0.1
    )
    krum = aggregator_from_params(
        ConsensusParams(aggregator="krum", aggregator_params={"f": 3}), 0.1
    )
    assert krum.f == 3  # set explicitly: the run's Byzantine fraction does not override it
    t = trust_from_params(
        ConsensusParams(trust_rate=0.5, trust_metric="distance", trust_initial=0.3)
    )
    assert (t.rate, t.metric, t.initial) == (0.5, "distance", 0.3)
