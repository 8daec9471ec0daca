"""Entanglement verification: Born-rule cross-check, interval coverage, impostor detection, claim capping."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ceas.errors import ValidationError
from ceas.security.verification import (
    IMPOSTOR_ERROR_PROBABILITY,
    cap_claimed_fidelity,
    detection_probability,
    error_probability,
    estimate_fidelity,
    honest_test_errors,
    impostor_pass_probability,
    sample_honest_test,
    sample_impostor_test,
)

PAULI = {
    "X": np.array([[0, 1], [1, 0]], dtype=complex),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "Z": np.array([[1, 0], [0, -1]], dtype=complex),
}
PHI_PLUS = np.array([1, 0, 0, 1], dtype=complex) / np.sqrt(2)


def werner(w: float) -> np.ndarray:
    return w * np.outer(PHI_PLUS, PHI_PLUS.conj()) + (1 - w) * np.eye(4) / 4


def born_error_probability(rho: np.ndarray, basis: str) -> float:
    """P(outcome product differs from |Φ+>'s) from projectors on the two-qubit density matrix."""
    sigma = PAULI[basis]
    sign = np.real(PHI_PLUS.conj() @ np.kron(sigma, sigma) @ PHI_PLUS)  # +1, -1, +1 for X, Y, Z
    vals, vecs = np.linalg.eigh(sigma)
    prob = 0.0
    for va, a in zip(vals, vecs.T):
        for vb, b in zip(vals, vecs.T):
            if np.sign(va * vb) != np.sign(sign):
                proj = np.kron(np.outer(a, a.conj()), np.outer(b, b.conj()))
                prob += np.real(np.trace(proj @ rho))
    return prob


@pytest.mark.parametrize("w", [0.0, 0.3, 0.8, 0.95, 1.0])
@pytest.mark.parametrize("basis", ["X", "Y", "Z"])
def test_error_probability_matches_the_born_rule(w, basis):
    assert error_probability(w) == pytest.approx(
        born_error_probability(werner(w), basis), abs=1e-12
    )
    fidelity = np.real(PHI_PLUS.conj() @ werner(w) @ PHI_PLUS)
    assert error_probability(w) == pytest.approx(
        2 * (1 - fidelity) / 3, abs=1e-12
    )  # the BBM92 QBER


def test_impostor_error_probabilities_match_the_born_rule():
    classical_z = np.diag([0.5, 0, 0, 0.5]).astype(complex)  # (|00><00| + |11><11|)/2
    uncorrelated = np.eye(4, dtype=complex) / 4
    q_classical = np.mean([born_error_probability(classical_z, b) for b in "XYZ"])
    q_guess = np.mean([born_error_probability(uncorrelated, b) for b in "XYZ"])
    assert IMPOSTOR_ERROR_PROBABILITY["classical-z"] == pytest.approx(q_classical, abs=1e-12)
    assert IMPOSTOR_ERROR_PROBABILITY["guess"] == pytest.approx(q_guess, abs=1e-12)


def test_simulated_tests_follow_the_werner_statistics_in_every_basis():
    rng = np.random.default_rng(11)
    w = np.full(400, 0.8)
    rec = sample_honest_test(w, 50, rng)  # 20,000 pairs
    assert rec.bases.shape == rec.node.shape == (400, 50) and rec.k == 50
    wrong = rec.broker * rec.node != np.array([1, -1, 1])[rec.bases]
    for b in range(3):
        mask = rec.bases == b
        n = mask.sum()
        assert abs(n / mask.size - 1 / 3) < 5 * np.sqrt(2 / 9 / mask.size)  # bases uniform
        p = wrong[mask].mean()
        assert abs(p - 0.1) < 5 * np.sqrt(0.1 * 0.9 / n)  # e = (1 - w)/2 = 0.1, 5 sigma
    assert rec.errors.shape == (400,) and rec.errors.sum() == wrong.sum()


def test_clopper_pearson_bounds_match_scipy_binomtest():
    for x, k in [(0, 16), (1, 16), (5, 16), (16, 16), (17, 160), (3, 40)]:
        est = estimate_fidelity(x, k, confidence=0.9)
        ci = stats.binomtest(x, k).proportion_ci(confidence_level=0.9, method="exact")
        assert est.upper == pytest.approx(np.clip(1 - 1.5 * ci.low, 0.25, 1), abs=1e-9)
        assert est.lower == pytest.approx(np.clip(1 - 1.5 * ci.high, 0.25, 1), abs=1e-9)
        assert est.estimate == pytest.approx(max(0.25, 1 - 1.5 * x / k))


@pytest.mark.parametrize("bound", ["clopper-pearson", "hoeffding"])
def test_intervals_cover_the_true_fidelity_and_the_estimate_is_unbiased(bound):
    """4,000 simulated tests of k = 16 pairs at F = 0.85: coverage >= 95 % (3-sigma slack), mean within 4 SE."""
    rng = np.random.default_rng(5)
    fidelity = 0.85
    w = (4 * fidelity - 1) / 3
    rec = sample_honest_test(np.full(4000, w), 16, rng)
    est = estimate_fidelity(rec.errors, 16, confidence=0.95, bound=bound)
    covered = np.mean((est.lower <= fidelity) & (fidelity <= est.upper))
    assert covered >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 4000)
    se = est.estimate.std() / np.sqrt(4000)
    assert abs(est.estimate.mean() - fidelity) < 4 * se


