"""Behaviour of the built-in policies on hand-made views, and their speed at N = 1,000 nodes."""

from __future__ import annotations

import dataclasses

import time

import numpy as np
import pytest
from scipy import stats

from ceas.network.werner import cutoff_age, fidelity_at_age
from ceas.scheduling import (
    InventoryView,
    NodeView,
    SchedulingParams,
    make_policy,
    validate_decision,
)
from ceas.scheduling.policies._common import seat

TAU = 1.0


def views(
    ages_per_link,
    *,
    trust=None,
    phi=None,
    key_bits=None,
    t_coh=5.0,
    rate=1.0,
    cap=None,
    ready=None,
    payload=1,
    verification=0,
    tag=0.2,
    f0=0.95,
    rnd=0,
):
    """One link per node; ``ages_per_link[l]`` lists the ages (s) of link l's pairs, oldest first (ids grow)."""
    n = len(ages_per_link)
    link = np.concatenate([np.full(len(a), l) for l, a in enumerate(ages_per_link)]).astype(int)
    age = np.concatenate([np.asarray(a, float) for a in ages_per_link])
    t = np.full(n, t_coh, float)
    f0a = np.full(n, f0)
    inv = InventoryView(
        link_node=np.arange(n),
        f0=f0a,
        t_coh_s=t,
        cutoff_s=cutoff_age(f0a, t, f_min=0.8),
        rate_hz=np.full(n, rate, float),
        slots=np.full(n, 4),
        key_bits=np.full(n, 0.3) if key_bits is None else key_bits,
        key_capacity_bits=np.full(n, 0.3) if cap is None else cap,
        pair_id=np.arange(link.size),
        pair_link=link,
        pair_age_s=age,
        pair_fidelity=fidelity_at_age(f0a[link], age, t[link]),
    )
    nodes = NodeView(
        ready=np.ones(n, bool) if ready is None else ready,
        trust=np.ones(n) if trust is None else trust,
        phi=np.ones(n) if phi is None else phi,
        phi_visibility=np.ones(n),
        payload_pairs=np.full(n, payload),
        verification_pairs=np.full(n, verification),
        tag_bits=np.full(n, tag),
        round=rnd,
    )
    return inv, nodes


P1 = SchedulingParams(participants=1, waste_penalty=0.05, latency_penalty=0.2)
RNG = np.random.default_rng(0)


def test_ceas_converts_a_pair_that_would_expire_instead_of_letting_it_go():
    # T = 5 s: cutoff 1.21 s, so a pair aged 0.5 s is gone by the next decision (F = 0.883: 0.106 key bit)
    inv, nodes = views([[], [0.5]], trust=np.array([1.0, 0.3]), key_bits=np.array([0.3, 0.1]))
    assert inv.pair_key_bits[0] == pytest.approx(0.1058, abs=1e-4)
    d = make_policy("ceas", P1)(inv, nodes, RNG)
    assert d.participants.tolist() == [0]
    assert d.convert.tolist() == [0]
    assert make_policy("random", P1)(inv, nodes, RNG).convert.size == 0
    off = make_policy("ceas", P1.model_copy(update={"convert_near_cutoff": False}))
    assert off(inv, nodes, RNG).convert.size == 0


def test_ceas_measures_only_pairs_that_yield_key_and_fit_the_pool():
    # both of node 1's pairs expire before the next decision; the older (F = 0.812) yields no key
    inv, nodes = views([[], [1.1, 0.5]], trust=np.array([1.0, 0.3]), key_bits=np.array([0.3, 0.1]))
    assert inv.pair_key_bits[0] == 0 and inv.pair_key_bits[1] > 0
    ceas = make_policy("ceas", P1)
    assert ceas(inv, nodes, RNG).convert.tolist() == [1]
    full, nodes = views([[], [1.1, 0.5]], trust=np.array([1.0, 0.3]), key_bits=np.array([0.3, 0.3]))
    assert ceas(full, nodes, RNG).convert.size == 0  # the pool is full: the bits would be lost


