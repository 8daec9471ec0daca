"""Each phase of the broker's round on its own: configure, local updates, transport, aggregate, account."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from ceas.broker.account import account
from ceas.broker.aggregate import aggregate
from ceas.broker.configure import configure, execute, views
from ceas.broker.local import local_updates
from ceas.broker.payload import deliver
from ceas.broker.round import BrokerTrainer
from ceas.broker.setup import TAG_BITS, build_context, initial_state
from ceas.broker.transport import (
    INCOMPLETE,
    KEY_DRY,
    NON_FINITE,
    OUT_OF_RANGE,
    check_update,
    receive_payloads,
    transport,
)
from ceas.config import load_config
from ceas.rng import stream
from ceas.scheduling.views import Decision


def _cfg(tmp_path, *extra):
    return load_config(
        "paper",
        [
            f"run.out_dir={json.dumps(str(tmp_path))}",
            "run.rounds=3",
            "training.nodes=12",
            "scheduling.participants=4",
            "security.byzantine_fraction=0.25",
            *extra,
        ],
    )


def _phases_until(ctx, state, phase, t=0, theta=None):
    """Run round ``t``'s phases in order up to and including ``phase``; return what each produced."""
    theta = ctx.learner.initial_parameters() if theta is None else theta
    rng, adv = stream(ctx.cfg.run.seed, "round", t), stream(ctx.cfg.run.seed, "adversary", t)
    out = {"theta": theta, "rng": rng}
    out["plan"] = configure(ctx, state, t, rng)
    if phase == "configure":
        return out
    out["replies"] = local_updates(ctx, state, out["plan"], theta, rng, adv)
    if phase == "local":
        return out
    out["delivered"] = transport(ctx, state, out["plan"], out["replies"], rng, adv)
    if phase == "transport":
        return out
    out["agg"] = aggregate(ctx, state, out["plan"], out["replies"], out["delivered"])
    return out


@pytest.fixture
def broker(tmp_path):
    ctx = build_context(_cfg(tmp_path))
    return ctx, initial_state(ctx)


