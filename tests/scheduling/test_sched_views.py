"""The frozen views and the Decision: shapes, ranges, immutability, equality."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.errors import ValidationError
from ceas.network.werner import bbm92_key_fraction
from ceas.scheduling import Decision, InventoryView, NodeView


def inventory(**over):
    kw = {
        "link_node": [0, 1],
        "f0": [0.95, 0.9],
        "t_coh_s": [0.5, 0.2],
        "cutoff_s": [0.12, 0.05],
        "rate_hz": [300.0, 100.0],
        "slots": [20, 20],
        "key_bits": [10.0, 0.0],
        "pair_id": [5, 7, 9],
        "pair_link": [0, 0, 1],
        "pair_age_s": [0.01, 0.02, 0.03],
        "pair_fidelity": [0.93, 0.92, 0.85],
    }
    kw.update(over)
    return InventoryView(**kw)


def nodes(**over):
    kw = {
        "ready": [True, False],
        "trust": [1.0, 0.5],
        "phi": [10.0, 20.0],
        "phi_visibility": [1.0, 0.9],
        "payload_pairs": [8, 8],
        "verification_pairs": [2, 2],
        "tag_bits": [128.0, 128.0],
    }
    kw.update(over)
    return NodeView(**kw)


def test_defaults_fill_key_yields_and_unbounded_pools():
    inv = inventory()
    np.testing.assert_allclose(inv.pair_key_bits, bbm92_key_fraction([0.93, 0.92, 0.85]))
    np.testing.assert_allclose(inv.fresh_key_bits, bbm92_key_fraction([0.95, 0.9]))
    assert np.isinf(inv.key_capacity_bits).all()
    assert inv.n_links == 2 and inv.n_pairs == 3


def test_views_copy_and_freeze_their_arrays():
    ages = np.array([0.01, 0.02, 0.03])
    inv = inventory(pair_age_s=ages)
    ages[0] = 99.0
    assert inv.pair_age_s[0] == 0.01
    with pytest.raises(ValueError):
        inv.pair_age_s[0] = 1.0
    with pytest.raises(AttributeError):
        inv.f0 = np.ones(2)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"f0": [0.95, 1.3]}, "f0 must be in [0.25, 1], got 1.3 at index 1"),
        ({"pair_link": [0, 0, 2]}, "pair_link must be in [0, 1], got 2 at index 2"),
        ({"pair_id": [5, 5, 9]}, "pair_id must be unique, got 5 more than once"),
        ({"pair_age_s": [0.01, -0.5, 0.0]}, "pair_age_s must be in [0, inf), got -0.5 at index 1"),
        ({"slots": [20]}, "slots must have one entry per link (2), got 1"),
        ({"pair_id": [5.5, 7, 9]}, "pair_id must hold integers, got 5.5"),
    ],
)
def test_inventory_rejects_bad_input_with_one_clear_line(over, message):
    with pytest.raises(ValidationError) as err:
        inventory(**over)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"trust": [1.0, 1.5]}, "trust must be in [0, 1], got 1.5 at index 1"),
        ({"phi_visibility": [0.0, 1.0]}, "phi_visibility must be in (0, 1], got 0.0 at index 0"),
        ({"round": -1}, "round must be >= 0, got -1"),
        ({"pair_tags": [[0, 1]]}, "pair_tags must have shape (N, N) = (2, 2), got (1, 2)"),
        ({"pair_tags": [[0, -1], [-1, 0]]}, "pair_tags must be in [0, inf), got -1 at index 1"),
        ({"seat_tags": -5}, "seat_tags must be >= 0, got -5"),
        ({"min_seats": 0}, "min_seats must be >= 1, got 0"),
    ],
)
def test_nodes_reject_bad_input(over, message):
    with pytest.raises(ValidationError) as err:
        nodes(**over)
    assert str(err.value) == message


def test_decision_equality_and_shape_checks():
    a = Decision(participants=[0], payload=[5], requests=np.zeros((2, 3)), generate=[True, False])
    b = Decision(participants=[0], payload=[5], requests=np.zeros((2, 3)), generate=[True, False])
    c = Decision(participants=[0], payload=[7], requests=np.zeros((2, 3)), generate=[True, False])
    assert a == b and a != c
    assert a.verification.shape == (0,) and a.purify.shape == (0, 2)
    np.testing.assert_array_equal(a.used_pairs(), [5])
    with pytest.raises(ValidationError, match=r"requests must have shape \(L, 3\)"):
        Decision(participants=[], requests=np.zeros((2, 2)), generate=[True, True])