def test_ceas_uses_the_pair_about_to_expire_before_a_fresher_one():
    # T = 10 s, cutoff 2.41 s: node 0 holds a pair aged 1.5 s (gone by the next decision) and a fresh one.
    # With fresh pairs slow (0.25 Hz: a 0.8 latency cost each) the old pair is worth using now and the fresh one
    # is kept for the next round.
    inv, nodes = views([[1.5, 0.0], []], trust=np.array([1.0, 0.5]), t_coh=10.0, rate=0.25)
    ceas = make_policy("ceas", P1)
    d = ceas(inv, nodes, RNG)
    assert d.participants.tolist() == [0]
    assert d.payload.tolist() == [0] and d.requests[0, 0] == 0  # the old pair, no fresh request
    # with fresh pairs at hand (rate 1 Hz: cost 0.2) spoiling the payload with an F = 0.85 pair is not worth it
    # (utility loss 1.148 * (0.871 - 0.645) = 0.26 > the pair's waste penalty 0.05): the fresh stored pair serves
    inv, nodes = views([[1.5, 0.0], []], trust=np.array([1.0, 0.5]), t_coh=10.0, rate=1.0)
    assert ceas(inv, nodes, RNG).payload.tolist() == [1]
    fifo = make_policy("random", SchedulingParams(participants=2))(inv, nodes, RNG)
    assert 0 in fifo.payload.tolist()  # FIFO also takes the oldest first


def test_ceas_picks_participants_by_trust_times_phi():
    trust = np.array([0.2, 0.9, 0.5, 0.8, 0.4, 0.95])
    phi = np.array([1.0, 0.5, 1.0, 1.0, 2.0, 0.2])
    inv, nodes = views([[0.0]] * 6, trust=trust, phi=phi, t_coh=10.0)
    d = make_policy(
        "ceas",
        SchedulingParams(participants=3, waste_penalty=0.05, latency_penalty=0.2, selection="top"),
    )(inv, nodes, RNG)
    expected = np.sort(np.argsort(-(trust * phi))[:3])
    np.testing.assert_array_equal(d.participants, expected)


def test_ceas_switches_generation_off_where_pairs_could_only_expire():
    # node 1 can never beat node 0 (fresh pairs come fast): its pairs would only expire, its pool is full
    inv, nodes = views([[0.0], [0.0]], trust=np.array([1.0, 0.5]), rate=5.0, t_coh=10.0)
    d = make_policy("ceas", P1)(inv, nodes, RNG)
    assert d.generate.tolist() == [True, False]
    ablation = make_policy("ceas", P1.model_copy(update={"generation_control": False}))(
        inv, nodes, RNG
    )
    assert ablation.generate.all()


def test_random_is_uniform_over_ready_nodes_and_fifo():
    ready = np.array([1, 1, 0, 1, 1, 1], bool)
    inv, nodes = views([[0.0, 0.5, 1.0]] * 6, ready=ready, t_coh=10.0)
    policy = make_policy("random", SchedulingParams(participants=2))
    rng = np.random.default_rng(1)
    counts = np.zeros(6)
    for _ in range(3000):
        d = policy(inv, nodes, rng)
        counts[d.participants] += 1
        # FIFO: each participant's payload pair is its oldest (ids grow with creation; ages listed oldest-first
        # within a link here are 0, 0.5, 1.0 s, so the oldest is the last id of the link)
        for k in d.participants:
            assert d.payload[np.isin(d.payload, np.flatnonzero(inv.pair_link == k))].tolist() == [
                3 * k + 2
            ]
    assert counts[2] == 0
    _, p_value = stats.chisquare(counts[ready])
    assert p_value > 1e-3


