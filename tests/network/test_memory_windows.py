"""The closed-form memory windows agree exactly with a plain event-by-event simulation.

Hypothesis generates windows with stored pairs of arbitrary (purified-looking) expiries, arrivals on a coarse time
grid (so expiries and arrivals tie), zero, finite and infinite cutoffs, and capacities from 1 to 6.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from network_memory_reference import reference_resolve

from ceas.errors import UnknownNameError
from ceas.network.memory import (
    EVICTION_POLICIES,
    MemoryWindow,
    get_eviction_policy,
    sample_coherence_s,
)

GRID = 0.125


@st.composite
def windows(draw):
    L = draw(st.integers(1, 3))
    M = draw(st.integers(1, 6))
    occ = np.array(draw(st.lists(st.booleans(), min_size=L * M, max_size=L * M))).reshape(L, M)
    created = -GRID * np.array(draw(st.lists(st.integers(0, 8), min_size=L * M, max_size=L * M)))
    life = GRID * np.array(draw(st.lists(st.integers(1, 30), min_size=L * M, max_size=L * M)))
    forever = np.array(draw(st.lists(st.booleans(), min_size=L * M, max_size=L * M)))
    created = created.reshape(L, M)
    expiry = np.where(
        forever.reshape(L, M) & (life.reshape(L, M) > 3.0), np.inf, created + life.reshape(L, M)
    )
    expiry = np.maximum(expiry, GRID)  # every stored pair is alive at t0 = 0
    pid = np.array(draw(st.permutations(range(L * M)))).reshape(L, M)
    t_end = draw(st.sampled_from([2.5, 4.0 + GRID / 3, 5.0 + GRID]))
    times, expiries = [], []
    for _ in range(L):
        # arrivals on a grid 8x finer than the stored pairs' (ties stay possible), sometimes more than a
        # policy's first look-ahead of 4M + 8 arrivals
        ticks = sorted(draw(st.sets(st.integers(1, int(8 * t_end / GRID)), max_size=60)))
        cutoff = draw(st.sampled_from([0.0, GRID / 8, GRID, 3 * GRID, 0.3, 1.0, np.inf]))
        t = GRID / 8 * np.array(ticks, dtype=float)
        times.append(t)
        expiries.append(t + cutoff)
    counts = [t.size for t in times]
    return MemoryWindow(
        t_end_s=t_end,
        occupied=occ,
        created_s=np.where(occ, created, 0.0),
        expiry_s=expiry,
        pair_id=pid,
        offsets=np.r_[0, np.cumsum(counts)].astype(np.int64),
        time_s=np.concatenate(times),
        arrival_expiry_s=np.concatenate(expiries),
    )


@pytest.mark.parametrize("name", sorted(EVICTION_POLICIES))
@settings(max_examples=300, deadline=None)
@given(window=windows())
def test_policy_matches_event_by_event_reference(name, window):
    out = EVICTION_POLICIES[name].resolve(window)
    ref = reference_resolve(window, name)
    got = (out.start_evicted, out.start_expired, out.arrival_evicted, out.arrival_expired)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)
    # every pair has at most one fate, and at most M survive per link
    assert not (out.start_evicted & out.start_expired).any()
    assert not (out.arrival_evicted & out.arrival_expired).any()
    survivors = (window.occupied & ~out.start_evicted & ~out.start_expired).sum(axis=1)
    link = np.repeat(np.arange(window.occupied.shape[0]), np.diff(window.offsets))
    keep = ~out.arrival_evicted & ~out.arrival_expired
    survivors += np.bincount(link[keep], minlength=window.occupied.shape[0])
    assert np.all(survivors <= window.capacity)


def test_oldest_first_evicts_at_the_mth_later_arrival_where_block_turns_newcomers_away():
    # one link, M = 2, no stored pairs, arrivals every 0.1 s with cutoff 1 s: pair j leaves at arrival j + 2;
    # under block the first two stay and every later newcomer is discarded
    t = np.arange(1, 6) * 0.1
    w = MemoryWindow(
        t_end_s=0.55,
        occupied=np.zeros((1, 2), bool),
        created_s=np.zeros((1, 2)),
        expiry_s=np.zeros((1, 2)),
        pair_id=np.zeros((1, 2), np.int64),
        offsets=np.array([0, 5]),
        time_s=t,
        arrival_expiry_s=t + 1.0,
    )
    out = EVICTION_POLICIES["oldest"].resolve(w)
    assert out.arrival_evicted.tolist() == [True, True, True, False, False]
    assert not out.arrival_expired.any()
    block = EVICTION_POLICIES["block"].resolve(w)
    assert block.arrival_evicted.tolist() == [False, False, True, True, True]


def test_lowest_fidelity_discards_a_newcomer_worse_than_every_stored_pair():
    # two purified pairs that outlive any fresh pair fill M = 2: the fresh pair is the victim at once
    w = MemoryWindow(
        t_end_s=1.0,
        occupied=np.ones((1, 2), bool),
        created_s=np.array([[-0.1, -0.05]]),
        expiry_s=np.array([[5.0, 6.0]]),
        pair_id=np.array([[0, 1]]),
        offsets=np.array([0, 1]),
        time_s=np.array([0.5]),
        arrival_expiry_s=np.array([0.7]),
    )
    low = EVICTION_POLICIES["lowest_fidelity"].resolve(w)
    assert low.arrival_evicted.tolist() == [True] and not low.start_evicted.any()
    old = EVICTION_POLICIES["oldest"].resolve(w)
    assert old.start_evicted.tolist() == [[True, False]] and not old.arrival_evicted.any()


def test_unknown_policy_suggests_the_closest_name():
    with pytest.raises(UnknownNameError, match="did you mean 'oldest'"):
        get_eviction_policy("olderst")


def test_coherence_times_are_log_uniform():
    rng = np.random.default_rng(3)
    t = sample_coherence_s(rng, 200_000, 0.05, 1.0)
    assert t.min() >= 0.05 and t.max() <= 1.0
    u = (np.log(t) - np.log(0.05)) / (np.log(1.0) - np.log(0.05))
    # uniform on [0, 1] in log space: mean 1/2 within 4 sigma (sigma = 1/sqrt(12 n))
    assert abs(u.mean() - 0.5) < 4 / np.sqrt(12 * u.size)
    assert abs(np.median(t) - np.sqrt(0.05)) < 0.01
