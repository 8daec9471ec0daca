"""Plugins written outside the package, loaded with ``--plugin`` or an entry point, run through the CLI."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import textwrap

import numpy as np
import pytest

from ceas import plugins
from ceas.cli import main

PLUGIN = textwrap.dedent(
    '''
    """Six plugins of a user's own, one per kind."""
    import dataclasses

    import numpy as np
    from pydantic import BaseModel, Field

    from ceas.consensus import register_aggregator
    from ceas.network.topology import register_topology, star_topology
    from ceas.partitions import register_scheme
    from ceas.partitions.data_level import DataLevel
    from ceas.partitions.noise import PlacementNoise
    from ceas.qnn.circuit import Entangler, register_entangler
    from ceas.scheduling import make_policy, register_policy
    from ceas.security import register_attack


    @register_aggregator
    class ShrunkMidrange:
        name = "shrunk-midrange"

        class Params(BaseModel):
            shrink: float = Field(1.0, gt=0, le=1, description="factor applied to the midrange")

        def __init__(self, shrink=1.0):
            self.shrink = shrink

        def __call__(self, updates, weights=None):
            x = np.asarray(updates, float)
            return self.shrink * 0.5 * (x.min(axis=0) + x.max(axis=0))


    @register_attack
    class Constant:
        name = "constant"
        surface = "gradient"

        class Params(BaseModel):
            value: float = Field(0.0, description="every coordinate of every Byzantine update")

        def __init__(self, value=0.0):
            self.value = value

        def __call__(self, honest, f, rng):
            return np.full((f, np.asarray(honest).shape[1]), self.value)

        @classmethod
        def from_params(cls, params, **context):
            return cls(params.value)


    @register_policy("rotating")
    class Rotating:
        name = "rotating"

        class Params(BaseModel):
            shift: int = Field(0, ge=0, description="rounds the round-robin pointer is ahead")

        def __init__(self, params, shift=0, **context):
            self.params, self.shift = params, shift
            self.inner = make_policy("oblivious", params)

        def __call__(self, inventory, nodes, rng):
            return self.inner(inventory, dataclasses.replace(nodes, round=nodes.round + self.shift), rng)


    def uniform_star(params, rng, length_km=10.0):
        graph = star_topology(params, rng)
        for u, v in graph.edges:
            graph.edges[u, v]["length_km"] = length_km
        return graph


    class _UniformStarParams(BaseModel):
        length_km: float = Field(10.0, gt=0, le=1000, description="every fibre's length")


    uniform_star.Params = _UniformStarParams
    register_topology("uniform-star")(uniform_star)
    register_entangler(Entangler("reverse-ring", lambda n: tuple((i, (i - 1) % n) for i in range(n - 1, -1, -1)) if n > 1 else (), "first"))


    @register_scheme("data-copy")
    class DataCopy(DataLevel):
        name = "data-copy"

        class Params(BaseModel):
            copies: int = Field(1, ge=1, le=8, description="replicas of the circuit")

        @classmethod
        def from_params(cls, params, spec, copies=1):
            scheme = cls(spec)
            scheme.copies = copies
            return scheme


    @register_scheme("two-halves")
    class TwoHalves(DataLevel):
        """A toy split: two QPUs, the first holding the first half of the parameters; no pairs between them (each
        runs the whole circuit under the first QPU's noise)."""

        name = "two-halves"
        n_qpus = 2

        def __init__(self, spec):
            super().__init__(spec)
            self.parameter_owner = (np.arange(spec.n_params) >= spec.n_params // 2).astype(int)

        @classmethod
        def from_params(cls, params, spec):
            return cls(spec)

        def _first(self, noise):
            return None if noise is None else PlacementNoise(noise.depolarizing[:, :1], noise.readout_error[:, :1])

        def shifted_expvals(self, theta, x, werner=1.0, *, noise=None, rng=None):
            return super().shifted_expvals(theta, x, werner, noise=self._first(noise), rng=rng)

        def contraction(self, noise):
            return super().contraction(self._first(noise))
    '''
)

TINY = ["run.rounds=2", "training.nodes=6", "scheduling.participants=3", "training.batch_size=4",
        "training.shots=16", "model.n_qubits=2", "model.n_layers=1"]  # fmt: skip


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """``myplugins`` on sys.path; every registry and the loaded-plugin list restored afterwards."""
    from ceas.consensus import AGGREGATORS
    from ceas.network.topology import TOPOLOGY_BUILDERS
    from ceas.partitions import SCHEMES
    from ceas.qnn.circuit import ENTANGLERS
    from ceas.scheduling.registry import POLICIES
    from ceas.security.attacks import ATTACKS

    (tmp_path / "myplugins.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    registries = (AGGREGATORS, ATTACKS, POLICIES, TOPOLOGY_BUILDERS, ENTANGLERS, SCHEMES)
    for r in registries:
        r.names()  # built-ins loaded before the snapshot
    saved = [dict(r) for r in registries]
    loaded = list(plugins._LOADED)
    yield tmp_path
    for r, before in zip(registries, saved):
        r.clear()
        r.update(before)
    plugins._LOADED[:] = loaded
    sys.modules.pop("myplugins", None)


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_each_kind_of_plugin_runs_through_the_cli(plugin_module, capsys):
    out_dir = plugin_module / "runs"
    argv = [
        "run",
        "paper",
        "-q",
        "--plugin",
        "myplugins",
        "--set",
        f'run.out_dir="{out_dir}"',
        "--set",
        "run.name=p",
    ]
    for item in [*TINY,
                 "consensus.aggregator=shrunk-midrange", "consensus.aggregator_params.shrink=0.5",
                 'security.attacks=["constant"]', "security.attack_params.constant.value=0.25",
                 "scheduling.policy=rotating", "scheduling.policy_params.shift=2",
                 "network.topology.kind=uniform-star", "network.topology.kind_params.length_km=12.5",
                 "model.entangler=reverse-ring"]:  # fmt: skip
        argv += ["--set", item]
    code, _out, err = _cli(capsys, *argv)
    assert code == 0, err
    summary = json.loads((out_dir / "p" / "summary.json").read_text())
    assert summary["plugins"] == ["myplugins"]
    assert len(summary["code_version"]) == 64 and summary["rounds"] == 2
    config = (out_dir / "p" / "config.toml").read_text()
    assert "[network.topology.kind_params]\nlength_km = 12.5" in config
    assert "[security.attack_params.constant]\nvalue = 0.25" in config

    # the plugins' hyperparameters act: the built objects carry them
    from ceas.broker.round import BrokerTrainer
    from ceas.config import load_config

    cfg = load_config(str(out_dir / "p" / "config.toml"))
    trainer = BrokerTrainer(cfg)
    trainer.start()
    ctx = trainer.ctx
    assert ctx.aggregation.rule.shrink == 0.5
    assert ctx.adversary.attacks[0].value == 0.25 and ctx.policy.shift == 2
    assert np.allclose(
        [d["length_km"] for *_, d in trainer.state.network.graph.edges(data=True)], 12.5
    )
    assert ctx.learner.spec.entangler == "reverse-ring"


def test_a_partition_scheme_plugin_registers_and_validates(plugin_module, capsys):
    code, _, err = _cli(capsys, "validate", "quick", "--plugin", "myplugins")
    assert code == 0, err
    from ceas.partitions import PartitionParams, scheme_from_params
    from ceas.qnn.circuit import CircuitSpec

    scheme = scheme_from_params(
        PartitionParams(scheme="data-copy", scheme_params={"copies": 3}), CircuitSpec(2, 1)
    )
    assert scheme.copies == 3
    with pytest.raises(
        ValueError,
        match=r"partitions.scheme_params.copies: 9 is not allowed; allowed: integer in \[1, 8\]",
    ):
        PartitionParams(scheme="data-copy", scheme_params={"copies": 9})


def test_a_partition_scheme_plugin_trains_through_the_broker(plugin_module, capsys):
    """A split scheme written outside the package (two QPUs per replica, one block each) trains end to end: the
    broker groups the nodes into its replicas and reduces each block among its replicas."""
    out_dir = plugin_module / "runs"
    argv = ["run", "paper", "-q", "--plugin", "myplugins", "--set", f'run.out_dir="{out_dir}"',
            "--set", "run.name=halves"]  # fmt: skip
    for item in [*TINY, "run.rounds=3", "scheduling.participants=2", "partitions.scheme=two-halves",
                 "broker.payload=classical", "security.byzantine_fraction=0"]:  # fmt: skip
        argv += ["--set", item]
    code, _out, err = _cli(capsys, *argv)
    assert code == 0, err
    from ceas.experiment import store

    rows = store.read_metrics(out_dir / "halves" / store.METRICS)
    assert [r["replicas"] for r in rows] == [2, 2, 2] and [r["participants"] for r in rows] == [4, 4, 4]
    assert all(r["circuit_pairs"] == 0 and np.isfinite(r["train_loss"]) and r["grad_norm"] > 0 for r in rows)


def test_plugin_hyperparameters_are_checked_in_the_config_style(plugin_module, capsys):
    cases = [
        (["consensus.aggregator=shrunk-midrange", "consensus.aggregator_params.shrink=2"],
         "consensus.aggregator_params.shrink: 2 is not allowed; allowed: float in (0, 1]"),
        (["consensus.aggregator=shrunk-midrange", "consensus.aggregator_params.shrnk=0.5"],
         "consensus.aggregator_params.shrnk: unknown key; aggregator 'shrunk-midrange' takes hyperparameters: shrink"),
        (["network.topology.kind=uniform-str"],
         "network.topology.kind: topology 'uniform-str' is unknown (did you mean 'uniform-star'?)"),
    ]  # fmt: skip
    for overrides, expected in cases:
        argv = ["validate", "paper", "--plugin", "myplugins"]
        for item in overrides:
            argv += ["--set", item]
        code, _, err = _cli(capsys, *argv)
        assert (
            code == 2
            and err.strip().splitlines() == [f"ceas: error: {expected}"]
            or expected in err
        ), err


def test_without_the_plugin_its_names_are_unknown_and_a_bad_module_is_one_line(capsys):
    code, _, err = _cli(
        capsys, "validate", "paper", "--set", "consensus.aggregator=shrunk-midrange"
    )
    assert code == 2 and "aggregator 'shrunk-midrange' is unknown" in err
    code, _, err = _cli(capsys, "validate", "paper", "--plugin", "no_such_module_xyz")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--plugin 'no_such_module_xyz' cannot be imported: ModuleNotFoundError" in err


def test_entry_point_plugins_load_for_every_command(plugin_module, monkeypatch, capsys):
    ep = importlib.metadata.EntryPoint(name="mine", value="myplugins", group="ceas.plugins")

    def entry_points(**kwargs):
        return [ep] if kwargs.get("group") == "ceas.plugins" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    code, _, err = _cli(
        capsys, "validate", "paper", "--set", "consensus.aggregator=shrunk-midrange"
    )
    assert code == 0, err
    assert "myplugins" in plugins.loaded()


def test_a_finished_run_is_reused_only_for_the_same_code_and_plugins(tmp_path):
    from ceas.config import load_config
    from ceas.experiment.reproduce import run_many

    cfg = load_config("paper", [*TINY, f'run.out_dir="{tmp_path}"', "run.name=r"])
    summary = tmp_path / "r" / "summary.json"
    first = run_many([cfg], workers=1, progress=False)
    stamp = summary.stat().st_mtime_ns
    again = run_many([cfg], workers=1, progress=False)
    assert (
        summary.stat().st_mtime_ns == stamp and again[0]["metrics"] == first[0]["metrics"]
    )  # reused
    record = json.loads(summary.read_text())
    record["code_version"] = "0" * 64  # as if made by other code
    summary.write_text(json.dumps(record))
    run_many([cfg], workers=1, progress=False)
    assert json.loads(summary.read_text())["code_version"] == plugins.code_version(plugins.loaded())
