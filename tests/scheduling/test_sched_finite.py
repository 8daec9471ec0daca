"""Exact value iteration and policy evaluation on reduced instances (issue 5 acceptance)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from ceas.errors import ProtocolError, ValidationError
from ceas.scheduling import FiniteMDP, MDPAction, MDPSpec, MDPState, SchedulingParams, make_policy

TINY_PARAMS = SchedulingParams(participants=1, waste_penalty=0.05, latency_penalty=0.2)


def tiny_spec():
    """2 nodes, one slot, 2 age bins (T = 5 s), pools of 2 steps: 81 joint states."""
    return MDPSpec(
        f0=[0.95, 0.95],
        t_coh_s=[5.0, 5.0],
        slots=[1, 1],
        arrivals=[0.7, 1.2],
        trust=[1.0, 0.7],
        phi=[1.0, 1.0],
        ready_prob=[1.0, 1.0],
        tag_steps=1,
        key_step_bits=0.1,
        key_levels=2,
        key_init=2,
        params=TINY_PARAMS,
    )


def base_spec(**params):
    """The 'base' instance of benchmarks/scheduling_optimality.py."""
    p = SchedulingParams(participants=1, waste_penalty=0.05, latency_penalty=0.2, **params)
    return MDPSpec(
        f0=[0.95, 0.95],
        t_coh_s=[10.0, 10.0],
        slots=[2, 2],
        arrivals=[0.8, 0.8],
        trust=[1.0, 0.8],
        phi=[1.0, 1.0],
        ready_prob=[1.0, 1.0],
        tag_steps=2,
        key_step_bits=0.1,
        key_levels=3,
        key_init=3,
        params=p,
    )


def brute_force_values(spec: MDPSpec, tol: float = 1e-11) -> dict[tuple, float]:
    """Dense value iteration over explicitly enumerated joint states and joint actions (no factorisation, no
    dominance pruning): only the model's one-round functions (post_decision, age_and_arrive) are shared."""
    model = FiniteMDP(spec)  # only for its MDP simulator functions, not its tables or solver
    mdp = model.mdp
    p = spec.params
    b = spec.width
    configs = [c for c in itertools.product(range(2), repeat=b) if sum(c) <= 1]
    link_states = [(c, k) for c in configs for k in range(spec.key_levels + 1)]
    joint = list(itertools.product(link_states, repeat=2))
    index = {s: i for i, s in enumerate(joint)}
    n_tail = np.arange(40)  # Poisson tail beyond 40 arrivals is < 1e-30 here

    def link_actions(c):
        c = np.array(c)
        out = []
        for part in (False, True):
            sources = ([j for j in range(b) if c[j]] + [b]) if part else [None]
            for src in sources:
                pay = np.zeros(b + 1, np.int64)
                if src is not None:
                    pay[src] = 1
                left = c - pay[:b]
                for conv in itertools.product(*(range(v + 1) for v in left)):
                    for fresh_key in range(int(spec.max_key_requests[0]) + 1):
                        for gen in (False, True):
                            out.append((part, pay, np.append(conv, fresh_key), gen))
        return out

    act_state, act_reward, tr_act, tr_next, tr_prob = [], [], [], [], []
    n_act = 0
    for (c0, k0), (c1, k1) in joint:
        pairs = [
            (a0, a1)
            for a0, a1 in itertools.product(link_actions(c0), link_actions(c1))
            if a0[0] + a1[0] <= spec.m
        ]
        n = len(pairs)
        rows = [a for pair in pairs for a in pair]  # row 2i: link 0, row 2i+1: link 1
        links = np.tile([0, 1], n)
        action = MDPAction(
            participate=np.array([a[0] for a in rows]),
            payload=np.stack([a[1] for a in rows]),
            verification=np.zeros((2 * n, b + 1), np.int64),
            key=np.stack([a[2] for a in rows]).astype(np.int64),
            generate=np.array([a[3] for a in rows]),
        )
        counts = np.tile(np.array([c0, c1]), (n, 1))
        post = mdp.post_decision(links, counts, np.tile([k0, k1], n), action)
        r = (
            post.utility
            - p.waste_penalty * post.wasted
            - p.latency_penalty * post.wait_s / (spec.m * p.round_s)
        )
        lam = np.where(post.generate, spec.arrivals[links], 0.0)
        pmf = stats.poisson.pmf(n_tail[None, :], lam[:, None])
        pmf[lam == 0] = n_tail == 0
        big = n_tail.shape[0]
        nxt, exp_, ev = mdp.age_and_arrive(
            np.repeat(links, big), np.repeat(post.remaining, big, axis=0), np.tile(n_tail, 2 * n)
        )
        r = r - p.waste_penalty * (pmf * (exp_ + ev).reshape(2 * n, big)).sum(axis=1)
        cfg = [configs.index(tuple(x)) for x in nxt]
        cfg = np.array(cfg).reshape(2 * n, big)
        for i in range(n):
            d0, d1 = {}, {}
            for d, row in ((d0, 2 * i), (d1, 2 * i + 1)):
                for j in range(big):
                    key = (configs[cfg[row, j]], int(post.key[row]))
                    d[key] = d.get(key, 0.0) + pmf[row, j]
            for (s0, q0), (s1, q1) in itertools.product(d0.items(), d1.items()):
                tr_act.append(n_act + i)
                tr_next.append(index[(s0, s1)])
                tr_prob.append(q0 * q1)
            act_state.append(index[((c0, k0), (c1, k1))])
            act_reward.append(r[2 * i] + r[2 * i + 1])
        n_act += n
    act_state = np.array(act_state)
    act_reward = np.array(act_reward)
    tr_act, tr_next, tr_prob = np.array(tr_act), np.array(tr_next), np.array(tr_prob)
    starts = np.flatnonzero(np.r_[True, np.diff(act_state) != 0])
    v = np.zeros(len(joint))
    while True:
        q = act_reward + p.discount * np.bincount(tr_act, tr_prob * v[tr_next], minlength=n_act)
        new = np.maximum.reduceat(q, starts)
        if np.max(np.abs(new - v)) < tol:
            v = new
            break
        v = new
    return {s: v[i] for s, i in index.items()}


