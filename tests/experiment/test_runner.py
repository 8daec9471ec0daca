"""End-to-end data-level training: accuracy, determinism, every result file, kill-and-resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ceas.config import load_config
from ceas.experiment import store
from ceas.experiment.runner import run


def _cfg(tmp_path, *extra):
    return load_config("quick", [f"run.out_dir={json.dumps(str(tmp_path))}", *extra])


def test_quick_run_writes_every_file_and_is_deterministic(tmp_path):
    cfg = _cfg(tmp_path, "run.rounds=6", "run.checkpoint_every=4")
    first = run(cfg, progress=False)
    for name in (
        "config.toml",
        "metrics.parquet",
        "summary.json",
        "accuracy.png",
        "checkpoint.npz",
    ):
        assert (first.run_dir / name).stat().st_size > 0, name
    assert load_config(str(first.run_dir / "config.toml")) == cfg
    rows = store.read_metrics(first.run_dir / "metrics.parquet")
    assert [r["round"] for r in rows] == list(range(6))
    second = run(
        cfg.model_copy(update={"run": cfg.run.model_copy(update={"name": "again"})}), progress=False
    )
    assert second.metrics == first.metrics


def test_existing_run_folder_is_not_overwritten_silently(tmp_path):
    cfg = _cfg(tmp_path, "run.rounds=2")
    run(cfg, progress=False)
    from ceas.errors import ResumeError

    with pytest.raises(ResumeError, match="already holds a run"):
        run(cfg, progress=False)
    with pytest.raises(ResumeError, match="different configuration"):
        run(
            cfg.model_copy(update={"training": cfg.training.model_copy(update={"lr": 0.01})}),
            resume=True,
            progress=False,
        )


@pytest.mark.slow
def test_default_task_reaches_85_percent_exact_noiseless_iid(tmp_path):
    """Exact gradients, no noise, IID shards: the default task must reach >= 85 % test accuracy."""
    cfg = _cfg(
        tmp_path,
        "run.rounds=60",
        "noise.depolarizing_max=0",
        "training.shots=none",
        "data.partition=iid",
    )
    result = run(cfg, progress=False)
    assert result.summary["final_test_accuracy"] >= 0.85, result.summary


def _ceas(*args: str, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "ceas.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigkill_then_resume_gives_identical_metrics(tmp_path):
    """Train in a subprocess, SIGKILL it at a random point after its first checkpoint, resume, compare."""
    common = [
        "run",
        "quick",
        "--quiet",
        "--set",
        "run.rounds=24",
        "--set",
        "run.checkpoint_every=3",
        "--set",
        "training.shots=128",
        "--set",
        f"run.out_dir={json.dumps(str(tmp_path))}",
    ]
    ref = _ceas(*common, "--set", "run.name=reference", cwd=tmp_path)
    assert ref.wait(timeout=300) == 0, ref.stderr.read().decode()

    victim = _ceas(*common, "--set", "run.name=victim", cwd=tmp_path)
    ckpt = tmp_path / "victim" / "checkpoint.npz"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.01)
    time.sleep(
        float(np.random.default_rng().uniform(0.0, 0.5))
    )  # random point after the first checkpoint
    if victim.poll() is None:
        victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    resumed = _ceas(*common, "--set", "run.name=victim", "--resume", cwd=tmp_path)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()

    want = store.read_metrics(tmp_path / "reference" / "metrics.parquet")
    got = store.read_metrics(tmp_path / "victim" / "metrics.parquet")
    assert len(got) == 24
    assert got == want