def test_hoeffding_is_wider_than_clopper_pearson_at_small_k():
    cp = estimate_fidelity(np.arange(5), 16)
    hoeff = estimate_fidelity(np.arange(5), 16, bound="hoeffding")
    assert np.all(hoeff.upper - hoeff.lower > cp.upper - cp.lower)


@pytest.mark.parametrize("strategy", ["guess", "classical-z"])
@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_impostor_detection_probability_is_one_minus_one_minus_q_to_the_k(strategy, k):
    """20,000 simulated impostor tests; an error-free test is required to pass; 5-sigma binomial tolerance."""
    trials = 20_000
    rng = np.random.default_rng(100 + k)
    rec = sample_impostor_test((trials,), k, rng, strategy=strategy)
    detected = np.mean(rec.errors > 0)
    q = IMPOSTOR_ERROR_PROBABILITY[strategy]
    expected = detection_probability(k, q)
    assert expected == pytest.approx(1 - (1 - q) ** k)
    assert abs(detected - expected) < 5 * np.sqrt(expected * (1 - expected) / trials)


def test_pass_probability_is_the_binomial_tail():
    assert impostor_pass_probability(16, 0.5) == pytest.approx(2.0**-16)
    k, q, t = 20, 1 / 3, 3
    tail = sum(stats.binom.pmf(i, k, q) for i in range(t + 1))
    assert impostor_pass_probability(k, q, t) == pytest.approx(tail)


def test_a_claim_of_f_1_on_a_link_measured_at_0_85_is_capped():
    """Ten rounds of the default 16 test pairs: 160 pairs, 16 errors -> F̂ = 0.85."""
    est = estimate_fidelity(16, 160)
    assert est.estimate == pytest.approx(0.85)
    capped = cap_claimed_fidelity(1.0, est)
    assert capped == est.upper
    assert 0.85 < capped < 0.92
    visibility = lambda f: (4 * f - 1) / 3
    assert visibility(capped) ** 2 < 0.8 * visibility(1.0) ** 2  # the inflated weight loses > 20 %
    assert cap_claimed_fidelity(0.85, est) == 0.85  # an honest claim passes untouched


def test_claim_capping_statistically_with_default_k():
    """2,000 simulated 10-round histories (160 test pairs) at F = 0.85.

    An F = 1 claim escapes the cap only if all 160 pairs pass (probability 0.9^160 ~ 5e-8); on average its weight
    factor v^2 falls from 1 to about E[v(F_up)^2] ~ 0.78 (measured 0.779).
    """
    rng = np.random.default_rng(8)
    rec = sample_honest_test(np.full((2000, 10), (4 * 0.85 - 1) / 3), 16, rng)
    est = estimate_fidelity(rec.errors.sum(axis=1), 160)
    capped = cap_claimed_fidelity(np.ones(2000), est)
    assert np.all(capped < 1.0)
    weight = ((4 * capped - 1) / 3) ** 2
    assert weight.mean() < 0.8
    honest_ok = np.mean(cap_claimed_fidelity(np.full(2000, 0.85), est) == 0.85)
    assert honest_ok >= 0.975 - 3 * np.sqrt(0.975 * 0.025 / 2000)  # one-sided miss rate <= 2.5 %


def test_bad_inputs_name_the_value():
    with pytest.raises(ValidationError, match=r"werner parameter w must be in \[0, 1\], got 1.3"):
        error_probability(1.3)
    with pytest.raises(ValidationError, match=r"k \(pairs tested\) must be an integer >= 1, got 0"):
        estimate_fidelity(0, 0)
    with pytest.raises(
        ValidationError, match=r"errors must be integers in \[0, k\], got 17 with k=16"
    ):
        estimate_fidelity(17, 16)
    with pytest.raises(ValidationError, match=r"confidence must be in \(0, 1\), got 1.0"):
        estimate_fidelity(1, 16, confidence=1.0)
    with pytest.raises(ValidationError, match="strategy must be one of"):
        sample_impostor_test((3,), 4, np.random.default_rng(0), strategy="clone")


@pytest.mark.parametrize("w, k", [(1.0, 1), (0.9, 5), (0.5, 20), (0.0, 7), (0.97, 64)])
def test_honest_test_errors_equals_the_records_errors_with_the_same_draws(w, k):
    for seed in range(5):
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        assert honest_test_errors(w, k, a) == int(np.sum(sample_honest_test(w, k, b).errors))
        assert a.bit_generator.state == b.bit_generator.state  # the stream goes on identically
