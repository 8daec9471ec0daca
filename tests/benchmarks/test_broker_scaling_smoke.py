"""Smoke test of benchmarks/broker_scaling.py: a tiny run writes the JSON with every phase, and the phases add up."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "broker_scaling.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("broker_scaling", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_broker_scaling_small_run_writes_phases_that_fit_in_the_round(tmp_path, capsys):
    bench = _load_script()
    out = tmp_path / "broker_scaling.json"
    argv = ["--nodes", "12", "--rounds", "2", "--warmup", "1", "--participants", "preset"]
    result = bench.main([*argv, "--out", str(out)])
    data = json.loads(out.read_text())
    assert data["configs"] == json.loads(json.dumps(result["configs"]))
    assert {"cpu_count", "python", "numpy", "load_average_at_start"} <= set(data["machine"])
    assert data["peak_rss_mib"] > 0 and data["total_wall_s"] > 0
    (config,) = data["configs"]
    assert config["nodes"] == 12 and config["participants"] == 10  # the paper preset's participants
    phases = config["phases"]
    for name in ("round", "scheduling", "network", "learning", "other", "evaluation"):
        assert len(phases[name]["per_round_ms"]) == 2, name
        assert phases[name]["median_ms"] >= 0.0 and phases[name]["mean_ms"] >= 0.0, name
    for name in ("scheduling", "network", "learning"):  # every wrapped phase really ran
        assert min(phases[name]["per_round_ms"]) > 0.0, name
    slack_ms = 0.5
    for i, round_ms in enumerate(phases["round"]["per_round_ms"]):
        parts = sum(phases[k]["per_round_ms"][i] for k in ("scheduling", "network", "learning"))
        assert parts <= round_ms + slack_ms
        assert (
            phases["evaluation"]["per_round_ms"][i] <= phases["other"]["per_round_ms"][i] + slack_ms
        )
    assert 0.0 < config["share_scheduling_network"] < 1.0
    assert "| 12 | 10 |" in capsys.readouterr().out  # the markdown table is printed


def test_participants_option_resolves_preset_share_and_number():
    bench = _load_script()
    assert bench.participants_for("preset", 1000, 10) == 10
    assert bench.participants_for("20%", 1000, 10) == 200
    assert bench.participants_for("20%", 3, 10) == 1
    assert bench.participants_for("7", 1000, 10) == 7


def test_shared_samples_gives_every_node_a_sample_of_the_unchanged_data_and_is_undone():
    import ceas.broker.learning as trainer_module

    bench = _load_script()
    original = trainer_module.partition
    y = np.arange(426) % 2
    record: dict = {}
    with bench.shared_samples(1000, record):
        shards = trainer_module.partition(y, 1000, np.random.default_rng(0))
    assert trainer_module.partition is original
    assert record == {"training_samples": 426, "training_copies": 3}
    assert len(shards) == 1000 and all(s.size >= 1 for s in shards)
    every = np.concatenate(shards)
    assert every.min() >= 0 and every.max() < 426
    assert np.unique(every).size == 426  # every sample is used
    with bench.shared_samples(50, record):  # enough samples: the partition is the original one
        plain = trainer_module.partition(y, 50, np.random.default_rng(0))
    expected = original(y, 50, np.random.default_rng(0))
    assert record["training_copies"] == 1
    assert all((a == b).all() for a, b in zip(plain, expected))
