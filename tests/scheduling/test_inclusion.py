"""Inclusion probabilities of participant draws (ceas.scheduling.inclusion), checked against simulated draws."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.errors import ValidationError
from ceas.scheduling.inclusion import plackett_luce_inclusion, uniform_inclusion


def _simulated(score: np.ndarray, m: int, draws: int, seed: int) -> np.ndarray:
    """Gumbel-top-m draws exactly as the ceas policy makes them; frequency of each node, (n,)."""
    rng = np.random.default_rng(seed)
    pos = score > 0
    keys = np.where(pos, np.log(np.where(pos, score, 1.0)), -np.inf) + rng.gumbel(
        size=(draws, score.size)
    )
    top = np.argpartition(-keys, m - 1, axis=1)[:, :m]
    return np.bincount(top.ravel(), minlength=score.size) / draws


@pytest.mark.parametrize("spread", [0.2, 1.5, 4.0])
def test_matches_simulated_gumbel_top_m_draws(spread):
    rng = np.random.default_rng(7)
    score = np.exp(rng.normal(0.0, spread, 40))
    score[:4] = 0.0  # ineligible nodes
    pi = plackett_luce_inclusion(score, 8)
    freq = _simulated(score, 8, 200_000, seed=11)
    se = np.sqrt(np.maximum(freq * (1 - freq), 1e-12) / 200_000)
    assert np.all(pi[:4] == 0.0) and np.all(freq[:4] == 0.0)
    assert np.max(np.abs(pi - freq) / np.maximum(se, 1e-4)) < 4.5


def test_probabilities_sum_to_the_seats():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(2, 60))
        m = int(rng.integers(1, n + 1))
        score = np.exp(rng.normal(0.0, rng.uniform(0, 4), n))
        assert plackett_luce_inclusion(score, m).sum() == pytest.approx(min(m, n), abs=1e-9)


def test_equal_weights_are_a_uniform_draw():
    eligible = np.array([1, 1, 0, 1, 1, 1], bool)
    pi = plackett_luce_inclusion(eligible.astype(float), 2)
    np.testing.assert_allclose(pi, uniform_inclusion(eligible, 2), atol=1e-9)
    np.testing.assert_allclose(pi[eligible], 0.4, atol=1e-9)


def test_a_subset_of_nodes_gets_the_same_values():
    score = np.exp(np.random.default_rng(1).normal(size=25))
    full = plackett_luce_inclusion(score, 5)
    part = plackett_luce_inclusion(score, 5, nodes=[3, 9, 17])
    np.testing.assert_array_equal(part[[3, 9, 17]], full[[3, 9, 17]])
    assert np.isnan(np.delete(part, [3, 9, 17])).all()


def test_edge_cases():
    assert plackett_luce_inclusion(np.array([1.0, 2.0]), 0).tolist() == [0.0, 0.0]
    assert plackett_luce_inclusion(np.array([1.0, 0.0, 5.0]), 2).tolist() == [1.0, 0.0, 1.0]
    assert plackett_luce_inclusion(np.zeros(3), 2).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValidationError, match="score"):
        plackett_luce_inclusion(np.array([np.inf, 1.0, 1.0]), 1)


def test_horvitz_thompson_weights_make_the_seated_mean_unbiased():
    """What consensus.inclusion_weighting relies on: over the policy's draws, sum_{k seated} g_k / (n pi_k) has
    expectation mean(g) however skewed the draw weights are (the plain mean of the seated g does not)."""
    rng = np.random.default_rng(5)
    n, m, draws = 30, 6, 40_000
    score = np.exp(rng.normal(0.0, 1.5, n))
    g = np.log(score) + rng.normal(
        0.0, 0.5, n
    )  # node values correlated with the draw weights (label skew)
    pi = plackett_luce_inclusion(score, m)
    keys = np.log(score) + rng.gumbel(size=(draws, n))
    seated = np.argpartition(-keys, m - 1, axis=1)[:, :m]
    ht = (g[seated] / (n * pi[seated])).sum(axis=1)
    plain = g[seated].mean(axis=1)
    assert abs(ht.mean() - g.mean()) < 4 * ht.std() / np.sqrt(draws)
    assert abs(plain.mean() - g.mean()) > 10 * plain.std() / np.sqrt(
        draws
    )  # the bias the weights remove
