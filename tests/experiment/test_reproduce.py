"""`ceas reproduce`: every scenario runs, results are summarised, a second call reuses finished runs."""

from __future__ import annotations

import json

from ceas.cli import main
from ceas.experiment.reproduce import SCENARIOS, _mean_ci


def test_reproduce_quick_tiny(tmp_path, capsys):
    argv = [
        "reproduce",
        "--quick",
        "--seeds",
        "1",
        "--workers",
        "1",
        "--quiet",
        "--out",
        str(tmp_path),
        "--set",
        "run.rounds=3",
        "--set",
        "training.nodes=12",
        "--set",
        "scheduling.participants=4",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| ceas |" in out and "random-fedavg" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["scenarios"]) == set(SCENARIOS)
    assert (tmp_path / "accuracy.png").stat().st_size > 0
    # a grid draws its figure once; its runs draw none of their own (ceas plot <run> draws one on request)
    assert not list(tmp_path.glob("*-s0/*.png"))
    mtime = (tmp_path / "ceas-s0" / "metrics.parquet").stat().st_mtime
    assert main(argv) == 0  # finished runs are reused, not recomputed
    assert (tmp_path / "ceas-s0" / "metrics.parquet").stat().st_mtime == mtime


def test_mean_ci_matches_t_interval():
    m, h = _mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert abs(h - 4.302652729911275 * 1.0 / 3**0.5) < 1e-9  # t_{0.975, 2} * s / sqrt(n), s = 1
    assert _mean_ci([5.0]) == (5.0, 0.0)


def test_a_checkpoint_from_another_config_is_replaced_not_resumed(tmp_path, capsys):
    from ceas.config import load_config
    from ceas.experiment.grid import run_cell as _run_one

    def cfg(rounds, lr):
        return load_config(
            "quick",
            [
                f"run.rounds={rounds}",
                "run.checkpoint_every=1",
                f"training.lr={lr}",
                'run.name="a"',
                f"run.out_dir={json.dumps(str(tmp_path))}",
                "training.nodes=12",
                "scheduling.participants=4",
            ],
        )

    first = _run_one(cfg(2, 0.05))
    (tmp_path / "a" / "summary.json").unlink()  # as if killed after its last checkpoint
    other = _run_one(cfg(3, 0.01))  # a different config in the same folder: runs from scratch
    assert len(other["metrics"]) == 3 and len(first["metrics"]) == 2
    assert (
        other["metrics"][0]["train_loss"] == first["metrics"][0]["train_loss"]
    )  # same seed, round 0
    assert (
        other["metrics"][1]["grad_norm"] != first["metrics"][1]["grad_norm"]
    )  # other lr from round 1


def test_paired_differences_by_seed_hand_checked():
    """CEAS − B per seed on the mean accuracy of the last 10 % of rounds (10 rounds -> the last one)."""
    from ceas.experiment.reproduce import paired

    def run(name, seed, acc):
        return {"name": f"{name}-s{seed}", "metrics": [{"test_accuracy": 0.0}] * 9 + [{"test_accuracy": acc}]}

    rows = [run("ceas", 0, 0.90), run("ceas", 1, 0.80), run("ceas", 2, 0.85)]
    rows += [run("base", 0, 0.70), run("base", 1, 0.85), run("base", 2, 0.75)]
    d = paired(rows)["base"]
    # differences 20, -5, 10 points: mean 8.333, s = sqrt(475/3) = 12.583, t_{0.975,2} = 4.3027 -> half-width 31.26
    assert d["seeds"] == 3 and abs(d["diff_points"] - 25 / 3) < 1e-9
    assert abs(d["ci95_points"] - 4.302652729911275 * (475 / 3) ** 0.5 / 3**0.5) < 1e-6
    assert d["worst_seed"] == 1 and abs(d["worst_seed_points"] + 5) < 1e-9
    assert "ceas" not in paired(rows)


def test_defence_scenarios_differ_from_ceas_only_in_scheduling():
    """ceas-no-scheduling (random) and ceas-defences-oblivious keep every other setting of ceas; random-on-demand is
    random-fedavg with on-demand generation."""
    from ceas.config import load_config

    def cfg(name):
        return load_config("paper", SCENARIOS[name]).model_dump()

    ceas = cfg("ceas")
    for name, policy in (("ceas-no-scheduling", "random"), ("ceas-defences-oblivious", "oblivious")):
        other = cfg(name)
        assert other["scheduling"].pop("policy") == policy
        ceas_sched = dict(ceas["scheduling"])
        assert ceas_sched.pop("policy") == "ceas"
        assert other["scheduling"] == ceas_sched
        assert {k: v for k, v in other.items() if k != "scheduling"} == {
            k: v for k, v in ceas.items() if k != "scheduling"
        }
    on_demand, fedavg = cfg("random-on-demand"), cfg("random-fedavg")
    assert on_demand["scheduling"].pop("policy_params") == {"generation": "on-demand"}
    fedavg["scheduling"].pop("policy_params")
    assert on_demand == fedavg
