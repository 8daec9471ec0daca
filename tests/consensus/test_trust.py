"""Trust: EMA closed form, agreement metrics, separation of attackers, learned-state discipline, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceas.consensus.aggregators import TrimmedMean
from ceas.consensus.trust import TrustTracker, agreement_scores, evidence_scores
from ceas.errors import ProtocolError, ValidationError


@settings(max_examples=50, deadline=None)
@given(
    rate=st.floats(0.01, 1.0),
    a=st.floats(0.0, 1.0),
    s0=st.floats(0.0, 1.0),
    rounds=st.integers(1, 30),
)
def test_ema_closed_form(rate, a, s0, rounds):
    """Constant agreement a: s_T = a + (s_0 - a)(1 - rate)^T."""
    g = np.array([1.0, 0.0])
    u = np.array([[a, np.sqrt(max(0.0, 1 - a * a))]])  # cosine with g is exactly a
    t = TrustTracker(rate=rate, initial=s0).reset(2)
    for _ in range(rounds):
        t.update([1], u, g)
    assert t.scores_[1] == pytest.approx(a + (s0 - a) * (1 - rate) ** rounds, abs=1e-12)
    assert t.scores_[0] == s0  # non-participants keep their trust


def test_cosine_scores_hand_checked():
    g = np.array([1.0, 0.0])
    u = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0], [-1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(
        agreement_scores(u, g, "cosine"), [1.0, 1 / np.sqrt(2), 0.0, 0.0, 0.0], atol=1e-15
    )


def test_distance_scores_hand_checked():
    g = np.zeros(1)
    u = np.array([[0.0], [1.0], [-2.0], [6.0]])  # distances 0, 1, 2, 6; median 1.5
    np.testing.assert_allclose(
        agreement_scores(u, g, "distance"), [1.0, 1.0, 0.75, 0.25], rtol=1e-15
    )
    # more than half on the aggregate: they agree fully, the rest not at all
    np.testing.assert_array_equal(
        agreement_scores(np.array([[0.0], [0.0], [5.0]]), g, "distance"), [1, 1, 0]
    )


@pytest.mark.parametrize("metric", ["cosine", "distance"])
def test_sign_flippers_lose_trust_and_honest_nodes_keep_it(metric):
    """10 nodes, 2 sign-flip Byzantine (-3x the true gradient), trimmed-mean aggregate: after 20 rounds every honest
    node is trusted above 0.7 and every attacker below 0.15."""
    rng = np.random.default_rng(0)
    t = TrustTracker(rate=0.2, metric=metric).reset(10)
    rule = TrimmedMean(0.3)
    for _ in range(20):
        true = rng.normal(size=8)
        u = true + 0.3 * rng.normal(size=(10, 8))
        u[[3, 7]] = -3.0 * true  # attackers
        t.update(np.arange(10), u, rule(u))
    honest = np.delete(t.scores_, [3, 7])
    assert honest.min() > 0.7 and t.scores_[[3, 7]].max() < 0.15


def test_penalize_counts_as_zero_agreement():
    t = TrustTracker(rate=0.25).reset(3)
    t.penalize([0, 2])
    np.testing.assert_allclose(t.scores_, [0.75, 1.0, 0.75])


def test_learned_state_before_reset_names_the_call_that_comes_first():
    t = TrustTracker()
    with pytest.raises(ProtocolError) as info:
        t.update([0], np.ones((1, 2)), np.ones(2))
    assert str(info.value) == "TrustTracker.update() needs learned state: call reset(n_nodes) first"
    with pytest.raises(ProtocolError, match=r"TrustTracker.snapshot\(\) needs learned state"):
        t.snapshot(0)


def test_bad_arguments():
    t = TrustTracker().reset(4)
    with pytest.raises(ValidationError, match=r"nodes must be distinct, got \[1, 1\]"):
        t.update([1, 1], np.ones((2, 2)), np.ones(2))
    with pytest.raises(ValidationError, match=r"nodes must be ids in \[0, 3\], got \[4\]"):
        t.penalize([4])
    with pytest.raises(ValidationError, match=r"rate must be in \(0, 1\], got 0"):
        TrustTracker(rate=0)
    with pytest.raises(
        ValidationError, match="metric must be one of cosine, distance, evidence, got 'l2'"
    ):
        TrustTracker(metric="l2")


def test_snapshot_is_a_read_only_copy_and_state_round_trips():
    t = TrustTracker(rate=0.3, metric="distance", initial=0.8).reset(5)
    t.update([0, 1, 2], np.array([[1.0, 0], [0, 1.0], [3.0, 3.0]]), np.array([1.0, 0.0]))
    snap = t.snapshot(4)
    assert snap.round == 4 and not snap.scores.flags.writeable
    t.penalize([0])
    assert snap.scores[0] != t.scores_[0]
    clone = TrustTracker.from_state_dict(t.state_dict())
    np.testing.assert_array_equal(clone.scores_, t.scores_)
    assert (clone.rate, clone.metric, clone.initial) == (0.3, "distance", 0.8)


# -- evidence metric (issue 6) -----------------------------------------------------------------------------------


def test_evidence_scores_hand_checked():
    x = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0], [-1.0, 0.0], [3.0, 4.0]])
    z = evidence_scores(x, np.array([5.0, 0.0]))
    # cosines with e1: [1, 1/sqrt2, 0, -1, 0.6]; median 0.6, |dev| = [0.4, 0.107, 0.6, 1.6, 0] -> MAD 0.4
    cos = np.array([1.0, 1 / np.sqrt(2), 0.0, -1.0, 0.6])
    np.testing.assert_allclose(z[:, 0], (cos - 0.6) / (1.4826 * 0.4), rtol=1e-12)
    # norms [2, sqrt2, 3, 1, 5], median 2; |log(n/2)| = [0, 0.347, 0.405, 0.693, 0.916] -> MAD log(1.5)
    np.testing.assert_allclose(z[4, 2], -np.log(2.5) / (1.4826 * np.log(1.5)), rtol=1e-12)
    assert (
        z[4, 2] == pytest.approx(-1.525, abs=1e-3) and z[3, 0] < -2.6
    )  # big one large, flipped one against
    # direction and spread do not see a node's own positive scale; the norm test does
    scaled = z.copy()
    z2 = evidence_scores(x * np.array([[0.4], [1.0], [7.0], [1.0], [0.5]]), np.array([5.0, 0.0]))
    np.testing.assert_allclose(z2[:, :2], scaled[:, :2], rtol=1e-12, atol=1e-12)
    assert not np.allclose(z2[:, 2], z[:, 2])
    # fewer than 3 rows: no majority, no evidence; zero reference: no direction score; zero rows score 0 direction
    assert not evidence_scores(x[:2], np.ones(2)).any()
    assert not evidence_scores(x, np.zeros(2))[:, 0].any()
    assert np.isfinite(evidence_scores(np.vstack([x, np.zeros(2)]), np.ones(2))).all()


def _heterogeneous_run(tracker, rounds=100, seed=0):
    """20 nodes, all taking part each round: honest k sends a_k (mu + 0.3 xi) + a_k 0.5 eps with a_k in [0.4, 1]
    (QPU damping and a payload noise proportional to the node's own scale), node 0 a scaled negative mean
    -10 mu + 10 * 0.5 eps, node 1 a sign flip -mu + 0.5 eps; trimmed-mean aggregate."""
    rng = np.random.default_rng(seed)
    a = np.linspace(0.4, 1.0, 20)
    rule = TrimmedMean(0.3)
    tracker.reset(20)
    for _ in range(rounds):
        mu = 0.1 * (
            np.ones(32) + 0.5 * rng.standard_normal(32)
        )  # slowly drifting honest mean, |mu| ~ 0.6
        x = a[:, None] * (
            mu + 0.3 * rng.standard_normal((20, 32)) + 0.5 * rng.standard_normal((20, 32))
        )
        x[0] = -10 * mu + 5.0 * rng.standard_normal(32)
        x[1] = -mu + 0.5 * rng.standard_normal(32)
        tracker.update(np.arange(20), x, rule(x))
    return tracker.scores_


def _levels(t):
    """Per-test trust factors min(1, Phi(Z)/alpha), shape (N, 3)."""
    from scipy import stats

    z = t.evidence_ / np.sqrt(np.maximum(t.evidence_weight_, 1.0))[:, None]
    return np.minimum(1.0, stats.norm.cdf(z) / t.alpha)


def test_evidence_scale_free_tests_ignore_heterogeneous_scales_and_attackers_are_flagged():
    """Persistent honest scale heterogeneity (a_k in [0.4, 1]) is no evidence on the direction and spread tests;
    the scaled-negative-mean node loses its trust."""
    for seed in range(3):
        t = TrustTracker(rate=0.2, metric="evidence")
        s = _heterogeneous_run(t, seed=seed)
        scale_free = _levels(t)[2:, :2].prod(axis=1)
        assert np.mean(scale_free >= 0.5) >= 0.9, (seed, np.round(scale_free, 2))
        assert s[0] < 0.1, (seed, np.round(s[:2], 3))


@pytest.mark.xfail(
    strict=True,
    reason="open (issue 6): the sign-flip node, -mu under the same noise as the honest nodes, keeps 0.84 trust "
    "after 100 rounds at seed 1 (flagged at seeds 0 and 2)",
)
def test_evidence_trust_flags_sign_flip_under_heterogeneous_scales():
    for seed in range(3):
        s = _heterogeneous_run(TrustTracker(rate=0.2, metric="evidence"), seed=seed)
        assert s[1] < 0.1, (seed, np.round(s[:2], 3))


@pytest.mark.xfail(
    strict=True,
    reason="open (issue 6): the norm test at allowance 0 flags the honest nodes with the largest a_k "
    "(0.83 of them keep trust >= 0.5 at seed 0); an allowance that spares them lets a scheduled Byzantine group "
    "through in the attack matrix (docs/security.md)",
)
def test_evidence_trust_keeps_heterogeneous_honest_nodes():
    for seed in range(3):
        s = _heterogeneous_run(TrustTracker(rate=0.2, metric="evidence"), seed=seed)
        assert np.mean(s[2:] >= 0.5) >= 0.9, (seed, np.round(s, 2))


def test_evidence_trust_flags_a_persistent_deviant_and_keeps_honest_nodes():
    rng = np.random.default_rng(3)
    t = TrustTracker(rate=0.2, metric="evidence", alpha=0.05).reset(10)
    mu = np.full(32, 0.05)  # honest signal far below the noise (sd 0.5), as with quantum payloads
    for _ in range(12):
        x = mu + 0.5 * rng.standard_normal((10, 32))
        x[0] = -10 * mu + 0.5 * rng.standard_normal(32)  # scaled negative mean, same channel noise
        t.update(np.arange(10), x, x[1:].mean(axis=0))
    assert t.scores_[0] < 0.05
    assert np.median(t.scores_[1:]) == 1.0 and t.scores_[1:].min() > 0.2


def test_evidence_clip_allowance_and_idle_forgetting_hand_checked():
    """One node at direction z = -4.7 (clipped to -3), then idle: S fades by lambda per round, W by lambda^2."""
    stats_cdf_m3 = 0.0013498980316301  # Phi(-3)
    x = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [-10.0, 0.0]])
    t = TrustTracker(rate=0.5, metric="evidence", clip=3.0).reset(6)
    t.update([0, 1, 2, 3, 4], x + np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    assert t.evidence_[4, 0] == pytest.approx(-3.0)  # direction z of (-10, 1): -4.7, clipped
    assert t.evidence_weight_.tolist() == [1, 1, 1, 1, 1, 0]
    flagged = t.scores_[4]
    assert flagged <= stats_cdf_m3 / 0.05 + 1e-12
    for k in range(1, 6):  # nodes 0-3 go on, 4 and 5 are idle
        t.update([0, 1, 2, 3], x[:4] + np.array([0.0, 1.0]), np.array([1.0, 0.0]))
        assert t.evidence_weight_[4] == pytest.approx(0.25**k)
        assert t.evidence_[4, 0] == pytest.approx(-3.0 * 0.5**k)
    assert t.scores_[4] == 1.0  # |Z| = 3/32 < 1.645: the evidence has expired
    assert t.scores_[5] == 1.0 and t.evidence_[5].tolist() == [0, 0, 0]
    shifted = TrustTracker(rate=0.5, metric="evidence", allowance=0.5).reset(6)
    shifted.update([0, 1, 2, 3, 4], x + np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    np.testing.assert_allclose(
        shifted.evidence_,
        t.evidence_ * 0
        + np.vstack(
            [
                np.clip(evidence_scores(x + np.array([0.0, 1.0]), np.array([1.0, 0.0])), -3, 3)
                + 0.5,
                np.zeros(3),
            ]
        ),
    )


def test_evidence_penalize_state_roundtrip_and_bounds():
    t = TrustTracker(metric="evidence", initial=1.0, rate=0.5).reset(3)
    assert t.scores_.tolist() == [1.0, 1.0, 1.0]  # no evidence yet: full trust
    t.penalize([1])
    assert t.scores_.tolist() == [1.0, 0.5, 1.0]
    t.update([0, 1, 2], np.array([[1.0, 0.0], [1.0, 0.1], [0.9, 0.0]]), np.array([1.0, 0.0]))
    assert t.acceptance_[1] == 0.75  # an accepted reply moves the rejection factor back towards 1
    clone = TrustTracker.from_state_dict(t.state_dict())
    np.testing.assert_array_equal(clone.scores_, t.scores_)
    np.testing.assert_array_equal(clone.evidence_, t.evidence_)
    np.testing.assert_array_equal(clone.reference_, t.reference_)
    with pytest.raises(ValidationError, match=r"alpha must be in \(0, 0.5\], got 0"):
        TrustTracker(metric="evidence", alpha=0)
    with pytest.raises(ValidationError, match="reference_decay must be < 1, got 1"):
        TrustTracker(metric="evidence", reference_decay=1.0)
    with pytest.raises(ValidationError, match=r"clip must be in \(0, inf\), got 0"):
        TrustTracker(metric="evidence", clip=0)
    old = t.state_dict()
    old["evidence_"] = [
        row[:2] for row in old["evidence_"]
    ]  # a checkpoint from the two-test version
    with pytest.raises(ValidationError, match=r"evidence_ must have shape \(3, 3\)"):
        TrustTracker.from_state_dict(old)
