"""Channels through the broker: any topology, swapping along the most reliable path, per-channel key (SPEC §4)."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from ceas.broker.channels import join_hops, serve
from ceas.broker.round import BrokerTrainer
from ceas.broker.setup import build_context, initial_state
from ceas.config import load_config
from ceas.errors import ConfigError
from ceas.network.werner import werner_at_age, werner_bell_vector
from ceas.scheduling.views import PURPOSES


def _cfg(tmp_path, *extra, nodes=12, participants=4):
    return load_config(
        "paper",
        [
            f"run.out_dir={json.dumps(str(tmp_path))}",
            "run.rounds=3",
            f"training.nodes={nodes}",
            f"scheduling.participants={participants}",
            "security.byzantine_fraction=0.25",
            *extra,
        ],
    )


def _chain(tmp_path, *, t_qpu=0.5, t_rep=0.5, extra_qpus=1) -> str:
    """GraphML: QPU a -- repeater r -- broker b (2 hops), plus ``extra_qpus`` QPUs linked to b directly."""
    G = nx.Graph()
    G.add_node("a", role="qpu", t_coh_s=t_qpu)
    G.add_node("r", role="repeater", t_coh_s=t_rep)
    G.add_node("b", role="broker")
    G.add_edge("a", "r", length_km=10.0)
    G.add_edge("r", "b", length_km=15.0)
    for i in range(extra_qpus):
        G.add_node(f"q{i}", role="qpu", t_coh_s=t_qpu)
        G.add_edge(f"q{i}", "b", length_km=5.0 + i)
    path = tmp_path / "chain.graphml"
    nx.write_graphml(G, path)
    return str(path)


def _chain_cfg(tmp_path, *extra):
    return _cfg(
        tmp_path,
        "network.topology.kind=graphml",
        f"network.topology.graphml_path={json.dumps(_chain(tmp_path))}",
        *extra,
        nodes=2,
        participants=2,
    )


def test_the_star_is_one_link_per_channel_with_the_link_physics(tmp_path):
    ctx = build_context(_cfg(tmp_path))
    state = initial_state(ctx)
    ch, table = ctx.channels, state.network.table
    assert ch.hops == tuple((k,) for k in range(12))
    assert np.array_equal(ch.link_channel, np.arange(12))
    assert not ch.multi.any()
    for name in ("f0", "t_coh_s", "cutoff_s", "rate_hz"):
        assert np.array_equal(getattr(ch, name), getattr(table, name)), name
    assert all(state.key_pools[k] is state.network.key_pools[k] for k in range(12))


def test_join_hops_multiplies_the_hop_werner_parameters_decayed_to_the_swap():
    times = [np.array([0.10, 0.20, 0.30]), np.array([0.15, 0.16, 0.45])]
    w0 = [np.array([0.9, 0.8, 0.95]), np.array([0.85, 0.9, 0.7])]
    bells = [werner_bell_vector((3 * w + 1) / 4) for w in w0]
    t_coh = np.array([0.4, 2.0])
    out = join_hops(times, bells, t_coh, f_min=0.25, swap_success=1.0, rng=None)
    t_swap = np.maximum(times[0], times[1])
    expected = (
        w0[0]
        * np.exp(-(t_swap - times[0]) / t_coh[0])
        * w0[1]
        * np.exp(-(t_swap - times[1]) / t_coh[1])
    )
    w = (4 * out.bell[:, 0] - 1) / 3
    assert np.allclose(w, expected, rtol=0, atol=1e-12)
    assert np.array_equal(out.time_s, t_swap)
    assert (out.cutoff_failures, out.swap_failures, out.unmatched) == (0, 0, 0)


def test_join_hops_counts_cutoff_failures_and_unmatched_hop_pairs():
    # hop 0's second pair waits 0.5 s for hop 1: past its cutoff T ln((F0-1/4)/(F_min-1/4)) = 0.1 * ln(0.7/0.55)
    f0 = 0.95
    times = [np.array([0.0, 0.0, 0.0]), np.array([0.001, 0.5])]
    bells = [werner_bell_vector(np.full(3, f0)), werner_bell_vector(np.full(2, f0))]
    out = join_hops(times, bells, np.array([0.1, 0.1]), f_min=0.8, swap_success=1.0, rng=None)
    assert out.cutoff_failures == 1
    assert out.unmatched == 1  # hop 0's third pair had no partner
    assert out.time_s.tolist() == [0.001]


def test_join_hops_loses_a_pair_per_failed_bell_measurement():
    n, H, p = 4000, 3, 0.8
    times = [np.zeros(n)] * H
    bells = [werner_bell_vector(np.full(n, 0.95))] * H
    out = join_hops(
        times,
        bells,
        np.ones(H),
        f_min=0.8,
        swap_success=p,
        rng=np.random.default_rng(0),
    )
    q = 1 - p ** (H - 1)
    assert abs(out.swap_failures - n * q) < 4 * np.sqrt(n * q * (1 - q))
    assert out.swap_failures + out.time_s.size == n


def _serve_chain(tmp_path, *extra, pairs=40):
    ctx = build_context(_chain_cfg(tmp_path, *extra))
    state = initial_state(ctx)
    ch, net = ctx.channels, state.network
    assert ch.n_hops.tolist() == [2, 1]
    requests = np.zeros((2, 3), np.int64)
    requests[:, PURPOSES.index("payload")] = pairs
    stream = serve(net, ch, requests, np.zeros(2, bool), 1.0, np.random.default_rng(1))
    return ctx, state, stream


def test_a_two_hop_chain_delivers_the_product_of_hop_parameters_decayed_to_the_swap(tmp_path):
    ctx, state, stream = _serve_chain(tmp_path)
    ch, table = ctx.channels, state.network.table
    got = stream.delivered["payload"]
    assert got.time_s[0].size > 0
    hops = list(ch.hops[0])
    w0 = (4 * table.f0[hops] - 1) / 3
    hop_w = (4 * got.hop_bell[0][..., 0] - 1) / 3
    assert np.allclose(hop_w, w0[None, :], atol=1e-15)  # round 0: every hop pair is fresh
    wait = got.time_s[0][:, None] - got.hop_time_s[0]
    assert np.all(wait >= 0) and np.all(
        wait.min(axis=1) == 0
    )  # swapped when the last hop pair heralded
    closed = np.prod(w0[None, :] * np.exp(-wait / table.t_coh_s[hops][None, :]), axis=1)
    assert np.allclose(got.werner(0), closed, rtol=0, atol=1e-12)
    assert np.allclose(got.werner(0), werner_at_age(w0[0], wait[:, 0], table.t_coh_s[hops[0]]) * werner_at_age(w0[1], wait[:, 1], table.t_coh_s[hops[1]]), atol=1e-12)  # fmt: skip
    # the ledger: each link pair the channel used was consumed for swapping, and every pair is accounted for
    c = state.network.counters()
    matched = stream.swapped + stream.cutoff_failures + stream.swap_failures
    assert int(c.consumed["swap"].sum()) == 2 * matched + stream.unmatched
    assert np.all(c.residual == 0)
    assert got.time_s[1].size == 40  # the single-hop channel is served as in the star


def test_swap_failures_are_counted_at_swap_success_below_one(tmp_path):
    _, _, stream = _serve_chain(tmp_path, "network.swap_success=0.5", pairs=200)
    assert stream.swap_failures > 0
    matched = stream.swapped + stream.swap_failures
    p_fail = stream.swap_failures / matched
    assert abs(p_fail - 0.5) < 4 * np.sqrt(0.25 / matched)


def test_a_graphml_file_must_hold_one_qpu_per_training_node(tmp_path):
    cfg = _cfg(
        tmp_path,
        "network.topology.kind=graphml",
        f"network.topology.graphml_path={json.dumps(_chain(tmp_path, extra_qpus=3))}",
        nodes=2,
        participants=2,
    )
    with pytest.raises(ConfigError, match="graph has 4 QPU nodes; allowed: training.nodes = 2"):
        build_context(cfg)


@pytest.mark.parametrize("kind", ["grid", "waxman", "random_geometric", "graphml"])
def test_every_topology_trains_through_the_broker_with_the_ledger_balanced(tmp_path, kind):
    # only the fields each kind reads (any other is refused at validation)
    extra = {
        "grid": [],
        "waxman": [
            "network.topology.n_repeaters=4",
            "network.topology.area_km=60",
            "network.topology.waxman_alpha=0.5",
            "network.topology.waxman_beta=0.9",
        ],
        "random_geometric": ["network.topology.n_repeaters=4", "network.topology.area_km=60"],
    }
    if kind == "graphml":
        cfg = _chain_cfg(tmp_path, "run.rounds=4")
    else:
        cfg = _cfg(tmp_path, f"network.topology.kind={kind}", *extra[kind])
    trainer = BrokerTrainer(cfg)
    trainer.start()
    assert trainer.ctx.channels.multi.any()
    opt, theta = trainer.make_optimizer(), trainer.initial_parameters()
    net = trainer.state.network
    for t in range(cfg.run.rounds):
        result = trainer.run_round(t, theta, opt)
        theta = result.theta
        c = net.counters()
        assert np.all(
            c.residual == 0
        )  # generated = consumed + expired + evicted + held, every round
        row = result.metrics
        assert 0.0 <= row["utilisation"] <= 1.0
        assert row["swapped"] >= 0 and row["cutoff_failures"] >= 0
        assert row["payload_pairs"] <= cfg.scheduling.participants * trainer.ctx.payload_pairs
    assert np.all(np.isfinite(theta))
