"""`ceas map` (issue 11, item 2): storage presets where pairs outlive a round; the map's plan, summary and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ceas.cli import main
from ceas.config import load_config
from ceas.errors import ConfigError
from ceas.experiment.regime_map import MAP_ATTACKS, MAP_SCENARIOS, cell_physics, plan_map, storage_probe

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "run.rounds=2",
    "training.nodes=12",
    "scheduling.participants=4",
    "run.checkpoint_every=100",
]


@pytest.mark.parametrize("name", ["storage-nv", "storage-ion"])
def test_storage_presets_load_and_give_the_mdp_more_than_one_age_bin(name):
    cfg = load_config(str(ROOT / "configs" / f"{name}.toml"))
    assert cfg.broker.enabled and cfg.network.link.preset == name.split("-")[1]
    assert cfg.network.memory.coherence_min_s >= 10.0 and cfg.scheduling.round_s == 5.0
    ph = cell_physics(cfg)
    assert ph["age_bins_max"] >= 2  # a stored pair can outlive a round
    assert (
        ph["supply_over_demand"] < 1.0
    )  # and supply binds: a round heralds less than a participant needs


def test_paper_physics_has_one_age_bin():
    ph = cell_physics(load_config("paper"))
    assert ph["age_bins_max"] == 1 and ph["demand_pairs"] == 128 + 16


def test_plan_map_places_every_run_and_varies_only_the_axes(tmp_path):
    key, values, cells = plan_map(
        "paper", x="network.link.eta0=0.1,0.5", y=[0.5, 50], seeds=2, out=tmp_path, overrides=TINY
    )
    assert key == "network.link.eta0" and values == ["0.1", "0.5"]
    assert len(cells) == 2 * 2 * len(MAP_ATTACKS) * len(MAP_SCENARIOS) * 2
    assert len({c.name for c in cells}) == len(cells)
    c = next(c for c in cells if c.name == "defences-oblivious-adaptive-x1-y1-s1")
    assert c.params == {"scenario": "defences-oblivious", "attack": "adaptive", "seed": 1, "x_index": 1,
                        "y_index": 1, "network.link.eta0": 0.5, "coherence_over_round": 50.0}  # fmt: skip
    cfg = c.config
    assert cfg.network.link.eta0 == 0.5 and cfg.network.memory.coherence_min_s == 50.0
    assert cfg.network.memory.coherence_max_s == 50.0 and cfg.scheduling.policy == "oblivious"
    assert cfg.security.attacks == ("adaptive",) and cfg.consensus.aggregator == "trimmed-mean"
    twin = next(c for c in cells if c.name == "ceas-adaptive-x1-y1-s1").config
    # the paired runs differ in the scheduling policy (and the run name) only
    a, b = cfg.model_dump(), twin.model_dump()
    a["run"]["name"] = b["run"]["name"] = ""
    a["scheduling"]["policy"] = b["scheduling"]["policy"] = ""
    assert a == b
    none = next(c for c in cells if c.params["attack"] == "none").config
    assert none.security.byzantine_fraction == 0.0 and none.security.attacks == ()


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"attacks": ["nope"]}, "attack setting 'nope'"),
        ({"y": [0.0, 5]}, "coherence ratios"),
        ({"y": [5, 5]}, "appears twice"),
        ({"seeds": 0}, "seeds"),
        ({"x": "eta0=1"}, "section.key"),
    ],
)
def test_bad_maps_fail_before_anything_runs(tmp_path, kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        plan_map("paper", out=tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_tiny_map_writes_paired_differences_and_heatmaps(tmp_path, capsys):
    argv = ["map", "--quick", "--x", "network.link.eta0=0.1,0.5", "--y", "0.5,50", "--attacks", "none",
            "--seeds", "2", "--workers", "1", "--quiet", "--out", str(tmp_path)]  # fmt: skip
    for item in TINY:
        argv += ["--set", item]
    assert main(argv) == 0
    assert "CEAS − oblivious (points)" in capsys.readouterr().out
    res = json.loads((tmp_path / "results.json").read_text())
    assert (
        res["attacks"] == ["none"]
        and res["seeds"] == 2
        and res["coherence_over_round"] == [0.5, 50.0]
    )
    grid = res["table"]["none"]
    assert len(grid) == 2 and all(len(row) == 2 for row in grid)
    for j, row in enumerate(grid):
        for cell in row:
            d = cell["paired_difference"]
            assert len(d["per_seed"]) == 2 and d["worst"] == min(d["per_seed"])
            assert abs(d["mean"] - sum(d["per_seed"]) / 2) < 1e-12
            assert set(cell["scenarios"]) == set(MAP_SCENARIOS)
            assert 0.0 <= cell["scenarios"]["ceas"]["utilisation"][0] <= 1.0
            assert (cell["physics"]["age_bins_max"] >= 2) == (j == 1)
    for png in ("accuracy.png", "utilisation.png"):
        assert (tmp_path / png).stat().st_size > 0
    # a second call reuses every run
    assert main(argv) == 0
    again = json.loads((tmp_path / "results.json").read_text())
    assert "16 cells: 16 reused" in again["grid"] and again["table"] == res["table"]


def test_bad_coherence_axis_is_a_one_line_error(tmp_path, capsys):
    assert main(["map", "--quick", "--y", "a,b", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--y" in err and len(err.strip().splitlines()) == 1


def test_storage_probe_counts_stored_pairs_spent():
    cfg = load_config(str(ROOT / "configs" / "storage-ion.toml"), TINY + ["run.rounds=6"])
    r = storage_probe(cfg)
    assert (
        r["rounds"] == 6
        and 0.0 <= r["payload_share_aged_one_round"] <= r["payload_share_stored"] <= 1.0
    )
    assert r["stored_payload_pairs"] + r["fresh_payload_pairs_requested"] > 0
    assert r["physics"]["age_bins_max"] >= 2


def _rows(acc: float, n: int = 10) -> list[dict]:
    row = {
        "test_accuracy": acc,
        "utilisation": 0.5,
        "fidelity_at_use": 0.95,
        "accepted": 3,
        "pairs_held": 7,
    }
    return [dict(row, round=t) for t in range(n)]


@pytest.mark.parametrize(
    "ceas,oblivious,beyond",
    [([0.9, 0.8, 0.85], [0.85, 0.75, 0.80], True), ([0.9, 0.7, 0.85], [0.85, 0.75, 0.80], False)],
)
def test_summary_pairs_seeds_and_flags_differences_beyond_their_interval(
    tmp_path, ceas, oblivious, beyond
):
    from ceas.experiment.regime_map import summarise_map

    key, values, cells = plan_map("paper", x="network.link.eta0=0.5", y=[5.0], attacks=["none"], seeds=3,
                                  out=tmp_path, overrides=TINY)  # fmt: skip
    acc = {"ceas": ceas, "defences-oblivious": oblivious}
    results = [{"metrics": _rows(acc[c.params["scenario"]][c.params["seed"]])} for c in cells]
    res = summarise_map(results, cells, key, values, [5.0])
    d = res["table"]["none"][0][0]["paired_difference"]
    diffs = [a - b for a, b in zip(ceas, oblivious)]
    assert d["per_seed"] == pytest.approx(diffs) and d["worst"] == pytest.approx(min(diffs))
    assert d["worst_seed"] == int(min(range(3), key=lambda k: diffs[k]))
    assert d["beyond_interval"] is beyond
    assert res["table"]["none"][0][0]["physics"]["age_bins_max"] == 2
