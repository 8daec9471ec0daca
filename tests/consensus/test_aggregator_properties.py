"""Hypothesis properties of the aggregation rules: permutation invariance, translation equivariance, and bounded
movement of the median, trimmed mean and geometric median under arbitrarily large Byzantine vectors (f < n/2)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ceas.consensus.aggregators import (
    AGGREGATORS,
    CenteredClipping,
    GeometricMedian,
    TrimmedMean,
    WeightedMedian,
)

KRUM_TYPE = {"krum", "multi-krum"}


@st.composite
def updates_and_weights(draw, min_n=1, max_n=12, integer=False):
    n = draw(st.integers(min_n, max_n))
    d = draw(st.integers(1, 4))
    if integer:  # exact arithmetic: distances and sorts are unchanged by integer shifts
        elements = st.integers(-1000, 1000).map(float)
    else:
        elements = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
    x = draw(arrays(np.float64, (n, d), elements=elements))
    w = draw(arrays(np.float64, (n,), elements=st.floats(0.1, 10.0)))
    return x, w


def _min_n(name: str) -> int:
    return 3 if name in KRUM_TYPE else 1  # Krum needs n >= 2f + 3 with f = floor(0.2 n)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(AGGREGATORS)))
def test_permutation_invariance(data, name):
    x, w = data.draw(updates_and_weights(min_n=_min_n(name)))
    perm = data.draw(st.permutations(range(len(x))))
    _assert_permutation_invariant(AGGREGATORS[name](), x, w, list(perm))


def _assert_permutation_invariant(rule, x, w, perm):
    np.testing.assert_allclose(rule(x, w), rule(x[perm], w[perm]), rtol=1e-9, atol=1e-9)


def test_multi_krum_breaks_a_tie_between_equal_vectors_by_weight_not_by_position():
    """Found by Hypothesis in CI: two equal vectors tie for the last Multi-Krum seat but carry different weights, so
    seating the first by position made the weighted mean depend on the order of arrival (1/7 against 1/4)."""
    x = np.array([[0.0], [0.0], [0.0], [1.0], [1.0]])
    w = np.array([2.0, 2.0, 2.0, 1.0, 2.0])
    _assert_permutation_invariant(AGGREGATORS["multi-krum"](), x, w, [0, 1, 2, 4, 3])
    np.testing.assert_allclose(AGGREGATORS["multi-krum"]()(x, w), [0.25])  # the heavier of the tied pair is seated


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    name=st.sampled_from(sorted(AGGREGATORS)),
    shift=arrays(np.float64, (4,), elements=st.integers(-10_000, 10_000).map(float)),
)
def test_translation_equivariance(data, name, shift):
    x, w = data.draw(updates_and_weights(min_n=_min_n(name), integer=True))
    t = shift[: x.shape[1]]
    rule = AGGREGATORS[name]()
    np.testing.assert_allclose(
        rule(x + t, w), rule(x, w) + t, rtol=0, atol=1e-7 * (1 + np.abs(t).max())
    )


@settings(max_examples=40, deadline=None)
@given(data=st.data(), shift=st.floats(-1e3, 1e3))
def test_centered_clipping_with_reference_is_equivariant_when_the_reference_moves_too(data, shift):
    x, w = data.draw(updates_and_weights())
    ref = data.draw(arrays(np.float64, (x.shape[1],), elements=st.floats(-10, 10)))
    rule = CenteredClipping(tau=0.5, iterations=3, reference=ref)
    moved = CenteredClipping(tau=0.5, iterations=3, reference=ref + shift)
    np.testing.assert_allclose(
        moved(x + shift, w), rule(x, w) + shift, rtol=0, atol=1e-9 * (1 + abs(shift))
    )


# -- bounded movement under arbitrarily large Byzantine vectors ------------------------------------------------------

huge = st.floats(-1e12, 1e12, allow_nan=False) | st.sampled_from([-1e15, 1e15, 1e300, -1e300])


@st.composite
def honest_and_byzantine(draw, weighted: bool):
    """Honest rows in [-10, 10]^d and f < n/2 Byzantine rows of any size; weights with Byzantine mass < 1/2."""
    n_h = draw(st.integers(1, 10))
    f = draw(st.integers(0, n_h - 1))
    d = draw(st.integers(1, 3))
    honest = draw(arrays(np.float64, (n_h, d), elements=st.floats(-10, 10)))
    byz = draw(arrays(np.float64, (f, d), elements=huge))
    if weighted:
        wh = draw(arrays(np.float64, (n_h,), elements=st.floats(0.1, 10)))
        wb = draw(arrays(np.float64, (f,), elements=st.floats(0.1, 10)))
        share = draw(st.floats(0.0, 0.49))  # Byzantine weight mass
        wb = wb / wb.sum() * share / (1 - share) * wh.sum() if f else wb
    else:
        wh, wb = np.ones(n_h), np.ones(f)
    x = np.vstack([honest, byz])
    w = np.concatenate([wh, wb])
    perm = draw(st.permutations(range(len(x))))
    return honest, x[list(perm)], w[list(perm)], wb.sum() / w.sum()


def _inside_honest_box(out: np.ndarray, honest: np.ndarray) -> bool:
    return bool(
        np.all(out >= honest.min(axis=0) - 1e-9) and np.all(out <= honest.max(axis=0) + 1e-9)
    )


@settings(max_examples=150, deadline=None)
@given(case=honest_and_byzantine(weighted=True))
def test_weighted_median_stays_in_honest_range(case):
    honest, x, w, alpha = case
    assume(alpha < 0.5 - 1e-6)
    assert _inside_honest_box(WeightedMedian()(x, w), honest)


@settings(max_examples=150, deadline=None)
@given(case=honest_and_byzantine(weighted=True), margin=st.floats(0.0, 0.05))
def test_trimmed_mean_stays_in_honest_range_when_trim_covers_byzantine_mass(case, margin):
    honest, x, w, alpha = case
    trim = min(alpha + margin, 0.4999)
    assume(alpha <= trim)
    assert _inside_honest_box(TrimmedMean(trim=trim)(x, w), honest)


@settings(max_examples=100, deadline=None)
@given(case=honest_and_byzantine(weighted=False))
def test_unweighted_trimmed_mean_with_trim_f_over_n(case):
    """The classical statement: trimming f of n per side (trim = f/n exactly) keeps the honest range."""
    honest, x, _, _ = case
    n, f = len(x), len(x) - len(honest)
    assert _inside_honest_box(TrimmedMean(trim=min(f / n, 0.4999))(x, None), honest)


@settings(max_examples=100, deadline=None)
@given(case=honest_and_byzantine(weighted=True))
def test_geometric_median_within_breakdown_bound(case):
    """For the exact minimiser z: ||z - c|| <= 2(1 - a) r / (1 - 2a), with c the honest centre, r the honest radius
    and a the Byzantine weight mass (< 1/2); derived from F(z) <= F(c) by the triangle inequality."""
    honest, x, w, alpha = case
    assume(alpha < 0.45)
    centre = honest.mean(axis=0)
    r = float(np.linalg.norm(honest - centre, axis=1).max())
    z = GeometricMedian()(x, w)
    bound = 2 * (1 - alpha) * r / (1 - 2 * alpha)
    assert np.linalg.norm(z - centre) <= bound * (1 + 1e-6) + 1e-6
