"""Agreement without a trusted broker (``consensus.trusted_broker = false``), in the running round."""

from __future__ import annotations

import copy
import json
import logging
import pickle

import numpy as np
import pytest

from ceas.broker.account import account
from ceas.broker.aggregate import aggregate
from ceas.broker.agree import TAGS_PER_PAIR_ATTEMPT, agree, agreement_state
from ceas.broker.configure import configure
from ceas.broker.local import local_updates
from ceas.broker.round import BrokerTrainer
from ceas.broker.setup import TAG_BITS, build_context, initial_state
from ceas.broker.transport import transport
from ceas.config import load_config
from ceas.consensus.agreement import model_digest
from ceas.errors import ConfigError
from ceas.rng import stream

AGREEMENT_ATTACKS = ("equivocating-leader", "conflicting-votes", "silent-agreement", "wrong-digest")


def _cfg(tmp_path, *extra, nodes=13, fraction=0.25):
    # 13 nodes with fraction 0.25: f = 3 Byzantine in all, so at most 3 of the 10 agreeing nodes (n > 3f every round)
    return load_config(
        "paper",
        [
            f"run.out_dir={json.dumps(str(tmp_path))}",
            f"training.nodes={nodes}",
            "scheduling.participants=10",
            "training.shots=64",
            f"security.byzantine_fraction={fraction}",
            "consensus.trusted_broker=false",
            *extra,
        ],
    )


def _rounds(cfg, n_rounds):
    """Run ``n_rounds`` rounds phase by phase; yield (round's theta in, agreement outcome, trusted theta, row)."""
    ctx = build_context(cfg)
    state = initial_state(ctx)
    theta = ctx.learner.initial_parameters()
    opt = ctx.learner.make_optimizer()
    for t in range(n_rounds):
        rng, adv = stream(cfg.run.seed, "round", t), stream(cfg.run.seed, "adversary", t)
        plan = configure(ctx, state, t, rng)
        replies = local_updates(ctx, state, plan, theta, rng, adv)
        delivered = transport(ctx, state, plan, replies, rng, adv)
        agg = aggregate(ctx, state, plan, replies, delivered)
        trusted_opt = copy.deepcopy(opt)
        trusted = None if agg.update is None else trusted_opt.update(theta, agg.update)
        out = agree(ctx, state, plan, replies, agg, theta, opt)
        row = account(ctx, state, plan, replies, delivered, agg, theta)
        row.update(out.metrics)
        yield theta, out, trusted, row, (ctx, state, plan, replies)
        theta = out.theta


def test_honest_rounds_agree_on_exactly_what_the_trusted_broker_computes(tmp_path):
    cfg = _cfg(tmp_path, fraction=0.0)
    for _, out, trusted, row, (_, _, plan, replies) in _rounds(cfg, 5):
        assert row["agreed"] == 1 and row["agreement_attempts"] == 1
        np.testing.assert_array_equal(out.theta, trusted)  # bit for bit, every round
        assert out.agreed_digest == model_digest(trusted)
        honest = {i for i in range(plan.m) if not replies.byzantine[i]}
        assert set(out.delivered) == honest
        assert set(out.delivered.values()) == {
            model_digest(trusted)
        }  # every honest node, same digest
        # m = 10: 45 pairs x 4 votes + 9 proposals, each one 128-bit tag from its pair's pool
        assert row["agreement_messages"] == 4 * 45 + 9
        assert row["agreement_key_bits"] == TAG_BITS * row["agreement_messages"]


def test_trusted_and_decentralised_runs_match_while_seed_keys_last(tmp_path):
    a = BrokerTrainer(_cfg(tmp_path, fraction=0.0))
    b = BrokerTrainer(load_config("paper", [f"run.out_dir={json.dumps(str(tmp_path))}",
                                            "training.nodes=13", "scheduling.participants=10",
                                            "training.shots=64", "security.byzantine_fraction=0.0"]))  # fmt: skip
    ta = tb = a.initial_parameters()
    oa, ob = a.make_optimizer(), b.make_optimizer()
    for t in range(3):
        ra, rb = a.run_round(t, ta, oa), b.run_round(t, tb, ob)
        ta, tb = ra.theta, rb.theta
        np.testing.assert_array_equal(ta, tb)
        assert "agreed" in ra.metrics and "agreed" not in rb.metrics


@pytest.mark.parametrize("attack", AGREEMENT_ATTACKS)
def test_attacks_below_the_bound_never_split_honest_nodes_and_failures_are_counted(
    tmp_path, attack
):
    # seed keys large enough for 8 rounds of up to 4 attempts: exhaustion is tested on its own below
    cfg = _cfg(tmp_path, f'security.attacks=["{attack}"]', "security.seed_key_bits=65536")
    failed = 0
    for theta, out, trusted, row, (_, _, plan, replies) in _rounds(cfg, 8):
        assert row["agreement_bound_ok"] == 1
        assert row["agreement_consistent"] == 1
        assert len(set(out.delivered.values())) == 1  # honest nodes never hold different digests
        # f + 1 = 4 rotating leaders always include an honest one: every round agrees, on the honest model
        assert row["agreed"] == 1
        np.testing.assert_array_equal(out.theta, trusted)
        # every failed attempt was detected by the honest nodes and counted
        assert row["agreement_failed"] == row["agreement_attempts"] - 1
        assert row["agreement_detected"] >= row["agreement_failed"]
        failed += row["agreement_failed"]
    if attack in ("silent-agreement", "wrong-digest"):
        assert failed > 0  # a Byzantine leader came up and cost an attempt


