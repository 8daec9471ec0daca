"""Quantum payloads: unbiased and with the analytic 1/v² variance law (issue 5 acceptance: within 10 %)."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.broker.payload import deliver, encode, payload_scale, payload_variance
from ceas.errors import ValidationError


@pytest.mark.parametrize("w", [1.0, 0.8, 0.6, 0.4])
def test_variance_follows_inverse_visibility_squared(w):
    rng = np.random.default_rng(11)
    g = np.array([[0.3, -0.7, 0.0, 0.95]])
    draws, copies, clip = 20_000, 4, 1.0
    vis = np.full((draws, copies, 4), w)
    est = deliver(np.repeat(g, draws, axis=0), vis, np.full(draws, w), clip=clip, rng=rng)
    want = payload_variance(g[0], w, copies, clip)
    got = est.var(axis=0, ddof=1)
    np.testing.assert_allclose(got, want, rtol=0.10)
    # unbiased: mean within 4 standard errors
    se = np.sqrt(want / draws)
    assert np.all(np.abs(est.mean(axis=0) - g[0]) < 4 * se)


def test_variance_ratio_is_one_over_v_squared_at_zero_signal():
    rng = np.random.default_rng(3)
    g = np.zeros((50_000, 1))
    var = {}
    for w in (1.0, 0.5):
        est = deliver(g, np.full((g.shape[0], 8, 1), w), np.full(g.shape[0], w), clip=2.0, rng=rng)
        var[w] = est.var()
    assert var[0.5] / var[1.0] == pytest.approx(4.0, rel=0.05)


def test_clipping_and_bad_shapes():
    rng = np.random.default_rng(0)
    est = deliver(np.array([[5.0]]), np.ones((1, 1000, 1)), np.ones(1), clip=1.0, rng=rng)
    assert est[0, 0] == pytest.approx(1.0)  # clipped to G, perfect pairs -> exactly G
    with pytest.raises(ValidationError, match="shape"):
        deliver(np.zeros((2, 3)), np.ones((2, 1, 4)), np.ones(2), clip=1.0, rng=rng)
    with pytest.raises(ValidationError, match="> 0"):
        deliver(np.zeros((1, 1)), np.ones((1, 1, 1)), np.zeros(1), clip=1.0, rng=rng)


@pytest.mark.parametrize("w", [1.0, 0.6])
def test_node_scale_keeps_the_estimate_unbiased_and_cuts_the_variance_by_g_over_s_squared(w):
    rng = np.random.default_rng(5)
    g = np.array([[0.12, -0.25, 0.0, 0.05]])  # a typical honest gradient: s = 0.25, G = 1
    draws, copies, clip = 20_000, 4, 1.0
    vis = np.full((draws, copies, 4), w)
    est = deliver(
        np.repeat(g, draws, axis=0), vis, np.full(draws, w), clip=clip, rng=rng, scale="node"
    )
    want = payload_variance(g[0], w, copies, clip, scale="node")
    np.testing.assert_allclose(est.var(axis=0, ddof=1), want, rtol=0.10)
    # (the component at s with w = 1 is sent exactly: zero variance, zero error)
    assert np.all(np.abs(est.mean(axis=0) - g[0]) <= 4 * np.sqrt(want / draws) + 1e-12)
    fixed = payload_variance(g[0], w, copies, clip, scale="fixed")
    # at zero signal the ratio is exactly (G/s)^2 = 16
    assert fixed[2] / want[2] == pytest.approx(16.0)
    assert np.all(want < fixed)


def test_node_scale_never_lets_a_sender_exceed_the_clip():
    s = payload_scale(np.array([[50.0, -3.0], [0.2, -0.1], [0.0, 0.0]]), 1.0, "node")
    np.testing.assert_allclose(s, [1.0, 0.2, 1e-9])
    rng = np.random.default_rng(0)
    est = deliver(
        np.array([[50.0, -0.5]]), np.ones((1, 2000, 2)), np.ones(1), clip=1.0, rng=rng, scale="node"
    )
    assert est[0, 0] == pytest.approx(1.0)  # clipped to G = 1, sent at scale 1
    assert est[0, 1] == pytest.approx(-0.5, abs=0.05)
    with pytest.raises(ValidationError, match="one of"):
        payload_scale(np.zeros((1, 2)), 1.0, "adaptive")
    with pytest.raises(ValidationError, match=r"\(0, G"):
        encode(np.zeros(2), 1.0, 2.0)
