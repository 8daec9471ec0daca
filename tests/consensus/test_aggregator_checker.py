"""check_aggregator: every registered rule passes; deliberately broken rules fail with the exact diagnostic."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.consensus.aggregators import AGGREGATORS, Mean, make_aggregator, prepare_inputs
from ceas.consensus.checker import AggregatorCheckError, check_aggregator, probe_inputs
from ceas.errors import ValidationError


@pytest.mark.parametrize("name", sorted(AGGREGATORS))
def test_every_registered_rule_passes(name):
    check_aggregator(make_aggregator(name))


class _Broken:
    """Base for the broken rules below: a median that handles empty input correctly."""

    name = "broken"

    def __call__(self, updates, weights=None):
        x = np.asarray(updates)
        if x.shape[0] == 0:
            raise ValidationError("empty")
        return self.reduce(x, weights)


class ReturnsList(_Broken):
    def reduce(self, x, w):
        return list(np.median(x, axis=0))


class WrongShape(_Broken):
    def reduce(self, x, w):
        return np.median(x, axis=0, keepdims=True)


class ReturnsNaN(_Broken):
    def reduce(self, x, w):
        return np.full(x.shape[1], np.nan)


class SortsInPlace(_Broken):
    def reduce(self, x, w):
        x.sort(axis=0)  # mutates the caller's array
        return x[len(x) // 2].copy()


class NormalisesWeightsInPlace(_Broken):
    def reduce(self, x, w):
        if w is None:
            return x.mean(axis=0)
        w /= w.sum()
        return w @ x


class Noisy(_Broken):
    def __init__(self):
        self.rng = np.random.default_rng()

    def reduce(self, x, w):
        return np.median(x, axis=0) + self.rng.normal(size=x.shape[1]) * 1e-3


class Shrinks(_Broken):
    def reduce(self, x, w):
        return 0.9 * np.median(x, axis=0)


class FirstRow(_Broken):
    def reduce(self, x, w):
        return x[0].copy()


class IgnoresNoneWeights(_Broken):
    def reduce(self, x, w):
        w = (
            np.arange(1.0, len(x) + 1) if w is None else w
        )  # None silently means "later rows count more"
        return (w / w.sum()) @ x


class ClipsWeights(_Broken):
    def reduce(self, x, w):
        w = (
            np.ones(len(x)) if w is None else np.minimum(w, 1.0)
        )  # the cap is in absolute units: scale-dependent
        return (w / w.sum()) @ x


class EmptyCrashes:
    name = "empty-crashes"

    def __call__(self, updates, weights=None):
        return np.asarray(updates)[0] * 0 + np.median(updates, axis=0)


class EmptyReturnsZeros:
    name = "empty-zeros"

    def __call__(self, updates, weights=None):
        x = np.asarray(updates)
        return np.zeros(x.shape[1]) if len(x) == 0 else np.median(x, axis=0)


class RaisesOnWeights(_Broken):
    def reduce(self, x, w):
        if w is not None:
            raise KeyError("weights")
        return x.mean(axis=0)


@pytest.mark.parametrize(
    "agg,message",
    [
        (42, "aggregator 'int' is not callable"),
        (
            ReturnsList(),
            "aggregator 'broken' returned list on weighted input; expected a numpy array of shape (4,)",
        ),
        (
            WrongShape(),
            "aggregator 'broken' returned shape (1, 4) on weighted input; expected (4,)",
        ),
        (ReturnsNaN(), "aggregator 'broken' returned non-finite values on weighted input"),
        (RaisesOnWeights(), "aggregator 'broken' raised KeyError on weighted input: 'weights'"),
        (SortsInPlace(), "aggregator 'broken' mutated its updates argument"),
        (NormalisesWeightsInPlace(), "aggregator 'broken' mutated its weights argument"),
        (Noisy(), "aggregator 'broken' returned different results for the same input"),
        (
            Shrinks(),
            "aggregator 'broken' did not return x when all updates equal x (max error {shrink:.3g})",
        ),
        (
            FirstRow(),
            "aggregator 'broken' is not permutation invariant (max change {first_row:.3g})",
        ),
        (
            IgnoresNoneWeights(),
            (
                "aggregator 'broken' gives different results for weights=None and uniform weights "
                "(max difference {ramp:.3g})"
            ),
        ),
        (
            ClipsWeights(),
            "aggregator 'broken' depends on the scale of the weights (max change {clip:.3g})",
        ),
        (
            EmptyCrashes(),
            "aggregator 'empty-crashes' raised IndexError on empty input; expected ceas ValidationError",
        ),
        (
            EmptyReturnsZeros(),
            "aggregator 'empty-zeros' returned a value on empty input; expected ceas ValidationError",
        ),
    ],
)
def test_broken_aggregators_get_the_exact_diagnostic(agg, message):
    # The numbers in the diagnostics, computed here from the probe the checker documents.
    x, w, point, perm = probe_inputs(9, 4, 0)
    ramp = np.arange(1.0, 10.0)
    numbers = {
        "shrink": np.abs(0.1 * point).max(),
        "first_row": np.abs(x[perm[0]] - x[0]).max(),
        "ramp": np.abs(ramp @ x / ramp.sum() - x.mean(axis=0)).max(),
        "clip": np.abs(
            np.minimum(w, 1) @ x / np.minimum(w, 1).sum() - x.mean(axis=0)
        ).max(),  # 7w is all clipped
    }
    with pytest.raises(AggregatorCheckError) as info:
        check_aggregator(agg)
    assert str(info.value) == message.format(**numbers)
    assert all(v > 1e-3 for v in numbers.values())  # each broken rule is far from passing


def test_a_plain_function_rule_passes():
    def trimmed_by_hand(updates, weights=None):
        x, _ = prepare_inputs("by-hand", updates, weights)
        return np.sort(x, axis=0)[1:-1].mean(axis=0) if len(x) > 2 else x.mean(axis=0)

    check_aggregator(trimmed_by_hand)
    check_aggregator(Mean())