def test_configure_returns_a_frozen_plan_that_matches_the_network(broker):
    ctx, state = broker
    plan = _phases_until(ctx, state, "configure")["plan"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.participants = np.arange(3)
    assert plan.m == ctx.cfg.scheduling.participants
    assert np.all(np.diff(plan.participants) > 0)
    assert np.array_equal(plan.participants, np.sort(plan.decision.participants))
    for i, k in enumerate(plan.participants):
        w = plan.supply.payload[k]
        assert plan.payload_werner[i] is w
        assert plan.complete[i] == (w.size >= ctx.payload_pairs)
        assert plan.visibility[i] == (w.mean() if w.size else 0.0)
    c = state.network.counters()
    assert np.all(c.residual == 0)
    assert plan.supply.generated == int(c.generated.sum())
    assert int(c.consumed["payload"].sum()) == sum(w.size for w in plan.supply.payload)


def test_configure_with_classical_payloads_needs_no_payload_pairs(tmp_path):
    ctx = build_context(_cfg(tmp_path, 'broker.payload="classical"'))
    plan = _phases_until(ctx, initial_state(ctx), "configure")["plan"]
    assert ctx.copies == 0 and ctx.payload_pairs == 0
    assert plan.complete.all() and np.all(plan.visibility == 1.0)


def test_execute_purifies_the_pairs_a_decision_names(tmp_path):
    """Purification is an action of the MDP (Definition 3): the broker carries it out on stored pairs."""
    cfg = _cfg(tmp_path, "network.memory.coherence_min_s=50", "network.memory.coherence_max_s=100")
    ctx = build_context(cfg)
    state = initial_state(ctx)
    net = state.network
    net.set_generation(np.arange(net.n_links) == 0, True)
    net.advance(0.2)
    v = net.view()
    ids = v.pair_id[0][v.occupied[0]]
    assert ids.size >= 2
    before = net.view().fidelity[0][v.occupied[0]][:2]
    none = np.zeros((net.n_links, 3), np.int64)
    decision = Decision(
        participants=np.zeros(0, np.int64),
        requests=none,
        generate=np.zeros(net.n_links, bool),
        purify=np.array([[ids[0], ids[1]]]),
    )
    execute(ctx, state, decision, 1e-6, np.random.default_rng(0))
    c = net.counters()
    assert c.consumed["purify"][0] in (1, 2)  # the sacrificed pair, and the kept one on failure
    assert np.all(c.residual == 0)
    assert ids[1] not in net.view().pair_id[0][net.view().occupied[0]]
    assert before.size == 2


def test_local_updates_are_the_learners_gradients_and_the_adversarys_replacements(tmp_path):
    ctx = build_context(_cfg(tmp_path, 'consensus.stamp="paper"'))
    state = initial_state(ctx)
    out = _phases_until(ctx, state, "local")
    plan, replies = out["plan"], out["replies"]
    # replay the round's stream to the point where the local phase starts
    rng = stream(ctx.cfg.run.seed, "round", 0)
    configure(ctx, initial_state(ctx), 0, rng)
    batches = ctx.learner.minibatches(plan.participants, rng)
    losses, grads = ctx.learner.local_gradients(out["theta"], plan.participants, batches, rng)
    np.testing.assert_array_equal(replies.losses, losses)
    honest = ~replies.byzantine
    np.testing.assert_array_equal(replies.updates[honest], grads[honest])
    assert np.array_equal(replies.byzantine, ctx.is_byzantine[plan.participants])
    shots = ctx.cfg.training.shots
    for i, s in enumerate(replies.stamps):
        assert s.node == plan.participants[i] and s.round == 0 and s.shots == shots
        assert s.phi == pytest.approx(shots * s.qfi * ((4 * s.fidelity - 1) / 3) ** 2)
        assert s.nonce == int(state.macs[s.node].next_seq).to_bytes(8, "big")  # nothing signed yet


def test_receive_payloads_is_payload_deliver_on_the_delivered_pairs(broker):
    ctx, state = broker
    out = _phases_until(ctx, state, "local")
    plan, replies = out["plan"], out["replies"]
    accepted = plan.complete.copy()
    ok = np.flatnonzero(accepted)
    assert ok.size
    got = receive_payloads(ctx, plan, replies.updates, accepted, np.random.default_rng(7))
    n = ctx.payload_pairs
    w = np.stack([plan.payload_werner[i][:n] for i in ok]).reshape(ok.size, ctx.copies, -1)
    want = deliver(
        replies.updates[ok],
        w,
        plan.visibility[ok],
        clip=ctx.cfg.broker.clip,
        rng=np.random.default_rng(7),
        scale=ctx.cfg.broker.payload_scale,
    )
    np.testing.assert_array_equal(got[ok], want)
    np.testing.assert_array_equal(got[~accepted], replies.updates[~accepted])


def test_transport_drops_incomplete_payloads_and_unpaid_tags(broker):
    ctx, state = broker
    out = _phases_until(ctx, state, "local")
    plan, replies = out["plan"], out["replies"]
    short = dataclasses.replace(plan, complete=np.zeros(plan.m, bool))
    delivered = transport(
        ctx, state, short, replies, np.random.default_rng(0), np.random.default_rng(1)
    )
    assert not delivered.accepted.any() and delivered.sent == 0
    assert set(delivered.reasons.values()) == {INCOMPLETE}
    # an empty key pool: the reply is never sent
    k = int(plan.participants[0])
    pool = state.network.key_pool(k)
    pool.take(pool.available_bytes)
    full = dataclasses.replace(plan, round=1, complete=np.ones(plan.m, bool))
    delivered = transport(
        ctx, state, full, replies, np.random.default_rng(0), np.random.default_rng(1)
    )
    assert delivered.reasons[0] == KEY_DRY and not delivered.accepted[0]
    assert delivered.sent == plan.m - 1


def test_aggregate_rejects_a_stale_stamp_and_only_rejections_cost_trust(broker):
    """A stamp of another round is rejected (weight 0, trust lost); a reply the network lost costs no trust."""
    ctx, state = broker
    out = _phases_until(ctx, state, "transport", t=1)
    plan, replies, delivered = out["plan"], out["replies"], out["delivered"]
    i = int(np.flatnonzero(delivered.accepted)[0])
    stamps = list(replies.stamps)
    stamps[i] = dataclasses.replace(stamps[i], round=0)
    forged = dataclasses.replace(replies, stamps=tuple(stamps))
    lost = dataclasses.replace(
        delivered,
        accepted=np.where(np.arange(plan.m) == (i + 1) % plan.m, False, delivered.accepted),
        reasons={**delivered.reasons, (i + 1) % plan.m: KEY_DRY},
    )
    trust_before = state.trust.snapshot(1).scores.copy()
    agg = aggregate(ctx, state, plan, forged, lost)
    assert not agg.accepted[i] and agg.weights[i] == 0.0
    assert agg.weights.sum() == pytest.approx(1.0)
    assert agg.update is not None and agg.update.shape == (ctx.n_params,)
    after = state.trust.snapshot(2).scores
    j = (i + 1) % plan.m
    k_lost, k_bad = plan.participants[j], plan.participants[i]
    assert after[k_bad] < trust_before[k_bad]
    assert after[k_lost] >= trust_before[k_lost] or np.isclose(after[k_lost], trust_before[k_lost])


def test_account_counts_utilisation_from_the_runs_totals(broker):
    ctx, state = broker
    out = _phases_until(ctx, state, "aggregate")
    plan, agg = out["plan"], out["agg"]
    row = account(ctx, state, plan, out["replies"], out["delivered"], agg, out["theta"])
    tot = state.totals
    key_share = min(1.0, tot["key_bits_out"] / tot["key_bits_in"]) if tot["key_bits_in"] else 0.0
    assert tot["key_bits_out"] == TAG_BITS * out["delivered"].sent
    used = sum(
        min(plan.payload_werner[i].size, ctx.payload_pairs) for i in np.flatnonzero(agg.accepted)
    )
    used += sum(plan.supply.verification[k].size for k in plan.participants)
    assert tot["used"] == used
    assert row["utilisation"] == pytest.approx(
        (used + key_share * tot["key_pairs"]) / tot["generated"]
    )
    assert row["accepted"] == int(agg.accepted.sum())
    assert row["pairs_generated"] == plan.supply.generated
    g = ctx.learner.full_gradient(out["theta"])
    assert row["aggregate_mse"] == pytest.approx(float(np.mean((agg.update - g) ** 2)))


def test_run_round_is_the_five_phases_in_order(tmp_path):
    """The trainer's round equals the phases called by hand (same state, same streams), plus one optimiser step."""
    cfg = _cfg(tmp_path)
    trainer = BrokerTrainer(cfg)
    trainer.start()
    opt = trainer.make_optimizer()
    theta = trainer.initial_parameters()
    got = trainer.run_round(0, theta, opt)
    ctx = build_context(cfg)
    state = initial_state(ctx)
    out = _phases_until(ctx, state, "aggregate", theta=theta)
    row = account(ctx, state, out["plan"], out["replies"], out["delivered"], out["agg"], theta)
    want = ctx.learner.make_optimizer().update(theta, out["agg"].update)
    np.testing.assert_array_equal(got.theta, want)
    assert {k: got.metrics[k] for k in row} == row


def test_views_show_the_inventory_and_byzantine_demand(tmp_path):
    ctx = build_context(_cfg(tmp_path, 'security.attacks=["pair-hoarding"]'))
    inventory, nodes = views(ctx, initial_state(ctx), 0)
    assert inventory.n_links == ctx.cfg.training.nodes
    assert np.all(nodes.payload_pairs[~ctx.is_byzantine] == ctx.payload_pairs)
    assert np.all(nodes.payload_pairs[ctx.is_byzantine] > ctx.payload_pairs)


class _ConstantAdversary:
    """The run's adversary, except that every Byzantine update is ``value`` in every component."""

    def __init__(self, inner, value):
        self.inner, self.value = inner, value

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def updates(self, honest, f, rng, *, context=None):
        return np.full((f, honest.shape[1]), self.value)


def _round_with_byzantine_seats(ctx, state):
    for t in range(20):
        out = _phases_until(ctx, state, "transport", t=t)
        if (out["replies"].byzantine & out["plan"].complete).any():
            return out
    raise AssertionError("no Byzantine participant with a complete payload in 20 rounds")


@pytest.mark.parametrize("payload", ["quantum", "classical"])
def test_a_non_finite_update_is_rejected_never_clipped_into_the_aggregate(tmp_path, payload):
    cfg = _cfg(tmp_path, 'scheduling.policy="random"', f'broker.payload="{payload}"')
    ctx = build_context(cfg)
    ctx = dataclasses.replace(ctx, adversary=_ConstantAdversary(ctx.adversary, np.inf))
    state = initial_state(ctx)
    out = _round_with_byzantine_seats(ctx, state)
    plan, replies, delivered = out["plan"], out["replies"], out["delivered"]
    bad = np.flatnonzero(replies.byzantine & plan.complete)
    assert all(delivered.reasons[i] == NON_FINITE for i in bad)
    assert not delivered.accepted[bad].any()
    agg = aggregate(ctx, state, plan, replies, delivered)
    assert np.all(agg.weights[bad] == 0.0) and np.all(np.isfinite(agg.update))


def test_finite_updates_travel_inside_the_declared_range(tmp_path):
    """The adversary sends the strongest update that is accepted: its components are clipped to [-G, G]."""
    ctx = build_context(_cfg(tmp_path, 'scheduling.policy="random"'))
    ctx = dataclasses.replace(ctx, adversary=_ConstantAdversary(ctx.adversary, 5.0))
    out = _round_with_byzantine_seats(ctx, initial_state(ctx))
    replies, delivered = out["replies"], out["delivered"]
    G = ctx.cfg.broker.clip
    assert np.all(replies.updates[replies.byzantine] == G)
    assert np.all(np.abs(replies.updates) <= G)
    assert not set(delivered.reasons.values()) & {NON_FINITE, OUT_OF_RANGE}


def test_check_update_names_what_is_wrong():
    assert check_update(np.array([0.5, -1.0]), 1.0) is None
    assert check_update(np.array([0.5, np.nan]), 1.0) == NON_FINITE
    assert check_update(np.array([-np.inf, 0.0]), 1.0) == NON_FINITE
    assert check_update(np.array([0.5, -1.0000001]), 1.0) == OUT_OF_RANGE


def test_predicted_mse_stamps_are_the_inverse_of_each_replys_predicted_error(tmp_path):
    """consensus.stamp = 'mse': an honest stamp is 1 / (own shot variance + bias² + payload variance at its scale and
    ledger visibility), mean over components; the broker grants at most the floor it can prove."""
    from ceas.broker.aggregate import mse_phi_cap, verified_phi
    from ceas.broker.payload import payload_variance
    from ceas.network.werner import werner_from_fidelity

    ctx = build_context(_cfg(tmp_path, 'consensus.stamp="mse"', "security.byzantine_fraction=0.0"))
    state = initial_state(ctx)
    np.testing.assert_array_equal(state.phi, 1.0)  # no prior before a node has sent a stamp
    out = _phases_until(ctx, state, "local")
    plan, replies = out["plan"], out["replies"]
    rng = stream(ctx.cfg.run.seed, "round", 0)
    configure(ctx, initial_state(ctx), 0, rng)
    batches = ctx.learner.minibatches(plan.participants, rng)
    report = ctx.learner.local_gradient_report(out["theta"], plan.participants, batches, rng)
    np.testing.assert_array_equal(
        replies.updates, report.grad
    )  # the same gradients as without the report
    v = werner_from_fidelity(replies.ledger_fidelity)
    pay = payload_variance(
        replies.updates, v[:, None], ctx.copies, ctx.cfg.broker.clip, scale="node"
    )
    want = 1.0 / (report.mse + pay).mean(axis=1)
    np.testing.assert_allclose([s.phi for s in replies.stamps], want, rtol=1e-12)
    cap = mse_phi_cap(ctx, replies.updates, np.full(plan.m, 0.97))
    assert np.all(cap >= want) and np.all(
        np.isfinite(cap)
    )  # honest claims sit under the provable cap
    phi, ok = verified_phi(ctx, state, plan, replies)
    assert ok.all() and np.all(phi <= np.array([s.phi for s in replies.stamps]) + 1e-12)


def test_an_inflated_predicted_mse_stamp_is_capped(tmp_path):
    cfg = _cfg(
        tmp_path,
        'consensus.stamp="mse"',
        'security.attacks=["stamp-inflation"]',
        'scheduling.policy="random"',
    )
    ctx = build_context(cfg)
    out = _round_with_byzantine_seats(ctx, initial_state(ctx))
    from ceas.broker.aggregate import verified_phi

    plan, replies = out["plan"], out["replies"]
    claims = np.array([s.phi for s in replies.stamps])
    byz = replies.byzantine
    assert claims[byz].min() > claims[~byz].max()  # the adversary claims more than any honest node
    phi, _ = verified_phi(ctx, initial_state(ctx), plan, replies)
    assert np.all(phi[byz] < claims[byz])  # and is granted less than it claims


def test_inclusion_weighting_divides_each_weight_by_the_participants_seat_probability(tmp_path):
    """consensus.inclusion_weighting: the aggregate's weights are the capped, normalised φ_k / π_k, with π_k the
    probability that the policy's Plackett–Luce draw (its Decision.seat_weights) seats k."""
    from ceas.broker.aggregate import aggregation_weights, seat_probability, verified_phi
    from ceas.consensus.stamps import cap_weights
    from ceas.scheduling.inclusion import plackett_luce_inclusion

    ctx = build_context(_cfg(tmp_path, "consensus.inclusion_weighting=true", "security.attacks=[]"))
    state = initial_state(ctx)
    out = _phases_until(ctx, state, "local")
    plan = out["plan"]
    draw = plan.decision.seat_weights
    assert draw is not None and (draw[plan.participants] > 0).all()
    pi = plackett_luce_inclusion(draw, plan.participants.size)[plan.participants]
    np.testing.assert_allclose(seat_probability(plan), pi, rtol=0, atol=0)
    assert len(set(np.round(pi, 6))) > 1  # the ceas policy seats unevenly: the correction is not a constant
    phi, _ = verified_phi(ctx, state, plan, out["replies"])
    np.testing.assert_allclose(aggregation_weights(ctx, plan, phi), np.where(phi > 0, phi / pi, 0))
    agg = aggregate(ctx, state, plan, out["replies"], transport(ctx, state, plan, out["replies"],
                                                                 out["rng"], stream(0, "adversary", 0)))  # fmt: skip
    ok = agg.accepted & (phi > 0)
    np.testing.assert_allclose(
        agg.weights[ok], cap_weights((phi / pi)[ok], ctx.cfg.consensus.weight_cap), rtol=1e-12
    )


def test_inclusion_weighting_is_refused_where_no_draw_seats_the_participants():
    from ceas.errors import ConfigError

    for extra, needs in (
        (['scheduling.policy="oblivious"'], "scheduling.policy = 'oblivious'"),
        (['scheduling.selection="top"'], "scheduling.selection = 'top'"),
    ):
        with pytest.raises(ConfigError, match="consensus.inclusion_weighting: True is not allowed with") as err:
            load_config("quick", ["broker.enabled=true", "consensus.inclusion_weighting=true", *extra])
        assert needs in str(err.value) and "\n" not in str(err.value)
