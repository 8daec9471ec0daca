"""``value-iteration`` through the broker: a reduced instance of the live network, refused where too large."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from ceas.broker.configure import views
from ceas.broker.round import BrokerTrainer
from ceas.config import load_config
from ceas.errors import ConfigError
from ceas.scheduling.finite import FiniteMDP
from ceas.scheduling.mdp import MDPSpec
from ceas.scheduling.params import SchedulingParams
from ceas.scheduling.policies.value_iteration import EXACT_MAX_STATES, ValueIterationPolicy
from ceas.scheduling.views import InventoryView, NodeView


def _cfg(tmp_path, *extra):
    return load_config(
        "paper",
        [
            f"run.out_dir={json.dumps(str(tmp_path))}",
            "run.rounds=4",
            "training.nodes=3",
            "scheduling.participants=2",
            "scheduling.policy=value-iteration",
            "network.memory.slots=2",
            "scheduling.age_bins=2",
            "security.byzantine_fraction=0.0",
            *extra,
        ],
    )


@pytest.mark.parametrize(
    "extra",
    [(), ("network.memory.coherence_min_s=5", "network.memory.coherence_max_s=20")],
    ids=["use-at-herald", "stored-pairs"],
)
def test_a_tiny_configuration_trains_under_value_iteration(tmp_path, extra):
    cfg = _cfg(tmp_path, *extra)
    trainer = BrokerTrainer(cfg)
    assert isinstance(trainer.ctx.policy, ValueIterationPolicy) and trainer.ctx.policy.live
    trainer.start()
    opt, theta = trainer.make_optimizer(), trainer.initial_parameters()
    for t in range(cfg.run.rounds):
        result = trainer.run_round(t, theta, opt)
        theta = result.theta
        row = result.metrics
        assert (
            row["participants"] == 2
        )  # the optimum seats the full budget: every served node earns utility
        assert row["accepted"] == 2
        assert np.all(trainer.state.network.counters().residual == 0)
    assert trainer.ctx.policy.model.result.residual < cfg.scheduling.vi_tolerance


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ("training.nodes=50", "scheduling.participants=10"),
            (
                r"training.nodes: 50 is not allowed with scheduling.policy = 'value-iteration'; allowed: integer "
                r"in \[1, 4\]"
            ),
        ),
        (("network.memory.slots=20",), r"network.memory.slots: 20 is not allowed .* \[1, 4\]"),
        (
            ("training.nodes=4", "network.memory.slots=4", "scheduling.age_bins=4"),
            (
                rf"4 nodes x 70 memory states each \(24010000 joint states\); allowed: at most "
                rf"{EXACT_MAX_STATES} joint states"
            ),
        ),
    ],
    ids=["nodes", "slots", "joint-states"],
)
def test_too_large_instances_are_refused_at_validation_naming_the_bound(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message) as err:
        _cfg(tmp_path, *extra)
    assert "\n" not in str(err.value).strip()


def test_live_states_are_clipped_into_the_instance():
    spec = MDPSpec(
        f0=[0.95, 0.95],
        t_coh_s=[5.0, 5.0],
        slots=[2, 2],
        arrivals=[0.8, 0.8],
        trust=[1.0, 1.0],
        phi=[1.0, 1.0],
        ready_prob=[1.0, 1.0],
        tag_steps=0,
        key_levels=0,
        key_init=0,
        params=SchedulingParams(participants=1, age_bins=2),
    )
    policy = ValueIterationPolicy(spec.params, model=FiniteMDP(spec), live=True)
    # link 0: three pairs (aged 0.2, 1.5 and 7 s) in two slots and two bins; link 1: none
    inventory = InventoryView(
        link_node=[0, 1],
        f0=[0.95, 0.95],
        t_coh_s=[5.0, 5.0],
        cutoff_s=[10.0, 10.0],
        rate_hz=[0.8, 0.8],
        slots=[2, 2],
        key_bits=[4096.0, 4096.0],
        pair_id=[0, 1, 2],
        pair_link=[0, 0, 0],
        pair_age_s=[7.0, 1.5, 0.2],
        pair_fidelity=[0.5, 0.8, 0.9],
    )
    nodes = NodeView(
        ready=[True, True],
        trust=[1.0, 1.0],
        phi=[1.0, 1.0],
        phi_visibility=[1.0, 1.0],
        payload_pairs=[3, 3],
        verification_pairs=[0, 0],
        tag_bits=[128.0, 128.0],
    )
    state, bins = policy._state(inventory, nodes)
    assert bins.tolist() == [1, 1, 0]  # 7 s is past the last bin: counted in it
    assert state.counts.tolist() == [[1, 1], [0, 0]]  # the youngest two fit the two slots
    assert state.key.tolist() == [0, 0]  # pools above the (empty) key grid read as full
    decision = policy(inventory, nodes, np.random.default_rng(0))
    k = int(decision.participants[0])
    stored = int(np.isin(decision.payload, [0, 1, 2]).sum()) if k == 0 else 0
    assert decision.requests[k, 0] == 3 - stored  # the rest of the node's live demand, fresh


def test_the_reduced_instance_is_read_off_the_channels(tmp_path):
    G = nx.Graph()
    G.add_nodes_from(["a", "c"], role="qpu")
    G.add_node("r", role="repeater")
    G.add_node("b", role="broker")
    G.add_edge("a", "r", length_km=10.0)
    G.add_edge("r", "b", length_km=12.0)
    G.add_edge("c", "b", length_km=8.0)
    nx.write_graphml(G, tmp_path / "chain.graphml")
    cfg = _cfg(
        tmp_path,
        "training.nodes=2",
        "network.topology.kind=graphml",
        f"network.topology.graphml_path={json.dumps(str(tmp_path / 'chain.graphml'))}",
    )
    trainer = BrokerTrainer(cfg)
    ch, spec = trainer.ctx.channels, trainer.ctx.policy.model.spec
    assert ch.n_hops.tolist() == [2, 1]
    assert np.array_equal(spec.t_coh_s, ch.t_coh_s)
    assert np.allclose(spec.rate_hz, ch.rate_hz)
    trainer.start()
    inventory, _ = views(trainer.ctx, trainer.state, 0)
    assert np.array_equal(inventory.f0, ch.f0) and inventory.n_links == spec.n_links == 2
    opt, theta = trainer.make_optimizer(), trainer.initial_parameters()
    for t in range(3):
        theta = trainer.run_round(t, theta, opt).theta
        assert np.all(trainer.state.network.counters().residual == 0)
