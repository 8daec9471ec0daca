"""Closed forms the scheduler values pairs with (SPEC §4)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ceas.scheduling._physics import (
    bbm92_bits,
    binary_entropy,
    cutoff_age,
    fidelity_at_age,
    pairs_for_bits,
    werner_from_fidelity,
)


def test_werner_parameter_of_bell_and_maximally_mixed_states():
    assert werner_from_fidelity(1.0) == pytest.approx(1.0)
    assert werner_from_fidelity(0.25) == pytest.approx(0.0)
    assert werner_from_fidelity(0.95) == pytest.approx(2.8 / 3)


def test_fidelity_decays_to_quarter_with_time_constant():
    # after one coherence time the excess fidelity above 1/4 is e^-1 of the initial one
    assert fidelity_at_age(0.95, 0.3, 0.3) == pytest.approx(0.25 + 0.7 / np.e)
    assert fidelity_at_age(0.95, 0.0, 0.3) == pytest.approx(0.95)
    assert fidelity_at_age(0.95, 1e3, 0.3) == pytest.approx(0.25)


@given(
    f0=st.floats(0.81, 1.0),
    t=st.floats(1e-3, 10.0),
    f_min=st.floats(0.5, 0.8),
)
def test_cutoff_is_where_fidelity_reaches_f_min(f0, t, f_min):
    a = cutoff_age(f0, t, f_min)
    assert fidelity_at_age(f0, a, t) == pytest.approx(f_min, abs=1e-12)


def test_cutoff_zero_when_fresh_pairs_are_already_too_noisy():
    assert cutoff_age(0.7, 1.0, 0.8) == 0.0


def test_binary_entropy_values():
    assert binary_entropy(0.5) == pytest.approx(1.0)
    assert binary_entropy(0.0) == 0.0 and binary_entropy(1.0) == 0.0
    assert binary_entropy(0.11) == pytest.approx(-(0.11 * np.log2(0.11) + 0.89 * np.log2(0.89)))


def test_bbm92_yield_perfect_pair_is_half_a_bit_and_vanishes_at_11_percent_qber():
    assert bbm92_bits(1.0) == pytest.approx(0.5)
    # 1 - 2h(e) = 0 at e = 0.1100279...; F = 1 - 3e/2
    e0 = 0.11002786443835955
    assert bbm92_bits(1 - 1.5 * (e0 - 1e-4)) > 0
    assert bbm92_bits(1 - 1.5 * (e0 + 1e-4)) == 0.0
    # at the cutoff fidelity 0.8 (e = 0.133) no key survives
    assert bbm92_bits(0.8) == 0.0


@given(st.floats(0.25, 1.0), st.floats(0.25, 1.0))
def test_bbm92_yield_is_monotone_in_fidelity(a, b):
    lo, hi = sorted((a, b))
    assert bbm92_bits(lo) <= bbm92_bits(hi) + 1e-15


@pytest.mark.parametrize("fidelity,bits", [(0.95, 128.0), (0.95, 40.0), (0.92, 128.0)])
def test_pairs_for_bits_pays_the_tag_with_the_asked_confidence_under_the_networks_bbm92(
    fidelity, bits
):
    """Checked against the network layer's own BBM92 (sampled bases and errors), not the formula it inverts."""
    from ceas.network.qkd import bbm92
    from ceas.network.werner import werner_bell_vector

    n = int(pairs_for_bits(bits, fidelity, 0.95))
    mean_count = bits / float(bbm92_bits(fidelity))
    assert n > mean_count
    assert int(pairs_for_bits(bits, fidelity, 0.5)) == int(np.ceil(mean_count - 1e-9))
    rng = np.random.default_rng(4)
    bell = np.tile(werner_bell_vector(fidelity), (n, 1))
    paid = [bbm92(bell, rng).secret_bits >= bits for _ in range(600)]
    assert np.mean(paid) >= 0.95
    # the margin is not gross: 10 % fewer pairs already miss more often than 2 %
    bell = np.tile(werner_bell_vector(fidelity), (int(0.9 * n), 1))
    assert np.mean([bbm92(bell, rng).secret_bits >= bits for _ in range(600)]) < 0.98
    # while the mean count alone pays about half the time or less
    bell = np.tile(werner_bell_vector(fidelity), (int(np.ceil(mean_count)), 1))
    assert np.mean([bbm92(bell, rng).secret_bits >= bits for _ in range(600)]) < 0.75


def test_pairs_for_bits_is_zero_without_need_or_without_key():
    out = pairs_for_bits(np.array([0.0, 10.0, 10.0]), np.array([0.95, 0.80, 0.95]), 0.9)
    assert out.tolist()[:2] == [0, 0] and out[2] > 0
