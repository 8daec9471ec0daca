"""The binned MDP (Definition 3): conservation, cutoffs, transition law, key accounting, reward, views."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ceas.network.werner import fidelity_at_age, werner_from_fidelity
from ceas.scheduling import FiniteMDP, MDPAction, MDPSpec, MDPState, SchedulingMDP, SchedulingParams
from ceas.scheduling.mdp import example_spec

PARAMS = SchedulingParams(participants=2, waste_penalty=0.05, latency_penalty=0.2)


def small_spec(**over):
    kw = {
        "f0": [0.95, 0.95, 0.92],
        "t_coh_s": [10.0, 5.0, 20.0],
        "slots": [2, 3, 2],
        "arrivals": [0.8, 1.5, 0.4],
        "trust": [1.0, 0.8, 0.6],
        "phi": [1.0, 0.9, 1.0],
        "ready_prob": [1.0, 0.8, 0.9],
        "tag_steps": 2,
        "key_step_bits": 0.1,
        "key_levels": 3,
        "key_init": 3,
        "params": PARAMS,
    }
    kw.update(over)
    return MDPSpec(**kw)


def random_action(mdp: SchedulingMDP, rng: np.random.Generator) -> MDPAction:
    s = mdp.spec
    shape = (s.n_links, s.width + 1)
    return MDPAction(
        participate=rng.random(s.n_links) < 0.6,
        payload=rng.integers(0, 3, shape),
        verification=rng.integers(0, 2, shape),
        key=rng.integers(0, 3, shape),
        generate=rng.random(s.n_links) < 0.8,
    )


def test_derived_bins_follow_the_cutoff():
    s = small_spec()
    # a_cut = T ln(0.7/0.55): 2.41 s, 1.21 s, 3.71 s (F0 = 0.92: ln(0.67/0.55) * 20 = 3.95 s)
    np.testing.assert_array_equal(s.bins, [3, 2, 4])
    np.testing.assert_allclose(s.bin_fidelity[0, :3], fidelity_at_age(0.95, [0.0, 1.0, 2.0], 10.0))
    assert s.bin_steps[0].tolist() == [2, 1, 0, 0]  # 0.289, 0.106, 0.0 bits in steps of 0.1
    assert s.fresh_steps.tolist() == [2, 2, 1]


def test_conservation_and_cutoff_over_a_long_random_run():
    """generated = consumed + expired + evicted + held, per link, and no pair is ever held past its cutoff."""
    mdp = SchedulingMDP(small_spec())
    rng = np.random.default_rng(1)
    state = mdp.initial_state(rng)
    gen = cons = exp_ = evi = 0
    idle = mdp.empty_action()
    for t in range(400):
        # idle stretches let pairs age through every bin, including each link's last one
        action = idle if (t // 20) % 2 else mdp.clip(state, random_action(mdp, rng))
        state, out = mdp.step(state, action, rng)
        gen = gen + out.generated
        cons = cons + out.consumed.sum(axis=1)
        exp_ = exp_ + out.expired
        evi = evi + out.evicted
        assert not state.counts[~mdp.spec.bin_valid].any()
        assert (state.counts.sum(axis=1) <= mdp.spec.slots).all()
        assert ((state.key >= 0) & (state.key <= mdp.spec.key_levels)).all()
    np.testing.assert_array_equal(gen, cons + exp_ + evi + state.counts.sum(axis=1))
    assert exp_.sum() > 0 and evi.sum() > 0 and cons.sum() > 0


def test_clip_makes_actions_feasible():
    mdp = SchedulingMDP(small_spec())
    rng = np.random.default_rng(2)
    for _ in range(200):
        state = MDPState(
            counts=np.where(mdp.spec.bin_valid, rng.integers(0, 2, (3, 4)), 0),
            key=rng.integers(0, 4, 3),
            ready=rng.random(3) < 0.7,
        )
        a = mdp.clip(state, random_action(mdp, rng))
        used = a.payload[:, :4] + a.verification[:, :4] + a.key[:, :4]
        assert (used <= state.counts).all()
        assert a.participate.sum() <= mdp.spec.m and not (a.participate & ~state.ready).any()
        assert (a.payload.sum(axis=1) <= np.where(a.participate, 1, 0)).all()


def test_transition_law_matches_enumeration():
    """Frequencies of simulated next states agree with the enumerated P(s'|y) (chi-square, fixed seed)."""
    spec = small_spec(ready_prob=[1.0, 1.0, 1.0])
    model = FiniteMDP(spec)
    mdp = model.mdp
    t = model.tables[1]  # M = 3, 2 bins, 1.5 arrivals per round
    conf = int(np.flatnonzero((t.configs[:, :2] == [1, 1]).all(axis=1))[0])
    y = (conf * (spec.key_levels + 1) + 2) * 2 + 1  # remaining (1 young, 1 old), key 2, generating
    probs = t.P[y]
    rng = np.random.default_rng(3)
    n = 20000
    remaining = np.repeat(t.configs[conf][None, :], n, axis=0)
    arrivals = rng.poisson(spec.arrivals[1], n)
    nxt, _, _ = mdp.age_and_arrive(np.full(n, 1), remaining, arrivals)
    codes = t.lookup[(nxt * t.radix ** np.arange(spec.width)).sum(axis=1)]
    state_idx = codes * (spec.key_levels + 1) + 2
    observed = np.bincount(state_idx, minlength=probs.shape[0])
    support = probs > 0
    assert observed[~support].sum() == 0
    assert probs.sum() == pytest.approx(1.0)
    _, p_value = stats.chisquare(observed[support], n * probs[support])
    assert p_value > 1e-3


def test_expected_evictions_closed_form_against_monte_carlo():
    mdp = SchedulingMDP(small_spec())
    rng = np.random.default_rng(4)
    remaining = np.array([[1, 1, 0, 0]])  # link 0 (M = 2, 3 bins): both survive aging
    exact = mdp.expected_evictions(np.array([0]), remaining, np.array([True]))[0]
    n = rng.poisson(0.8, 200_000)
    mc = np.maximum(0, 2 + n - 2)
    assert exact == pytest.approx(0.8)  # memory full after aging: every arrival evicts one pair
    assert mc.mean() == pytest.approx(exact, abs=4 * mc.std() / np.sqrt(n.size))
    remaining = np.array([[0, 0, 1, 0]])  # the only pair expires: 2 free slots
    exact = mdp.expected_evictions(np.array([0]), remaining, np.array([True]))[0]
    mc = np.maximum(0, n - 2)
    lam = 0.8
    closed = lam - (1 - np.exp(-lam)) - (1 - np.exp(-lam) - lam * np.exp(-lam))
    assert exact == pytest.approx(closed, rel=1e-12)
    assert mc.mean() == pytest.approx(exact, abs=4 * mc.std() / np.sqrt(n.size))


def _one_link(action_key_fresh: int, key: int):
    mdp = SchedulingMDP(small_spec())
    z = np.zeros((1, 5), dtype=np.int64)
    k = z.copy()
    k[0, 4] = action_key_fresh
    a = MDPAction(
        participate=np.array([False]), payload=z, verification=z, key=k, generate=np.array([True])
    )
    return mdp.post_decision(np.array([0]), np.zeros((1, 4), np.int64), np.array([key]), a)


def test_key_production_fills_the_pool_and_wastes_what_does_not_fit():
    # fresh pairs yield 2 steps; room is 3 steps from an empty pool of capacity 3
    post = _one_link(2, 0)
    assert post.key[0] == 3 and post.wasted[0] == 0  # the second pair still adds a step
    post = _one_link(3, 0)
    assert post.key[0] == 3 and post.wasted[0] == 1
    post = _one_link(1, 3)
    assert post.key[0] == 3 and post.wasted[0] == 1  # full pool: the bits are lost


def test_utility_is_the_harmonic_mean_of_v2_over_the_payload():
    spec = small_spec(payload_pairs=2)
    mdp = SchedulingMDP(spec)
    z = np.zeros((1, 5), dtype=np.int64)
    pay = z.copy()
    pay[0, 1] = 1  # one pair of age 1
    pay[0, 4] = 1  # one fresh pair
    a = MDPAction(
        participate=np.array([True]), payload=pay, verification=z, key=z, generate=np.array([True])
    )
    post = mdp.post_decision(np.array([0]), np.array([[0, 1, 0, 0]]), np.array([3]), a)
    v1 = werner_from_fidelity(fidelity_at_age(0.95, 1.0, 10.0)) ** 2
    v0 = werner_from_fidelity(0.95) ** 2
    hm = 2 / (1 / v1 + 1 / v0)
    assert post.served[0]
    assert post.key[0] == 1  # tag paid
    assert post.utility[0] == pytest.approx(1.0 * 1.0 * hm / spec.scale)
    # Z = the two best nodes served fresh: trust*phi*v0^2 = 1.0 and 0.72 (link 2: F0 = 0.92)
    assert spec.scale == pytest.approx(v0 * 1.0 + v0 * 0.8 * 0.9)


def test_unserved_participants_waste_their_pairs():
    spec = small_spec(key_init=0)
    mdp = SchedulingMDP(spec)
    z = np.zeros((1, 5), dtype=np.int64)
    pay = z.copy()
    pay[0, 4] = 1
    a = MDPAction(
        participate=np.array([True]), payload=pay, verification=z, key=z, generate=np.array([True])
    )
    post = mdp.post_decision(np.array([0]), np.zeros((1, 4), np.int64), np.array([1]), a)
    assert not post.served[0] and post.utility[0] == 0 and post.wasted[0] == 1 and post.key[0] == 1


def test_simulated_reward_mean_matches_the_exact_expected_reward():
    spec = small_spec(ready_prob=[1.0, 1.0, 1.0])
    model = FiniteMDP(spec)
    mdp = model.mdp
    state = MDPState(
        counts=np.array([[1, 0, 1, 0], [2, 1, 0, 0], [0, 1, 0, 1]]),
        key=np.array([1, 3, 0]),
        ready=np.ones(3, bool),
    )
    rng = np.random.default_rng(5)
    action = mdp.clip(state, random_action(mdp, np.random.default_rng(11)))
    _, exact = model._joint_values(state, action)
    rewards = np.array([mdp.step(state, action, rng)[1].reward for _ in range(20000)])
    assert rewards.mean() == pytest.approx(
        exact.sum(), abs=4 * rewards.std() / np.sqrt(rewards.size)
    )


def test_views_describe_the_state():
    mdp = SchedulingMDP(small_spec())
    state = MDPState(
        counts=np.array([[1, 0, 2, 0], [0, 1, 0, 0], [0, 0, 0, 1]]),
        key=np.array([1, 2, 3]),
        ready=np.array([True, False, True]),
        round=7,
    )
    inv, nodes = mdp.views(state)
    assert inv.n_pairs == 5
    np.testing.assert_array_equal(inv.pair_link, [0, 0, 0, 1, 2])
    np.testing.assert_allclose(
        inv.pair_age_s, [2.0, 2.0, 0.0, 1.0, 3.0]
    )  # ids grow with creation time
    np.testing.assert_allclose(inv.pair_fidelity[:3], fidelity_at_age(0.95, [2.0, 2.0, 0.0], 10.0))
    np.testing.assert_allclose(inv.key_bits, [0.1, 0.2, 0.3])
    assert (inv.pair_age_s <= inv.cutoff_s[inv.pair_link]).all()
    assert nodes.round == 7 and nodes.ready.tolist() == [True, False, True]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_encode_then_decode_is_the_identity(seed):
    mdp = SchedulingMDP(small_spec())
    rng = np.random.default_rng(seed)
    state = MDPState(
        counts=np.where(mdp.spec.bin_valid, rng.integers(0, 2, (3, 4)), 0),
        key=rng.integers(0, 4, 3),
        ready=rng.random(3) < 0.8,
    )
    action = mdp.clip(state, random_action(mdp, rng))
    back = mdp.decode(state, mdp.encode(state, action))
    for name in ("participate", "payload", "verification", "key", "generate"):
        np.testing.assert_array_equal(getattr(back, name), getattr(action, name))


def test_spec_rejects_bad_values():
    with pytest.raises(Exception, match=r"arrivals must be in \(0, inf\), got 0.0 at link 1"):
        small_spec(arrivals=[0.8, 0.0, 1.0])
    with pytest.raises(Exception, match=r"key_init must be in \[0, key_levels = 3\], got 5"):
        small_spec(key_init=5)


def test_example_spec_is_reproducible():
    a, b = example_spec(6, seed=3), example_spec(6, seed=3)
    np.testing.assert_array_equal(a.t_coh_s, b.t_coh_s)
    assert a.m == 1 and (a.bins >= 2).all()