def test_oblivious_is_round_robin():
    inv, _nodes = views([[0.0]] * 6, t_coh=10.0)
    policy = make_policy("oblivious", SchedulingParams(participants=2))
    seen = []
    for t in range(3):
        _, nodes_t = views([[0.0]] * 6, t_coh=10.0, rnd=t)
        seen.append(policy(inv, nodes_t, RNG).participants.tolist())
    assert seen == [[0, 1], [2, 3], [4, 5]]
    _, skip = views([[0.0]] * 6, t_coh=10.0, rnd=1, ready=np.array([1, 1, 0, 1, 1, 1], bool))
    assert policy(inv, skip, RNG).participants.tolist() == [3, 4]


def test_greedy_fidelity_prefers_the_freshest_service():
    inv, nodes = views([[2.0], [0.0], [1.0]], t_coh=10.0, rate=0.0)  # no fresh pairs: stock decides
    d = make_policy("greedy-fidelity", P1)(inv, nodes, RNG)
    assert d.participants.tolist() == [1] and d.payload.tolist() == [1]


def _big_views(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    per = rng.integers(0, 21, n)
    link = np.repeat(np.arange(n), per)
    f0 = rng.uniform(0.9, 0.97, n)
    t = np.exp(rng.uniform(np.log(0.05), np.log(1.0), n))
    cut = cutoff_age(f0, t, f_min=0.8)
    age = rng.uniform(0, 1, link.size) * cut[link]
    inv = InventoryView(
        link_node=np.arange(n),
        f0=f0,
        t_coh_s=t,
        cutoff_s=cut,
        rate_hz=rng.uniform(100, 400, n),
        slots=np.full(n, 20),
        key_bits=rng.uniform(0, 4096, n),
        pair_id=np.arange(link.size),
        pair_link=link,
        pair_age_s=age,
        pair_fidelity=fidelity_at_age(f0[link], age, t[link]),
    )
    nodes = NodeView(
        ready=rng.random(n) < 0.9,
        trust=rng.uniform(0.2, 1, n),
        phi=rng.uniform(10, 100, n),
        phi_visibility=np.ones(n),
        payload_pairs=np.full(n, 128),
        verification_pairs=np.full(n, 16),
        tag_bits=np.full(n, 256.0),
        round=5,
    )
    return inv, nodes


@pytest.mark.parametrize("name", ["ceas", "random", "oblivious", "greedy-fidelity"])
def test_policies_decide_for_1000_nodes_in_milliseconds(name):
    inv, nodes = _big_views(1000)
    params = SchedulingParams(participants=200)
    policy = make_policy(name, params)
    policy(inv, nodes, np.random.default_rng(0))  # warm-up
    t0 = time.perf_counter()
    d = policy(inv, nodes, np.random.default_rng(0))
    elapsed = time.perf_counter() - t0
    validate_decision(d, inv, nodes, max_participants=200)
    assert d.participants.size == 200
    assert elapsed < 0.25, f"{name} took {elapsed:.3f} s for 1,000 nodes and {inv.n_pairs} pairs"


def test_ceas_does_not_pick_a_node_whose_link_cannot_herald_its_payload_within_the_round():
    # node 0 is the better node (trust x phi) but its link heralds ~2 pairs per round against a payload of 20
    inv, nodes = views([[], []], trust=np.array([1.0, 0.6]), payload=20, t_coh=10.0, key_bits=None)
    rate = np.array([2.0, 200.0])
    inv = InventoryView(**{**inv.__dict__, "rate_hz": rate})
    # a small latency price, so waiting for slow pairs alone would not rule node 0 out
    p = SchedulingParams(participants=1, waste_penalty=0.05, latency_penalty=0.01, selection="top")
    d = make_policy("ceas", p)(inv, nodes, RNG)
    assert d.participants.tolist() == [1]
    # without the round deadline (fresh pairs always arrive, only late) trust x phi wins, as in the reduced MDP
    late = make_policy("ceas", p.model_copy(update={"round_deadline": False}))(inv, nodes, RNG)
    assert late.participants.tolist() == [0]


def test_ceas_tops_up_idle_pools_with_key_measured_as_heralded():
    # node 0 takes part; node 1's pool is short of the reserve (2 tags), node 2's is full
    inv, nodes = views(
        [[], [], []],
        trust=np.array([1.0, 0.5, 0.5]),
        key_bits=np.array([1.0, 0.1, 1.0]),
        cap=np.full(3, 1.0),
        t_coh=10.0,
        rate=50.0,
    )
    d = make_policy("ceas", P1)(inv, nodes, RNG)
    assert d.participants.tolist() == [0]
    assert d.requests[1, 2] > 0 and d.requests[2, 2] == 0
    validate_decision(d, inv, nodes, max_participants=1)
    off = make_policy("ceas", P1.model_copy(update={"background_key": False}))(inv, nodes, RNG)
    assert off.requests[1, 2] == 0


def test_ceas_sampling_draws_nodes_in_proportion_to_their_score_and_never_a_worthless_one():
    trust = np.array([1.0, 1.0, 1.0, 1.0, 0.0])  # node 4 has no trust: score 0, never drawn
    phi = np.array([4.0, 2.0, 1.0, 1.0, 9.0])
    inv, nodes = views([[0.0]] * 5, trust=trust, phi=phi, t_coh=10.0, rate=1e6)
    policy = make_policy(
        "ceas", SchedulingParams(participants=1, waste_penalty=0.0, latency_penalty=0.0)
    )
    rng = np.random.default_rng(3)
    picks = np.array([policy(inv, nodes, rng).participants[0] for _ in range(4000)])
    freq = np.bincount(picks, minlength=5) / picks.size
    assert freq[4] == 0.0
    np.testing.assert_allclose(freq[:4], np.array([4, 2, 1, 1]) / 8, atol=0.03)  # 4 sd at n = 4000
    # reproducible: the same generator state gives the same draw
    a = policy(inv, nodes, np.random.default_rng(9)).participants
    b = policy(inv, nodes, np.random.default_rng(9)).participants
    np.testing.assert_array_equal(a, b)


def test_ceas_sampling_skips_flagged_nodes_while_enough_unflagged_ones_remain():
    trust = np.array(
        [1.0, 1.0, 0.6, 0.6]
    )  # nodes 2 and 3 are flagged (trust below 1) but worth more
    phi = np.array([1.0, 1.0, 5.0, 5.0])
    inv, nodes = views([[0.0]] * 4, trust=trust, phi=phi, t_coh=10.0, rate=1e6)
    rng = np.random.default_rng(0)
    two = make_policy(
        "ceas", SchedulingParams(participants=2, waste_penalty=0.0, latency_penalty=0.0)
    )
    assert all(two(inv, nodes, rng).participants.tolist() == [0, 1] for _ in range(200))
    # with three seats the unflagged nodes are too few: every node with a positive score can be drawn
    three = make_policy(
        "ceas", SchedulingParams(participants=3, waste_penalty=0.0, latency_penalty=0.0)
    )
    seen = set()
    for _ in range(200):
        seen.update(three(inv, nodes, rng).participants.tolist())
    assert seen == {0, 1, 2, 3}


def _with_pair_tags(nodes: NodeView, tags, seat_tags: int) -> NodeView:
    return NodeView(**{**nodes.__dict__, "pair_tags": tags, "seat_tags": seat_tags})


@pytest.mark.parametrize("name", ["ceas", "random", "oblivious", "greedy-fidelity"])
def test_key_aware_seating_never_seats_a_pair_that_cannot_pay_an_attempt(name):
    # participants who agree among themselves (no trusted broker): every seated pair's pool must pay 5 tags
    inv, nodes = _big_views(120, seed=3)
    rng = np.random.default_rng(7)
    tags = rng.integers(0, 12, (120, 120))
    tags = np.triu(tags, 1) + np.triu(tags, 1).T
    keyed = _with_pair_tags(nodes, tags, 5)
    policy = make_policy(name, SchedulingParams(participants=10))
    d = policy(inv, keyed, np.random.default_rng(0))
    validate_decision(d, inv, keyed, max_participants=10)
    part = d.participants
    assert part.size >= 2
    assert all(tags[a, b] >= 5 for i, a in enumerate(part) for b in part[i + 1 :])
    # without the pools' constraint the same policy seats a pair that could not pay (so the test can fail)
    free = policy(inv, nodes, np.random.default_rng(0)).participants
    assert any(tags[a, b] < 5 for i, a in enumerate(free) for b in free[i + 1 :])


@pytest.mark.parametrize("name", ["ceas", "oblivious", "greedy-fidelity"])
def test_ample_pair_keys_leave_the_decision_unchanged(name):
    # the constraint only skips: when every pool can pay, the policy decides exactly as with a trusted broker
    inv, nodes = _big_views(80, seed=4)
    policy = make_policy(name, SchedulingParams(participants=10))
    keyed = _with_pair_tags(nodes, np.full((80, 80), 1000), 5)
    # (the draw weights are reported only for a plain draw: key-aware seating may skip nodes)
    trusted = dataclasses.replace(policy(inv, nodes, np.random.default_rng(1)), seat_weights=None)
    assert policy(inv, keyed, np.random.default_rng(1)) == trusted


def test_seat_takes_the_order_and_skips_only_incompatible_nodes():
    _, nodes = views([[], [], [], [], []])
    tags = np.full((5, 5), 9)
    tags[3, 1] = tags[1, 3] = 4  # 3 cannot sit with 1
    keyed = _with_pair_tags(nodes, tags, 5)
    order = np.array([1, 3, 0, 4, 2])
    assert np.flatnonzero(seat(order, 3, keyed)).tolist() == [0, 1, 4]
    assert np.flatnonzero(seat(order, 3, nodes)).tolist() == [0, 1, 3]  # trusted: the first m
    assert seat(order[:0], 3, keyed).sum() == 0
    # a round that cannot seat min_seats nodes together is not held (4: the smallest that tolerates f = 1)
    tags[0, :] = tags[:, 0] = 0
    tags[4, :] = tags[:, 4] = 0
    few = NodeView(**{**keyed.__dict__, "pair_tags": tags, "min_seats": 4})
    assert seat(order, 4, few).sum() == 0
    assert np.flatnonzero(seat(order, 4, NodeView(**{**few.__dict__, "min_seats": 2}))).tolist() == [1, 2]


def test_random_seating_among_unflagged_nodes_is_the_ceas_policys_trust_filter_alone():
    """policy_params.seating = 'unflagged': uniform draws, but only among nodes the trust test has not flagged while
    at least m of them are ready (the ablation of docs/results.md); the default draws among every ready node."""
    trust = np.array([1.0, 1.0, 1.0, 0.6, 0.2, 1.0])  # nodes 3 and 4 are flagged
    inv, nodes = views([[0.0]] * 6, trust=trust, t_coh=10.0, rate=1e6)
    params = SchedulingParams(policy="random", participants=3, policy_params={"seating": "unflagged"})
    filtered, plain = make_policy("random", params), make_policy("random", SchedulingParams(participants=3))
    rng = np.random.default_rng(5)
    seen = np.zeros(6)
    for _ in range(300):
        d = filtered(inv, nodes, rng)
        seen[d.participants] += 1
        assert d.seat_weights.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]  # a uniform draw over the unflagged
    assert seen[[3, 4]].sum() == 0 and (seen[[0, 1, 2, 5]] > 0).all()
    assert any(
        set(plain(inv, nodes, rng).participants) & {3, 4} for _ in range(50)
    )  # without the filter the flagged nodes are drawn
    # fewer than m unflagged nodes ready: the flagged ones fill the seats, as in the ceas policy
    few = views([[0.0]] * 6, trust=np.array([1.0, 0.5, 0.5, 0.5, 0.5, 0.5]), t_coh=10.0, rate=1e6)
    assert len(filtered(*few, rng).participants) == 3
