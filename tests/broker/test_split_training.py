"""Split circuits (unitary and circuit level, SPEC §7) trained through the broker: the round's gradient against the
monolithic circuit, the QPU-QPU pairs against the analytic demand over a run's ledger, layer-wise consensus against
its definition, and the config's refusals."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from ceas.broker.configure import configure
from ceas.broker.local import local_updates
from ceas.broker.round import BrokerTrainer, round_streams
from ceas.broker.split import split_gradients
from ceas.config import load_config
from ceas.errors import ConfigError
from ceas.partitions import pair_demand

SMALL = [
    "run.rounds=3",
    "model.n_qubits=4",
    "model.n_layers=2",
    "training.nodes=8",
    "training.batch_size=4",
    "training.shots=16",
    "scheduling.participants=2",
    "consensus.aggregator=mean",
    "security.byzantine_fraction=0",
    "broker.payload=classical",
]
SCHEMES = {
    "unitary": ["partitions.scheme=unitary", "partitions.blocks=2"],
    "circuit": ["partitions.scheme=circuit", "partitions.qubits_per_qpu=2"],
}


def _dense_reference():
    """tests/partitions/partition_dense_reference.py, the independent dense density-matrix reference."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "partitions" / "partition_dense_reference.py"
    spec = importlib.util.spec_from_file_location("partition_dense_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_config(scheme: str, *extra: str):
    return load_config("paper", [*SMALL, *SCHEMES[scheme], *extra])


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_round_gradient_equals_monolithic_with_perfect_pairs_and_quiet_qpus(scheme):
    """Through the broker's own phases (policy, network, replicas, minibatches, shots): with the round's pairs made
    perfect and no node noise, every QPU's reply is its block of the monolithic circuit's S-shot gradient on its
    replica's minibatch, drawn with the same shots."""
    cfg = small_config(scheme, "noise.depolarizing_max=0", "noise.readout_error=0")
    trainer = BrokerTrainer(cfg)
    trainer.start()
    ctx, state = trainer.ctx, trainer.state
    theta = trainer.initial_parameters()
    rng, adversary_rng = round_streams(cfg.run.seed, 0)
    plan = configure(ctx, state, 0, rng)
    assert plan.replicas.size == cfg.scheduling.participants
    assert np.all(plan.circuit.werner < 1)  # the network's pairs are noisy ...
    perfect = dataclasses.replace(plan.circuit, werner=np.ones_like(plan.circuit.werner))
    plan = dataclasses.replace(plan, circuit=perfect)  # ... made perfect here
    mirror = copy.deepcopy(rng)
    replies = local_updates(ctx, state, plan, theta, rng, adversary_rng)

    leads = ctx.replicas.members[plan.replicas, 0]
    batches = ctx.learner.minibatches(leads, mirror)
    model = ctx.learner.model
    thetas = np.broadcast_to(theta, (leads.size, theta.size))
    x, y = ctx.learner.data.x_train[batches], ctx.learner.y_train[batches]
    loss, grad = model.loss_and_grad(thetas, x, y, shots=cfg.training.shots, rng=mirror)
    row = np.searchsorted(plan.replicas, ctx.replicas.replica(plan.participants))
    want = np.where(ctx.replicas.mask(plan.participants), np.clip(grad[row], -1, 1), 0.0)
    np.testing.assert_allclose(replies.updates, want, atol=1e-10, rtol=0)
    np.testing.assert_allclose(replies.losses, loss[row], atol=1e-10, rtol=0)
    assert np.abs(want).max() > 1e-3


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_exact_gradient_equals_monolithic_adjoint(scheme):
    """Exact expectations, perfect pairs, no node noise: the replica gradient is the monolithic adjoint gradient."""
    cfg = small_config(scheme)
    trainer = BrokerTrainer(cfg)
    ctx = trainer.ctx
    rng = np.random.default_rng(3)
    theta = rng.uniform(0, 2 * np.pi, (2, ctx.n_params))
    idx = rng.choice(ctx.learner.data.x_train.shape[0], (2, 5))
    x, y = ctx.learner.data.x_train[idx], ctx.learner.data.y_train[idx]
    got = split_gradients(ctx.scheme, ctx.learner.model, theta, x, y, 1.0, None, None, rng)
    loss, grad = ctx.learner.model.loss_and_grad(theta, x, y)
    np.testing.assert_allclose(got.grad, grad, atol=1e-10, rtol=0)
    np.testing.assert_allclose(got.loss, loss, atol=1e-10, rtol=0)
    assert np.all(got.variance == 0)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_pairs_consumed_equal_the_analytic_demand_over_a_run(scheme, tmp_path):
    cfg = small_config(scheme, "run.rounds=4")
    trainer = BrokerTrainer(cfg)
    theta, opt = trainer.initial_parameters(), trainer.make_optimizer()
    rows = []
    for t in range(cfg.run.rounds):
        result = trainer.run_round(t, theta, opt)
        theta = result.theta
        rows.append(result.metrics)
    demand = pair_demand(
        trainer.ctx.scheme, samples=cfg.training.batch_size, shots=cfg.training.shots
    )
    assert demand.total > 0
    for row in rows:
        assert row["circuit_pairs"] == row["replicas"] * demand.total
        assert row["circuit_runs"] == row["replicas"] * demand.runs
        assert row["circuit_pairs_generated"] >= 2 * row["circuit_pairs"]  # two link pairs per swap
        assert row["round_time_s"] >= row["circuit_time_s"] > 0
        assert 0.25 < row["circuit_fidelity"] < 1
    totals = trainer.state.totals
    assert totals["circuit_pairs"] == sum(r["replicas"] for r in rows) * demand.total
    assert totals["circuit_runs"] == sum(r["replicas"] for r in rows) * demand.runs


def test_layer_wise_consensus_reduces_each_block_among_its_replicas():
    """Block i of the update is the round's rule applied to QPU i's replies, on block i's parameters only; a rejected
    reply takes no part; weights and acceptance are assembled per reply."""
    from ceas.broker.aggregate import _by_block
    from ceas.broker.transport import Transport

    cfg = small_config("unitary", "scheduling.participants=3")
    trainer = BrokerTrainer(cfg)
    trainer.start()
    ctx, state = trainer.ctx, trainer.state
    part = np.array([0, 1, 2, 3, 6, 7])  # replicas 0, 1, 3 (QPUs 0 and 1 each)
    received = np.random.default_rng(0).normal(0, 0.1, (part.size, ctx.n_params))
    plan = type("Plan", (), {"participants": part})()
    delivered = Transport(
        received=received, accepted=np.ones(part.size, bool), reasons={}, sent=part.size,
        injected=0, injected_accepted=0,
    )  # fmt: skip
    accepted = np.array([True, True, True, True, False, True])
    agg = _by_block(ctx, state, plan, delivered, np.ones(part.size), accepted)
    owner = ctx.scheme.parameter_owner
    for qpu, rows in ((0, [0, 2, 4]), (1, [1, 3, 5])):
        cols = owner == qpu
        want = ctx.aggregation.aggregate(received[rows][:, cols], np.ones(3), accepted=accepted[rows])
        np.testing.assert_allclose(agg.update[cols], want.update, atol=1e-15)
        np.testing.assert_allclose(agg.weights[rows], want.weights, atol=1e-15)
    assert agg.weights[4] == 0 and not agg.accepted[4]
    assert np.isclose(agg.weights[[1, 3, 5]].sum(), 1.0) and np.isclose(agg.weights[[0, 2]].sum(), 1.0)


@pytest.mark.parametrize(
    "override, field",
    [
        (["partitions.scheme=unitary", "training.shots=none"], "training.shots"),
        (["partitions.scheme=unitary", "broker.payload=quantum"], "broker.payload"),
        (["partitions.scheme=unitary", "training.nodes=9"], "training.nodes"),
        (["partitions.scheme=unitary", "scheduling.participants=5"], "scheduling.participants"),
        (["partitions.scheme=unitary", "partitions.qubits_per_qpu=1"], "partitions.qubits_per_qpu"),
        (["partitions.scheme=circuit", "partitions.blocks=3"], "partitions.blocks"),
        (["partitions.blocks=3"], "partitions.blocks"),
        (["partitions.scheme=unitary", "broker.enabled=false"], "broker.enabled"),
        (["partitions.scheme=circuit", "partitions.qubits_per_qpu=1", "training.nodes=6"], "training.nodes"),
    ],
)
def test_split_settings_are_checked(override, field):
    base = [s for s in SMALL if not s.startswith(("broker.", "security."))]
    base += ["broker.payload=classical", "security.byzantine_fraction=0"]
    if "broker.payload=quantum" in override:
        base.remove("broker.payload=classical")
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config("paper", [*base, *override])


def test_split_configs_validate_and_data_level_digest_is_unchanged():
    paper = load_config("paper")
    split = load_config("paper", [*SMALL, *SCHEMES["circuit"]])
    assert split.partitions.scheme == "circuit"
    # a default [partitions] section is not part of the digest (stored grid results keep their keys)
    assert paper.digest() == load_config("paper", ["partitions.scheme=data"]).digest()


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_noisy_round_gradient_equals_the_dense_reference(scheme):
    """The pairs a broker round delivered (a different mean visibility for every pair slot): the replica's exact loss
    and gradient equal those built from an independent dense density-matrix simulation of the split circuit (its
    own Kraus maps, parameter shift on its expectations, the same loss)."""
    ref = _dense_reference()
    cfg = small_config(scheme)
    trainer = BrokerTrainer(cfg)
    trainer.start()
    ctx, state = trainer.ctx, trainer.state
    rng, _ = round_streams(cfg.run.seed, 0)
    plan = configure(ctx, state, 0, rng)
    w = plan.circuit.werner  # (R, *pair_shape)
    assert np.ptp(w) > 0 and w.max() < 1
    r, spec = w.shape[0], ctx.learner.spec
    theta = np.random.default_rng(1).uniform(0, 2 * np.pi, (r, ctx.n_params))
    idx = np.random.default_rng(2).choice(ctx.learner.data.x_train.shape[0], (r, 3))
    x, y = ctx.learner.data.x_train[idx], ctx.learner.data.y_train[idx]
    got = split_gradients(ctx.scheme, ctx.learner.model, theta, x, y, w, None, None, rng)

    kw = {"n": spec.n_qubits, "n_layers": spec.n_layers, "entangler": spec.entangler,
          "reupload": spec.reupload, "n_classes": spec.n_classes}  # fmt: skip
    if scheme == "unitary":
        run = lambda th, xs, ws: ref.unitary_level(th, xs, ws, blocks=ctx.scheme.blocks, **kw)
    else:
        run = lambda th, xs, ws: ref.circuit_level(th, xs, ws, qubits_per_qpu=2, **kw)
    shifts = np.concatenate([np.zeros((1, ctx.n_params)), np.pi / 2 * np.eye(ctx.n_params),
                             -np.pi / 2 * np.eye(ctx.n_params)])  # fmt: skip
    e_all = np.array([[[run(theta[k] + s, x[k, b], w[k]) for b in range(3)] for s in shifts]
                      for k in range(r)])  # fmt: skip  # (R, 2P+1, B, O)
    p = ctx.n_params
    e, jac = e_all[:, 0], np.moveaxis((e_all[:, 1 : 1 + p] - e_all[:, 1 + p :]) / 2, 1, 3)
    loss = ctx.learner.model.loss.value(e, y).mean(axis=1)
    grad = np.einsum("rbo,rbop->rp", ctx.learner.model.loss.derivative(e, y) / 3, jac)
    np.testing.assert_allclose(got.loss, loss, atol=1e-10, rtol=0)
    np.testing.assert_allclose(got.grad, grad, atol=1e-10, rtol=0)
    monolithic = ctx.learner.model.loss_and_grad(theta, x, y)[1]
    assert np.abs(grad - monolithic).max() > 1e-3  # the pairs' noise is visible


def test_a_scrambling_qpu_corrupts_its_whole_replica():
    """Attack surface "state": at the unitary level a Byzantine first QPU that fully depolarises its block forwards
    the maximally mixed state, so its replica's expectations and every block's gradient vanish (the honest second
    QPU computes, and honestly reports, a gradient of nothing); at the circuit level its qubits are scrambled every
    layer and the replica's gradient moves far from the clean one."""
    from ceas.partitions.noise import PlacementNoise
    from ceas.security.attacks import make_attack

    attack = make_attack("scramble-state")
    for scheme in ("unitary", "circuit"):
        ctx = BrokerTrainer(small_config(scheme)).ctx
        rng = np.random.default_rng(4)
        theta = rng.uniform(0, 2 * np.pi, (1, ctx.n_params))
        idx = rng.choice(ctx.learner.data.x_train.shape[0], (1, 4))
        x, y = ctx.learner.data.x_train[idx], ctx.learner.data.y_train[idx]
        clean = split_gradients(ctx.scheme, ctx.learner.model, theta, x, y, 0.95, None, None, rng)
        p = np.zeros((1, 2))
        p[0, 0] = attack.depolarise(np.zeros(1))[0]
        noise = PlacementNoise(depolarizing=p)
        bad = split_gradients(ctx.scheme, ctx.learner.model, theta, x, y, 0.95, noise, None, rng)
        if scheme == "unitary":
            assert np.abs(bad.grad).max() < 1e-12
        else:
            assert np.linalg.norm(bad.grad - clean.grad) > 0.3 * np.linalg.norm(clean.grad)
        assert np.abs(clean.grad).max() > 1e-2


def test_scramble_state_runs_through_the_broker_only_with_a_split_circuit():
    cfg = small_config("unitary", 'security.attacks=["scramble-state"]', "security.byzantine_fraction=0.2",
                       "scheduling.participants=4")  # fmt: skip
    trainer = BrokerTrainer(cfg)
    theta, opt = trainer.initial_parameters(), trainer.make_optimizer()
    row = trainer.run_round(0, theta, opt).metrics
    assert row["byzantine_participants"] >= 1 and np.isfinite(row["train_loss"])
    with pytest.raises(ConfigError, match="security.attacks: 'scramble-state' is not allowed"):
        load_config("paper", ['security.attacks=["scramble-state"]'])


def test_a_split_run_resumes_identically(tmp_path):
    """Stop a split-circuit run (trajectories, a scrambling Byzantine QPU) after 2 rounds and resume it: the metrics
    equal those of the unbroken run (every draw comes from the round's streams)."""
    import json as _json

    from ceas.experiment import store
    from ceas.experiment.runner import run

    extra = ["run.rounds=4", "run.checkpoint_every=2", f"run.out_dir={_json.dumps(str(tmp_path))}",
             "partitions.simulator=trajectory", "partitions.trajectories=4", 'security.attacks=["scramble-state"]',
             "security.byzantine_fraction=0.2", "scheduling.participants=3"]  # fmt: skip
    full = run(small_config("circuit", *extra, "run.name=full"), progress=False, plots=False).metrics
    part = small_config("circuit", *extra, "run.name=part")
    short = part.model_copy(update={"run": part.run.model_copy(update={"rounds": 2})})
    run(short, progress=False, plots=False)
    arrays, meta = store.load_checkpoint(tmp_path / "part" / store.CHECKPOINT)
    meta["config_digest"] = part.digest()
    store.save_checkpoint(tmp_path / "part" / store.CHECKPOINT, arrays=arrays, meta=meta)
    resumed = run(part, resume=True, progress=False, plots=False).metrics
    assert _json.dumps(resumed, sort_keys=True) == _json.dumps(full, sort_keys=True)  # NaN-aware equality
    assert all(r["replicas"] > 0 for r in full)
