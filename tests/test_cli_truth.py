"""The command line tells the truth about how a run ended (issue 12, item 7).

Each bad input of the issue's list is one line on stderr, exit status 2, no traceback and no half-written file;
Ctrl-C exits 130 with one line and leaves a checkpoint from which the resumed run is byte-identical to an unbroken one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ceas.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden temporaries included) with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _quick(tmp_path: Path, name: str, *extra: str) -> list[str]:
    return [
        "run",
        "quick",
        "--quiet",
        "--set",
        f"run.out_dir={json.dumps(str(tmp_path))}",
        "--set",
        f"run.name={name}",
        *extra,
    ]


def test_a_key_under_a_plain_value_is_one_line(capsys):
    code, _, err = run_cli(capsys, "validate", "quick", "--set", "network.link.preset.x=1")
    line = assert_one_line(err)
    assert code == 2
    assert "network.link.preset is a value, not a section" in line
    assert "'paper'" in line  # names what the value may be


def test_a_truncated_checkpoint_is_one_line_and_nothing_is_written(tmp_path, capsys):
    code, _, _ = run_cli(capsys, *_quick(tmp_path, "cut", "--set", "run.rounds=2"))
    assert code == 0
    ckpt = tmp_path / "cut" / "checkpoint.npz"
    ckpt.write_bytes(ckpt.read_bytes()[:300])
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, *_quick(tmp_path, "cut", "--set", "run.rounds=3", "--resume"))
    line = assert_one_line(err)
    assert code == 2
    assert "is unreadable" in line and "--overwrite" in line
    assert snapshot(tmp_path) == before  # no config rewritten, no temporary left behind


def test_a_checkpoint_without_its_parameters_is_one_line(tmp_path, capsys):
    import numpy as np

    code, _, _ = run_cli(capsys, *_quick(tmp_path, "empty", "--set", "run.rounds=2"))
    assert code == 0
    ckpt = tmp_path / "empty" / "checkpoint.npz"
    with open(ckpt, "wb") as fh:
        np.savez(fh, __meta__=np.frombuffer(b"[1, 2]", dtype=np.uint8))
    code, _, err = run_cli(capsys, *_quick(tmp_path, "empty", "--set", "run.rounds=2", "--resume"))
    assert code == 2 and "is unreadable" in assert_one_line(err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_a_fifo_as_the_config_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    # in a subprocess, so a regression hangs that process (and fails on the timeout), not the test session
    done = subprocess.run(
        [sys.executable, "-m", "ceas.cli", "validate", str(fifo)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "is not a regular file" in assert_one_line(done.stderr)


def test_after_a_kill_before_the_first_checkpoint_the_advice_agrees(tmp_path, capsys):
    """A run killed before its first checkpoint leaves only its config snapshot: --resume says to run without it,
    and the plain run then starts (it does not send the user back to --resume)."""
    folder = tmp_path / "early"
    folder.mkdir()
    (folder / "config.toml").write_text("# snapshot of a run killed in round 0\n")
    code, _, err = run_cli(capsys, *_quick(tmp_path, "early", "--set", "run.rounds=2", "--resume"))
    line = assert_one_line(err)
    assert code == 2
    assert "without --resume" in line
    code, _, err = run_cli(capsys, *_quick(tmp_path, "early", "--set", "run.rounds=2"))
    assert code == 0, err
    assert (folder / "checkpoint.npz").exists()


def test_run_name_escaping_its_folder_names_the_allowed_characters(capsys):
    for name in ("../escape", ".."):
        code, _, err = run_cli(capsys, "validate", "quick", "--set", f"run.name={name}")
        line = assert_one_line(err)
        assert code == 2
        assert line.startswith("ceas: error: run.name:")
        assert "A-Z a-z 0-9 '_' '.' '-'" in line, line


def test_too_many_nodes_is_blamed_on_the_field_the_user_set(capsys):
    code, _, err = run_cli(capsys, "validate", "quick", "--set", "training.nodes=10000000")
    line = assert_one_line(err)
    assert code == 2
    assert line.startswith("ceas: error: training.nodes: 10000000 is not allowed")
    assert "n_nodes" not in line


def _ceas(*args: str, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "ceas.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ctrl_c_exits_130_with_one_line_and_the_resumed_run_is_byte_identical(tmp_path):
    rounds = (
        400  # the quick configuration runs ~100 rounds/s: long enough to be interrupted mid-run
    )
    extra = ("--set", f"run.rounds={rounds}", "--set", "run.checkpoint_every=50")
    ref = _ceas(*_quick(tmp_path, "reference", *extra), cwd=tmp_path)
    assert ref.wait(timeout=600) == 0, ref.stderr.read()

    victim = _ceas(*_quick(tmp_path, "victim", *extra), cwd=tmp_path)
    config = tmp_path / "victim" / "config.toml"  # written just before the first round
    deadline = time.time() + 120
    while not config.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.01)
    time.sleep(0.3)
    assert victim.poll() is None, "the run ended before it could be interrupted"
    victim.send_signal(signal.SIGINT)
    _, err = victim.communicate(timeout=120)
    assert victim.returncode == 130, err
    line = assert_one_line(err)
    assert line.startswith("ceas: interrupted after round ") and "--resume" in line
    stopped_at = int(line.split("after round ")[1].split(" ")[0])
    assert 0 < stopped_at < rounds
    folder = tmp_path / "victim"
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]

    resumed = _ceas(*_quick(tmp_path, "victim", *extra, "--resume"), cwd=tmp_path)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["resumed_from_round"] == stopped_at
    want = (tmp_path / "reference" / "metrics.parquet").read_bytes()
    assert (folder / "metrics.parquet").read_bytes() == want
