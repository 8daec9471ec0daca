"""`ceas reproduce`: every scenario runs, results are summarised, a second call reuses finished runs."""

from __future__ import annotations

import json

from ceas.cli import main
from ceas.experiment.reproduce import SCENARIOS, _mean_ci


def test_reproduce_quick_tiny(tmp_path, capsys):
    argv = ["reproduce", "--quick", "--seeds", "1", "--workers", "1", "--quiet", "--out", str(tmp_path),
            "--set", "run.rounds=3", "--set", "training.nodes=12", "--set", "scheduling.participants=4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| ceas |" in out and "random-fedavg" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["scenarios"]) == set(SCENARIOS)
    assert (tmp_path / "accuracy.png").stat().st_size > 0
    mtime = (tmp_path / "ceas-s0" / "metrics.parquet").stat().st_mtime
    assert main(argv) == 0  # finished runs are reused, not recomputed
    assert (tmp_path / "ceas-s0" / "metrics.parquet").stat().st_mtime == mtime


def test_mean_ci_matches_t_interval():
    m, h = _mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert abs(h - 4.302652729911275 * 1.0 / 3**0.5) < 1e-9  # t_{0.975, 2} * s / sqrt(n), s = 1
    assert _mean_ci([5.0]) == (5.0, 0.0)