def test_a_round_that_cannot_agree_is_recorded_and_not_applied(tmp_path):
    # ample pairwise seed keys, so that a round fails for its Byzantine leader only (not for a dry key pool)
    cfg = _cfg(
        tmp_path,
        'security.attacks=["wrong-digest"]',
        "consensus.agreement_attempts=1",
        "security.seed_key_bits=1048576",
    )
    lost = 0
    for theta, out, trusted, row, _ in _rounds(cfg, 10):
        if row["agreed"]:
            np.testing.assert_array_equal(out.theta, trusted)
        else:
            lost += 1
            np.testing.assert_array_equal(
                out.theta, theta
            )  # θ stays; Adam's state too (next round agrees)
            assert row["agreement_failed"] == 1 and row["agreement_detected"] == 1
            assert row["agreement_evidence"] > 0  # honest nodes hold evidence against the leader
    assert lost > 0


def test_beyond_the_bound_the_run_refuses_or_detects(tmp_path, caplog):
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, fraction=0.4)
    msg = str(err.value)
    assert "\n" not in msg and "n > 3f" in msg and "security.byzantine_fraction" in msg
    # 20 nodes, 6 Byzantine: some rounds seat more than 3 of them among 10 agreeing nodes
    cfg = _cfg(tmp_path, 'security.attacks=["wrong-digest"]', nodes=20, fraction=0.3)
    beyond = 0
    with caplog.at_level(logging.WARNING, logger="ceas.broker.agree"):
        for theta, out, trusted, row, _ in _rounds(cfg, 12):
            if not row["agreement_bound_ok"]:
                beyond += 1
            if row["agreed"]:  # whatever happens, only the honest model is ever applied
                np.testing.assert_array_equal(out.theta, trusted)
            else:
                np.testing.assert_array_equal(out.theta, theta)
    assert beyond > 0
    lines = [r.getMessage() for r in caplog.records if "n > 3f" in r.getMessage()]
    assert len(lines) == beyond and "tolerates f <= 3" in lines[0]


def test_agreement_key_is_paid_from_pairwise_pools_and_refilled_through_the_scheduler(tmp_path):
    cfg = _cfg(tmp_path, "security.seed_key_bits=1024", fraction=0.0)
    rows = [r for _, _, _, r, _ in _rounds(cfg, 4)]
    # after round 0 (~4 tags per pair) the 1,024 seed bits are below one attempt's 5 tags: every later round asks
    # its channels for swapped key pairs, counted as key pairs
    assert rows[0]["key_pairs"] == 0 and all(r["key_pairs"] > 0 for r in rows[1:])
    assert sum(r["agreement_swapped"] for r in rows) > 0
    # with only 8 tags per pair and ~4 spent per round, pools run dry: messages are not sent, never unsigned
    assert sum(r["agreement_key_dry"] for r in rows) > 0
    for r in rows:
        assert r["agreement_key_bits"] == TAG_BITS * r["agreement_messages"]
        if r["agreement_key_dry"]:
            assert r["agreement_rejected"] >= r["agreement_key_dry"]


def test_demand_stops_at_the_configured_bound(tmp_path):
    cfg = _cfg(
        tmp_path, "security.seed_key_bits=256", "consensus.agreement_key_pairs=7", fraction=0.0
    )
    ctx = build_context(cfg)
    state = initial_state(ctx)
    plan = configure(ctx, state, 0, stream(cfg.run.seed, "round", 0))
    got = {c: b.shape[0] for c, (b, _) in plan.supply.agreement.items()}
    assert got and max(got.values()) <= 7
    assert set(got) <= set(plan.participants.tolist())


def test_pairwise_state_survives_a_checkpoint(tmp_path):
    cfg = _cfg(tmp_path, fraction=0.0)
    tr = BrokerTrainer(cfg)
    theta, opt = tr.initial_parameters(), tr.make_optimizer()
    theta = tr.run_round(0, theta, opt).theta
    blob = tr.extra_state()
    other = BrokerTrainer(cfg)
    other.load_extra_state(blob)
    ag = agreement_state(other.ctx, other.state)
    assert ag.keys.pools and all(p.available_bits < 4096 for p in ag.keys.pools.values())
    opt2 = pickle.loads(pickle.dumps(opt))
    np.testing.assert_array_equal(
        tr.run_round(1, theta, opt).theta, other.run_round(1, theta, opt2).theta
    )
    assert TAGS_PER_PAIR_ATTEMPT == 5