def test_value_iteration_matches_dense_brute_force():
    spec = tiny_spec()
    model = FiniteMDP(spec)
    res = model.value_iteration()
    assert res.residual < 1e-8
    brute = brute_force_values(spec)
    for (s0, s1), v in brute.items():
        state = MDPState(
            counts=np.array([s0[0], s1[0]]), key=np.array([s0[1], s1[1]]), ready=np.ones(2, bool)
        )
        # |V - V*| <= gamma / (1 - gamma) * residual < 1.9e-7 after a residual below 1e-8
        assert res.values[model.state_index(state)] == pytest.approx(v, abs=2e-7)


def test_value_iteration_converges_below_1e_8_and_the_optimal_policy_attains_it():
    model = FiniteMDP(base_spec())
    res = model.value_iteration()
    assert res.residual < 1e-8
    # geometric convergence: after n backups from V = 0 the change is at most gamma^n * max|r| / (1 - gamma)
    assert res.iterations < 1000
    vi_policy = make_policy("value-iteration", model.spec.params, model=model)
    value = model.evaluate(vi_policy)
    assert value.expected_return == pytest.approx(res.expected_return, abs=1e-6)
    np.testing.assert_allclose(value.values[0], res.values, atol=1e-6)


def test_ceas_is_near_optimal_on_the_base_instance_and_the_baselines_are_not():
    model = FiniteMDP(base_spec())
    opt = model.value_iteration().expected_return
    ratio = {
        name: model.evaluate(make_policy(name, model.spec.params), phases=2).expected_return / opt
        for name in ("ceas", "random", "oblivious", "greedy-fidelity")
    }
    assert all(r <= 1 + 1e-9 for r in ratio.values())
    assert ratio["ceas"] >= 0.95
    assert ratio["random"] < ratio["ceas"] and ratio["oblivious"] < ratio["ceas"]
    assert ratio["random"] < 0.95 and ratio["oblivious"] < 0.95


