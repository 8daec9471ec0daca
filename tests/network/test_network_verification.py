"""Verification tests: unbiased fidelity estimates and intervals with at least their stated coverage."""

import math

import numpy as np
import pytest
from scipy import stats

from ceas.errors import UnknownNameError
from ceas.network.verification import clopper_pearson, run_verification
from ceas.network.werner import werner_bell_vector


@pytest.mark.parametrize(("successes", "trials"), [(0, 10), (3, 10), (10, 10), (37, 64), (1, 200)])
def test_clopper_pearson_matches_scipy(successes, trials):
    ci = stats.binomtest(successes, trials).proportion_ci(confidence_level=0.9, method="exact")
    lo, hi = clopper_pearson(successes, trials, 0.9)
    assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)


@pytest.mark.parametrize("method", ["qber", "chsh"])
@pytest.mark.parametrize("fidelity", [0.9, 0.8])
def test_estimate_is_unbiased_and_interval_covers(method, fidelity):
    rng = np.random.default_rng(17)
    reps, k = 1500, 48
    bell = np.tile(werner_bell_vector(fidelity), (k, 1))
    results = [run_verification(bell, rng, method=method, confidence=0.95) for _ in range(reps)]
    covered = np.mean([r.lower <= fidelity <= r.upper for r in results])
    # the raw statistic is unbiased (the fidelity estimate is clipped to [1/4, 1], so test what it is made of):
    # the QBER for "qber", the CHSH value for "chsh"; mean within 3 standard errors
    w = (4 * fidelity - 1) / 3
    raw, truth = (
        (np.array([r.qber for r in results]), (1 - w) / 2)
        if method == "qber"
        else (np.array([r.chsh for r in results]), 2 * math.sqrt(2) * w)
    )
    assert abs(raw.mean() - truth) < 3 * raw.std(ddof=1) / math.sqrt(reps)
    # Clopper-Pearson is exact: coverage >= 95 %, up to 3 sigma of Monte Carlo error
    assert covered >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / reps)
    assert all(0.25 <= r.lower <= r.fidelity <= r.upper <= 1 for r in results)


def test_estimated_statistics_are_consistent():
    r = run_verification(np.tile(werner_bell_vector(0.95), (400, 1)), np.random.default_rng(1))
    assert r.k == 400 and r.method == "qber"
    assert r.fidelity == pytest.approx(1 - 1.5 * r.qber, abs=1e-12)
    assert r.chsh == pytest.approx(2 * math.sqrt(2) * (4 * r.fidelity - 1) / 3, abs=1e-12)
    c = run_verification(
        np.tile(werner_bell_vector(0.95), (4000, 1)), np.random.default_rng(1), method="chsh"
    )
    # S = 2 sqrt2 w = 2.5456 for F = 0.95; estimator variance <= 16/k
    assert abs(c.chsh - 2 * math.sqrt(2) * (4 * 0.95 - 1) / 3) < 3 * 4 / math.sqrt(4000)


def test_an_uncorrelated_state_fails_the_test():
    r = run_verification(np.tile(werner_bell_vector(0.25), (64, 1)), np.random.default_rng(2))
    assert r.upper < 0.78  # no CHSH-violating fidelity is compatible with the data


def test_unknown_method():
    with pytest.raises(UnknownNameError, match="did you mean 'chsh'"):
        run_verification(
            np.tile(werner_bell_vector(0.9), (4, 1)), np.random.default_rng(0), method="chs"
        )
