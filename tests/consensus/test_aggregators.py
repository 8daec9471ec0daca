"""Aggregation rules: hand-checked cases where the rules disagree, cross-checks against independent computations,
registry behaviour and the call-time tolerance preconditions."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

from ceas.consensus.aggregators import (
    AGGREGATORS,
    CenteredClipping,
    GeometricMedian,
    Krum,
    Mean,
    MultiKrum,
    TrimmedMean,
    WeightedMean,
    WeightedMedian,
    make_aggregator,
)
from ceas.errors import ConvergenceWarning, UnknownNameError, ValidationError

# Four honest values and one outlier: every rule gives a different answer.
X = np.array([[0.0], [1.0], [2.0], [4.0], [100.0]])


@pytest.mark.parametrize(
    "rule,expected",
    [
        (Mean(), 107 / 5),
        (WeightedMean(), 107 / 5),
        (TrimmedMean(trim=0.2), 7 / 3),  # drops 0 and 100
        (WeightedMedian(), 2.0),
        (Krum(f=1), 1.0),  # scores over n-f-2 = 2 neighbours: 5, 2, 5, 13, 96^2+98^2
        (MultiKrum(f=1, m=3), 1.0),  # {1, 0, 2}
        (MultiKrum(f=1), 7 / 4),  # m = n - f = 4: {1, 0, 2, 4}
        (GeometricMedian(), 2.0),  # in 1-D the geometric median is the median
        (
            CenteredClipping(tau=1.0, iterations=1, reference=np.zeros(1)),
            0.8,
        ),  # clipped steps 0, 1, 1, 1, 1
    ],
)
def test_hand_checked_outlier_case(rule, expected):
    assert rule(X)[0] == pytest.approx(expected, abs=1e-9)


def test_hand_checked_weighted_cases():
    w = np.array([1.0, 1.0, 1.0, 1.0, 6.0])  # the outlier holds 60 % of the weight
    assert WeightedMean()(X, w)[0] == pytest.approx(607 / 10)
    assert WeightedMedian()(X, w)[0] == 100.0
    assert Mean()(X, w)[0] == pytest.approx(107 / 5)  # ignores weights
    # cumulative masses [0, .1], [.1, .3], [.3, .6], [.6, .8], [.8, 1]; keep [.25, .75]
    wt = np.array([0.1, 0.2, 0.3, 0.2, 0.2])
    assert TrimmedMean(trim=0.25)(X, wt)[0] == pytest.approx(
        (0.05 * 1 + 0.3 * 2 + 0.15 * 4) / 0.5, rel=1e-12
    )
    # an exact tie at 1/2 averages the lower and upper weighted medians
    assert WeightedMedian()(np.array([[0.0], [10.0]]), np.array([3.0, 3.0]))[0] == 5.0


def test_weighted_median_minimises_weighted_absolute_deviation():
    """Cross-check: the weighted median minimises sum_k w_k |x_k - m| (attained at a data point)."""
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = rng.integers(1, 12)
        x, w = rng.normal(size=(n, 3)), rng.uniform(0.1, 3, size=n)
        m = WeightedMedian()(x, w)
        for j in range(3):
            col = x[:, j]
            best = min(np.sum(w * np.abs(col - c)) for c in col)
            assert np.sum(w * np.abs(col - m[j])) <= best + 1e-12


def test_weighted_trimmed_mean_equals_classical_trimmed_mean_of_replicated_values():
    """Integer weights = replicated values; trimming t of the N replicas per side is the classical trimmed mean."""
    rng = np.random.default_rng(2)
    for _ in range(100):
        n = rng.integers(1, 9)
        x = rng.normal(size=(n, 2))
        k = rng.integers(1, 5, size=n)
        total = int(k.sum())
        t = int(rng.integers(0, (total - 1) // 2 + 1))
        ours = TrimmedMean(trim=t / total)(x, k.astype(float))
        replicated = np.repeat(x, k, axis=0)
        ref = np.sort(replicated, axis=0)[t : total - t].mean(axis=0)
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


def _krum_reference(x: np.ndarray, f: int) -> np.ndarray:
    """Scores by explicit loops (Blanchard et al., Alg. 1)."""
    n = len(x)
    scores = []
    for i in range(n):
        d = sorted(float(np.sum((x[i] - x[j]) ** 2)) for j in range(n) if j != i)
        scores.append(sum(d[: n - f - 2]))
    return np.array(scores)


def test_krum_and_multi_krum_match_loop_reference():
    rng = np.random.default_rng(3)
    for _ in range(30):
        n = int(rng.integers(5, 15))
        f = int(rng.integers(0, (n - 3) // 2 + 1))
        x = rng.normal(size=(n, 4))
        x[:f] += rng.normal(scale=20, size=(f, 4))  # Byzantine rows far away
        scores = _krum_reference(x, f)
        np.testing.assert_array_equal(Krum(f=f)(x), x[np.argmin(scores)])
        m = int(rng.integers(1, n - f + 1))
        w = rng.uniform(0.5, 2, size=n)
        best = np.argsort(scores, kind="stable")[:m]
        np.testing.assert_allclose(
            MultiKrum(f=f, m=m)(x, w), w[best] @ x[best] / w[best].sum(), rtol=1e-12
        )


def test_geometric_median_matches_numerical_minimiser():
    rng = np.random.default_rng(4)
    for _ in range(10):
        n = int(rng.integers(3, 12))
        x, w = rng.normal(size=(n, 3)), rng.uniform(0.2, 2, size=n)
        z = GeometricMedian(max_iter=2000, tol=1e-13)(x, w)

        def objective(c, x=x, w=w):
            return np.sum(w * np.linalg.norm(x - c, axis=1))

        ref = minimize(
            objective,
            x.mean(axis=0),
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000},
        )
        assert objective(z) <= ref.fun + 1e-9
        np.testing.assert_allclose(z, ref.x, atol=1e-5)


# Issue 10's five-point example: plain Weiszfeld from the coordinate-wise median is still ~1e-7 of the spread away
# after 100 iterations (its last step 1.7e-8 of the spread, above tol = 1e-10), and the rule used to return that
# silently.
FIVE = np.array([[0.5, 2.0], [0.0, 1.5], [-2.5, 1.5], [-1.0, -1.0], [-0.5, 0.5]])


def _plain_weiszfeld(x: np.ndarray, z: np.ndarray, iterations: int) -> np.ndarray:
    """Textbook unweighted Weiszfeld, written independently of ceas (valid while no iterate hits a data point)."""
    for _ in range(iterations):
        inv = 1.0 / np.linalg.norm(x - z, axis=1)
        z = inv @ x / inv.sum()
    return z


def test_geometric_median_converges_on_the_five_point_example_plain_weiszfeld_leaves_short():
    start = np.median(FIVE, axis=0)
    spread = float(np.median(np.linalg.norm(FIVE - start, axis=1)))
    reference = _plain_weiszfeld(
        FIVE, FIVE.mean(axis=0), 5000
    )  # linear rate ~0.85: converged to rounding
    assert (
        np.linalg.norm(_plain_weiszfeld(FIVE, start, 100) - reference) > 1e-8 * spread
    )  # the hard case
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = GeometricMedian()(FIVE)
    result = GeometricMedian().solve(FIVE)
    assert result.converged and result.iterations <= 20
    assert np.linalg.norm(z - reference) <= 1e-10 * spread
    np.testing.assert_array_equal(z, result.point)


def test_geometric_median_says_when_it_stopped_early():
    with pytest.warns(
        ConvergenceWarning,
        match=r"geometric-median: stopped at max_iter = 2 with the last step at .* above tol = 1e-10; the result "
        r"is the last iterate \(raise max_iter\)",
    ):
        z = GeometricMedian(max_iter=2)(FIVE)
    result = GeometricMedian(max_iter=2).solve(FIVE)
    assert not result.converged and result.iterations == 2 and result.step > 1e-10
    np.testing.assert_array_equal(z, result.point)


def test_geometric_median_returns_a_data_point_that_is_the_minimiser_exactly():
    # the pull of the four others on (0, 0) is 0.11 < its own weight 0.3, so (0, 0) is the minimiser (Kuhn); the
    # coordinate-wise start (0, -1) is not, and Weiszfeld would only approach (0, 0)
    x = np.array([[0.0, 0.0], [3.0, -3.0], [-3.0, 3.0], [3.0, -1.0], [-3.0, -1.0]])
    w = np.array([0.3, 0.175, 0.175, 0.175, 0.175])
    d = x[1:] - x[0]
    assert np.linalg.norm((w[1:] / np.linalg.norm(d, axis=1)) @ d) < w[0]
    result = GeometricMedian().solve(x, w)
    assert result.converged and result.iterations == 0
    np.testing.assert_array_equal(result.point, [0.0, 0.0])


def test_geometric_median_meets_the_optimality_condition_within_the_default_budget():
    """Kuhn's condition at the result, on inputs with minimisers near data points, ties and a 1e250 outlier:
    the pull of the points away from z is at most the weight sitting on z (zero gradient off the data)."""
    rng = np.random.default_rng(11)
    worst, iterations = 0.0, []
    for trial in range(300):
        n, d = int(rng.integers(3, 12)), int(rng.integers(1, 5))
        x = rng.normal(size=(n, d))
        if trial % 3 == 0:
            x[0] = x[1:].mean(axis=0) + 1e-3 * rng.normal(size=d)
        if trial % 5 == 0:
            x[:2] = x[2]
        if trial % 7 == 0:
            x[-1] *= 1e250
        w = rng.uniform(0.1, 2.0, size=n)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = GeometricMedian().solve(x, w)
        iterations.append(result.iterations)
        w = w / w.sum()
        diff = x - result.point
        r = np.array(
            [
                np.linalg.norm(row / np.abs(row).max()) * np.abs(row).max() if row.any() else 0.0
                for row in diff
            ]
        )
        away = r > 1e-9
        pull = np.linalg.norm((w[away] / r[away]) @ diff[away])
        worst = max(worst, pull - w[~away].sum())
        assert result.converged
    assert worst <= 1e-9
    assert max(iterations) <= 30


def test_centered_clipping_matches_loop_reference():
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=(7, 3)) * 3, rng.uniform(0.5, 2, size=7)
    v = ref = np.zeros(3)
    for _ in range(4):
        step = np.zeros(3)
        for k in range(7):
            diff = x[k] - v
            step += w[k] / w.sum() * diff * min(1.0, 0.7 / np.linalg.norm(diff))
        v = v + step
    np.testing.assert_allclose(
        CenteredClipping(tau=0.7, iterations=4, reference=ref)(x, w), v, rtol=1e-12
    )


def test_one_byzantine_vector_moves_mean_but_not_robust_rules():
    honest = np.random.default_rng(6).normal(size=(9, 2))
    for big in (1e3, 1e9):
        x = np.vstack([honest, [big, -big]])
        assert abs(Mean()(x)[0]) > big / 20
        for rule in (TrimmedMean(0.2), WeightedMedian(), Krum(f=1), GeometricMedian()):
            assert np.abs(rule(x)).max() < 5, rule


def test_rules_never_mutate_inputs():
    rng = np.random.default_rng(7)
    x, w = rng.normal(size=(9, 3)), rng.uniform(0.5, 2, size=9)
    x0, w0 = x.copy(), w.copy()
    for name in AGGREGATORS:
        make_aggregator(name)(x, w)
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(w, w0)


# -- preconditions and errors ---------------------------------------------------------------------------------------


def test_krum_precondition_names_f_and_n():
    with pytest.raises(ValidationError) as info:
        Krum(f=2)(np.zeros((6, 2)))
    assert (
        str(info.value)
        == "krum tolerates f = 2 Byzantine updates only with n >= 2f + 3 = 7; got n = 6"
    )
    with pytest.raises(
        ValidationError,
        match=r"multi-krum averages m <= n - f = 5 updates \(f = 2, n = 7\); got m = 6",
    ):
        MultiKrum(f=2, m=6)(np.zeros((7, 2)))


def test_krum_f_from_fraction_at_call_time():
    x = np.random.default_rng(8).normal(size=(10, 2))
    assert np.array_equal(Krum(byzantine_fraction=0.2)(x), Krum(f=2)(x))
    assert np.array_equal(Krum(byzantine_fraction=0.3)(x), Krum(f=3)(x))


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: Mean()(np.zeros((0, 3))), "mean: updates must hold at least 1 update, got n = 0"),
        (lambda: Mean()(np.zeros(3)), "mean: updates must be a 2-D array, got shape (3,)"),
        (
            lambda: WeightedMean()(np.zeros((2, 3)), np.array([1.0, -1.0])),
            "weighted-mean: weights must be in [0, inf), got -1",
        ),
        (
            lambda: WeightedMean()(np.zeros((2, 3)), np.zeros(2)),
            "weighted-mean: weights must have a positive sum, got 0",
        ),
        (
            lambda: WeightedMedian()(np.zeros((2, 3)), np.ones(3)),
            "median: weights must have shape (2,) to match updates, got (3,)",
        ),
        (
            lambda: TrimmedMean()(np.array([[0.0, np.nan]])),
            "trimmed-mean: updates must be finite, got non-finite entries at [[0, 1]]",
        ),
        (lambda: TrimmedMean(trim=0.5), "trim must be in [0, 0.5), got 0.5"),
        (lambda: CenteredClipping(tau=0.0), "tau must be in (0, inf), got 0.0"),
        (
            lambda: CenteredClipping(reference=np.zeros(2))(np.zeros((3, 4))),
            "centered-clipping: reference must have shape (4,) to match updates, got (2,)",
        ),
        (lambda: GeometricMedian(max_iter=0), "max_iter must be an integer in [1, inf), got 0"),
    ],
)
def test_errors_name_argument_range_and_value(call, message):
    with pytest.raises(ValidationError) as info:
        call()
    assert str(info.value) == message


def test_registry_suggests_closest_name_and_checks_hyperparameters():
    with pytest.raises(UnknownNameError) as info:
        make_aggregator("trimmed_mean")
    assert str(info.value).startswith(
        "aggregator 'trimmed_mean' is unknown (did you mean 'trimmed-mean'?)"
    )
    with pytest.raises(
        ValidationError,
        match=r"aggregator 'krum' takes hyperparameters \['f', 'byzantine_fraction'\], got \['trim'\]",
    ):
        make_aggregator("krum", trim=0.1)
    assert set(AGGREGATORS) == {
        "mean",
        "weighted-mean",
        "trimmed-mean",
        "median",
        "krum",
        "multi-krum",
        "geometric-median",
        "centered-clipping",
    }
    for name, cls in AGGREGATORS.items():
        assert cls.name == name and cls.__doc__.startswith(":math:`"), (
            name
        )  # docstrings open with the formula


def test_krum_ties_are_broken_by_the_vectors_not_the_order():
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # symmetric: all scores equal
    picks = {tuple(Krum(f=0)(x[list(p)])) for p in itertools.permutations(range(4))}
    assert picks == {(-1.0, 0.0)}