@pytest.mark.slow
def test_exact_evaluation_agrees_with_monte_carlo():
    """Mean discounted return of simulated episodes within 4 standard errors plus the truncation bound.

    Truncating at 150 rounds drops at most gamma^150 * max|r| / (1 - gamma) < 4.6e-4 * 2 / 0.05 = 0.019 (|r| < 2).
    """
    spec = tiny_spec()
    model = FiniteMDP(spec)
    policy = make_policy("ceas", spec.params)
    exact = model.evaluate(policy).expected_return
    rng = np.random.default_rng(7)
    returns = []
    for _ in range(200):
        state = model.mdp.initial_state(rng)
        total, disc = 0.0, 1.0
        for _ in range(150):
            inv, nodes = model.mdp.views(state)
            action = model.mdp.decode(state, policy(inv, nodes, rng), (inv, nodes))
            state, out = model.mdp.step(state, action, rng)
            total += disc * out.reward
            disc *= spec.params.discount
        returns.append(total)
    returns = np.array(returns)
    bias = spec.params.discount**150 * 2.0 / (1 - spec.params.discount)
    assert returns.mean() == pytest.approx(
        exact, abs=4 * returns.std(ddof=1) / np.sqrt(returns.size) + bias
    )


def test_random_policy_distribution_matches_its_draws():
    spec = MDPSpec(
        f0=[0.95] * 4,
        t_coh_s=[10.0] * 4,
        slots=[2] * 4,
        arrivals=[0.8] * 4,
        trust=[1.0] * 4,
        phi=[1.0] * 4,
        ready_prob=[1.0] * 4,
        params=SchedulingParams(participants=2),
    )
    model = FiniteMDP(spec, max_states=10**7)
    state = MDPState(
        counts=np.array([[1, 1, 0]] * 4),
        key=np.array([3, 0, 2, 3]),
        ready=np.array([1, 1, 0, 1], bool),
    )
    inv, nodes = model.mdp.views(state)
    policy = make_policy("random", spec.params)
    listed = policy.decision_distribution(inv, nodes)
    assert len(listed) == 3 and sum(p for p, _ in listed) == pytest.approx(1.0)
    sets = [tuple(d.participants) for _, d in listed]
    assert sorted(sets) == [(0, 1), (0, 3), (1, 3)]
    rng = np.random.default_rng(8)
    draws = [tuple(policy(inv, nodes, rng).participants) for _ in range(3000)]
    counts = [draws.count(s) for s in sets]
    _, p_value = stats.chisquare(counts)
    assert p_value > 1e-3
    for _, d in listed:
        assert d == policy(inv, nodes, _rng_for(policy, inv, nodes, tuple(d.participants)))


def _rng_for(policy, inv, nodes, target):
    for seed in range(1000):
        if tuple(policy(inv, nodes, np.random.default_rng(seed)).participants) == target:
            return np.random.default_rng(seed)
    raise AssertionError(target)


def test_optimal_action_needs_value_iteration_first_and_large_instances_are_refused():
    model = FiniteMDP(tiny_spec())
    with pytest.raises(ProtocolError, match=r"call value_iteration\(\) before"):
        model.optimal_action(model.state_at((0, 0)))
    with pytest.raises(ValidationError, match="more than max_states = 10"):
        FiniteMDP(tiny_spec(), max_states=10)


def test_randomised_policy_without_distribution_is_refused():
    model = FiniteMDP(tiny_spec())
    random = make_policy("random", model.spec.params)

    class Opaque:
        name = "opaque"
        params = model.spec.params

        def __call__(self, inventory, nodes, rng):
            return random(inventory, nodes, rng)

    with pytest.raises(ValidationError, match="policy 'opaque' is randomised"):
        model.evaluate(Opaque())
