"""check_attack on deliberately broken attacks: each broken rule gives its exact diagnostic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from ceas.errors import ValidationError
from ceas.security.attacks import StampClaims
from ceas.security.checks import check_attack


@dataclass
class Gradient:
    """A gradient attack whose body is swapped per test."""

    body: object
    name: ClassVar[str] = "broken"
    surface: ClassVar[str] = "gradient"

    def __call__(self, honest, f, rng):
        return self.body(honest, f, rng)


def mutating(honest, f, rng):
    honest[0, 0] += 1.0
    return np.zeros((f, honest.shape[1]))


def global_rng(honest, f, rng):
    return np.random.normal(size=(f, honest.shape[1]))  # ignores the Generator it was given


BROKEN_GRADIENT = [
    (
        lambda h, f, r: [[0.0] * 4] * f,
        "attack 'broken' returned list; expected a numpy array of shape (f, d) = (3, 4)",
    ),
    (
        lambda h, f, r: np.zeros((f - 1, 4)),
        "attack 'broken' returned shape (2, 4); expected (f, d) = (3, 4)",
    ),
    (lambda h, f, r: np.zeros(4), "attack 'broken' returned shape (4,); expected (f, d) = (3, 4)"),
    (
        lambda h, f, r: np.full((f, 4), np.nan),
        "attack 'broken' returned non-finite or non-numeric values",
    ),
    (mutating, "attack 'broken' modified the honest updates it was given"),
    (
        global_rng,
        "attack 'broken' is not reproducible: two calls with equally seeded Generators gave different results",
    ),
    (
        lambda h, f, r: np.zeros((max(f, 1), 4)),
        "attack 'broken' returned (1, 4) for f = 0; expected shape (0, 4) or None",
    ),
]


@dataclass
class StrikeLater:
    """A context-aware gradient attack whose late-round body is swapped per test (honest before round 3)."""

    body: object
    name: ClassVar[str] = "broken"
    surface: ClassVar[str] = "gradient"

    def __call__(self, honest, f, rng, *, context=None):
        if context is not None and context.round < 3:
            return None
        return self.body(honest, f, rng)


BROKEN_LATE = [
    (
        lambda h, f, r: np.zeros((f + 1, 4)),
        "attack 'broken' returned shape (4, 4); expected (f, d) = (3, 4)",
    ),
    (
        lambda h, f, r: np.full((f, 4), np.inf),
        "attack 'broken' returned non-finite or non-numeric values",
    ),
]


@pytest.mark.parametrize(("body", "diagnostic"), BROKEN_LATE)
def test_broken_context_aware_attacks(body, diagnostic):
    with pytest.raises(ValidationError, match="^" + re.escape(diagnostic)):
        check_attack(StrikeLater(body))


def test_a_context_aware_attack_that_breaks_only_when_it_strikes_is_caught():
    """Without context the attack behaves; the checker still calls it at a late round and finds the bad shape."""

    @dataclass
    class LateBreak:
        name: ClassVar[str] = "late"
        surface: ClassVar[str] = "gradient"

        def __call__(self, honest, f, rng, context=None):
            if context is not None and context.round >= 3:
                return np.zeros((f, 5))
            return np.zeros((f, honest.shape[1]))

    with pytest.raises(
        ValidationError,
        match=re.escape(
            "attack 'late' returned shape (3, 5); expected (f, d) = (3, 4) (context round 1000)"
        ),
    ):
        check_attack(LateBreak())


def test_abstaining_and_striking_attacks_pass():
    check_attack(StrikeLater(lambda h, f, r: np.tile(-h.mean(axis=0), (f, 1))))


@pytest.mark.parametrize(("body", "diagnostic"), BROKEN_GRADIENT)
def test_broken_gradient_attacks(body, diagnostic):
    with pytest.raises(ValidationError, match="^" + re.escape(diagnostic) + "$"):
        check_attack(Gradient(body))


def test_missing_name_and_unknown_surface():
    class Nameless:
        surface = "gradient"

    class Elsewhere:
        name = "elsewhere"
        surface = "weights"

    with pytest.raises(
        ValidationError, match=r"^attack Nameless needs a non-empty string 'name', got None$"
    ):
        check_attack(Nameless())
    with pytest.raises(
        ValidationError,
        match=re.escape(
            "attack 'elsewhere' has surface 'weights'; expected one of "
            "['gradient', 'equivocation', 'data', 'stamp', 'message', 'demand', 'agreement', 'state']"
        ),
    ):
        check_attack(Elsewhere())


def test_broken_attacks_on_other_surfaces():
    class BadLabels:
        name, surface = "bad-labels", "data"

        def poison(self, labels, n_classes, rng):
            return labels + 1

    class InPlaceLabels:
        name, surface = "in-place", "data"

        def poison(self, labels, n_classes, rng):
            labels[:] = 0
            return labels

    class OverClaim:
        name, surface = "over-claim", "stamp"

        def claim(self, claims):
            return StampClaims(claims.fidelity * 2, claims.qfi)

    class Chatty:
        name, surface = "chatty", "message"

        def inject(self, view, rng):
            return "hello"

    class Giver:
        name, surface = "giver", "demand"

        def demand(self, requested):
            return -requested

    class Equivocator:
        name, surface = "equivocator", "equivocation"

        def __call__(self, honest, f, n_receivers, rng):
            return np.zeros((f, honest.shape[1]))

    cases = [
        (BadLabels(), "attack 'bad-labels' returned labels outside [0, n_classes) = [0, 3)"),
        (InPlaceLabels(), "attack 'in-place' modified the labels it was given"),
        (OverClaim(), "attack 'over-claim' claimed a fidelity outside [0.25, 1] or a negative QFI"),
        (Chatty(), "attack 'chatty' returned str; expected a list of bytes (wire messages)"),
        (Giver(), "attack 'giver' requested a negative number of pairs"),
        (
            Equivocator(),
            "attack 'equivocator' returned shape (3, 4); expected (n_receivers, f, d) = (3, 3, 4)",
        ),
    ]
    for attack, diagnostic in cases:
        with pytest.raises(ValidationError, match="^" + re.escape(diagnostic) + "$"):
            check_attack(attack)
