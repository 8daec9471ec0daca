"""The cross-layer broker end to end: invariants of the network under a full run, resume, attacks, metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ceas.broker.configure import views
from ceas.broker.round import BrokerTrainer
from ceas.config import load_config
from ceas.experiment.runner import run


def _cfg(tmp_path, *extra):
    return load_config(
        "paper",
        [
            f"run.out_dir={json.dumps(str(tmp_path))}",
            "run.rounds=6",
            "run.checkpoint_every=2",
            "training.nodes=20",
            "scheduling.participants=5",
            *extra,
        ],
    )


def test_broker_round_keeps_ledger_consistent_and_never_uses_expired_pairs(tmp_path):
    cfg = _cfg(tmp_path)
    trainer = BrokerTrainer(cfg)
    trainer.start()
    opt = trainer.make_optimizer()
    theta = trainer.initial_parameters()
    net = trainer.state.network
    for t in range(5):
        theta = trainer.run_round(t, theta, opt).theta
        c = net.counters()
        assert np.all(c.residual == 0)  # generated = consumed + expired + evicted + held
    # pairs delivered for payload were used within their cutoff: fidelity at use >= F_min
    v = net.view()
    held_fid = v.fidelity[v.occupied]
    assert np.all(held_fid >= cfg.network.memory.f_min - 1e-12)


def test_metrics_are_complete_and_sane(tmp_path):
    result = run(_cfg(tmp_path), progress=False)
    for row in result.metrics:
        assert 0.0 <= row["utilisation"] <= 1.0
        assert row["participants"] == 5
        assert row["accepted"] <= row["participants"]
        assert row["fidelity_at_use"] >= load_config("paper").network.memory.f_min - 1e-9
    assert (result.run_dir / "metrics.parquet").exists()
    assert (result.run_dir / "network.png").stat().st_size > 0


def test_broker_run_resumes_identically(tmp_path):
    full = run(_cfg(tmp_path, "run.name=full"), progress=False).metrics
    part = _cfg(tmp_path, "run.name=part")
    short = part.model_copy(update={"run": part.run.model_copy(update={"rounds": 4})})
    # stop after 4 rounds (checkpoint at 4), then resume the 6-round run from that checkpoint
    run(short, progress=False)
    from ceas.experiment import store

    arrays, meta = store.load_checkpoint(tmp_path / "part" / "checkpoint.npz")
    meta["config_digest"] = part.digest()
    store.save_checkpoint(tmp_path / "part" / "checkpoint.npz", arrays=arrays, meta=meta)
    resumed = run(part, resume=True, progress=False).metrics
    assert resumed == full


def test_byzantine_stamp_inflation_is_capped(tmp_path):
    cfg = _cfg(tmp_path, 'security.attacks=["stamp-inflation"]', "security.byzantine_fraction=0.4")
    result = run(cfg, progress=False)
    rows = [r for r in result.metrics if r["byzantine_participants"] > 0]
    assert rows
    # capped weights: Byzantine nodes never hold more than their capped share c/|A| each
    cap = cfg.consensus.weight_cap
    for r in rows:
        assert (
            r["byzantine_weight"]
            <= r["byzantine_participants"] * cap / max(r["accepted"], 1) + 1e-9
        )


def test_forgery_and_replay_are_rejected_in_a_run(tmp_path):
    cfg = _cfg(
        tmp_path, 'security.attacks=["replay", "forgery"]', "security.byzantine_fraction=0.2"
    )
    result = run(cfg, progress=False)
    assert sum(r["rejected_injected"] for r in result.metrics) > 0


@pytest.mark.parametrize("policy", ["random", "oblivious", "greedy-fidelity"])
def test_every_policy_drives_a_run(tmp_path, policy):
    cfg = _cfg(tmp_path, f"scheduling.policy={json.dumps(policy)}", "run.rounds=3")
    result = run(cfg, progress=False)
    assert len(result.metrics) == 3


def test_rejected_injections_leave_training_untouched(tmp_path):
    """Replayed and forged messages are all rejected, so the run must equal the attack-free run exactly."""
    clean = run(_cfg(tmp_path, "run.name=clean", "security.attacks=[]"), progress=False).metrics
    attacked = run(
        _cfg(tmp_path, "run.name=attacked", 'security.attacks=["replay", "forgery"]'),
        progress=False,
    )
    keys = ("test_accuracy", "train_loss", "accepted", "utilisation")
    assert [[r[k] for k in keys] for r in attacked.metrics] == [[r[k] for k in keys] for r in clean]
    assert sum(r["rejected_injected"] for r in attacked.metrics) > 0


def test_ceas_generates_on_request_only_where_pairs_cannot_last_a_round(tmp_path):
    """Under SPEC physics every cutoff (12-240 ms) is shorter than the 1 s round: CEAS must not leave links
    generating beyond their requests, and its utilisation must beat random selection's (measured ~0.8 vs ~0.05)."""
    cfg = _cfg(tmp_path, "security.attacks=[]")
    trainer = BrokerTrainer(cfg)
    trainer.start()
    inventory, nodes = views(trainer.ctx, trainer.state, 0)
    decision = trainer.ctx.policy(inventory, nodes, np.random.default_rng(0))
    short = inventory.cutoff_s < cfg.scheduling.round_s
    assert short.all()
    assert not np.asarray(decision.generate)[short].any()
    ceas = run(cfg, progress=False).metrics[-1]["utilisation"]
    rand = run(
        _cfg(tmp_path, "security.attacks=[]", 'scheduling.policy="random"', "run.name=rand"),
        progress=False,
    ).metrics[-1]["utilisation"]
    assert ceas > 0.5 > rand
