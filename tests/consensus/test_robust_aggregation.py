"""FidelityWeightedAggregation: accepted/rejected sorting with reasons, capped weights, and "no update"."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ceas.consensus.aggregators import Krum, TrimmedMean, WeightedMean, WeightedMedian
from ceas.consensus.robust import FidelityWeightedAggregation
from ceas.consensus.stamps import cap_weights
from ceas.errors import ValidationError


def test_weights_are_capped_verified_phi_inside_the_rule():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3))
    phi = np.array([10.0, 1.0, 1.0, 2.0, 1.0, 1.0])
    out = FidelityWeightedAggregation(WeightedMean(), cap_c=2.0).aggregate(x, phi)
    w = cap_weights(phi, 2.0)
    assert w[0] == pytest.approx(2 / 6)  # capped at c/|A|
    np.testing.assert_allclose(out.weights, w, rtol=1e-15)
    np.testing.assert_allclose(out.update, w @ x, rtol=1e-12)
    assert out.accepted.all() and not out.no_update and out.reasons == {}


def test_rejected_rows_never_reach_the_rule_and_keep_their_reasons(caplog):
    x = np.array([[1.0, 1.0], [2.0, 2.0], [np.nan, 0.0], [1e9, 1e9], [3.0, 3.0]])
    phi = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    accepted = np.array([True, True, True, False, True])
    agg = FidelityWeightedAggregation(WeightedMedian())
    with caplog.at_level(logging.DEBUG, logger="ceas.consensus.robust"):
        out = agg.aggregate(x, phi, accepted=accepted, reasons={3: "bad tag"})
    assert out.reasons == {
        2: "update has non-finite entries",
        3: "bad tag",
        4: "verified phi is zero",
    }
    np.testing.assert_array_equal(out.accepted, [True, True, False, False, False])
    np.testing.assert_allclose(out.update, [1.5, 1.5])
    np.testing.assert_allclose(out.weights, [0.5, 0.5, 0, 0, 0])
    assert "aggregate: 2 accepted, 3 rejected" in caplog.text
    assert "reply 3 rejected: bad tag" in caplog.text


def test_nothing_accepted_is_no_update_not_a_crash():
    agg = FidelityWeightedAggregation(TrimmedMean())
    out = agg.aggregate(np.ones((3, 2)), np.zeros(3))
    assert out.no_update and out.update is None
    assert out.no_update_reason == "no reply accepted (0 of 3)"
    empty = agg.aggregate(np.zeros((0, 2)))
    assert empty.no_update and empty.no_update_reason == "no reply accepted (0 of 0)"


def test_rule_precondition_failure_is_no_update_with_the_rule_message():
    out = FidelityWeightedAggregation(Krum(f=2)).aggregate(np.zeros((6, 2)), np.ones(6))
    assert out.no_update
    assert (
        out.no_update_reason
        == "krum tolerates f = 2 Byzantine updates only with n >= 2f + 3 = 7; got n = 6"
    )


def test_unweighted_ablation_gives_uniform_weights():
    x = np.arange(8.0).reshape(4, 2)
    out = FidelityWeightedAggregation(WeightedMean(), weighting=False).aggregate(
        x, np.array([9.0, 1, 1, 1])
    )
    np.testing.assert_allclose(out.update, x.mean(axis=0))


def test_inputs_are_not_mutated_and_shapes_checked():
    x, phi = np.ones((3, 2)), np.ones(3)
    x0, phi0 = x.copy(), phi.copy()
    FidelityWeightedAggregation(TrimmedMean()).aggregate(x, phi)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(phi, phi0)
    with pytest.raises(
        ValidationError, match=r"phi must have shape \(3,\) to match updates, got \(2,\)"
    ):
        FidelityWeightedAggregation(TrimmedMean()).aggregate(x, np.ones(2))
    with pytest.raises(ValidationError, match=r"cap_c must be in \[1, inf\), got 0.5"):
        FidelityWeightedAggregation(TrimmedMean(), cap_c=0.5)
