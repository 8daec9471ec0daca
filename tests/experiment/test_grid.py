"""Grids (issue 14): backends never change a number, failures are retried then named, kills and code changes are safe.

The Ray tests start small Ray instances on localhost (1-2 CPUs) and stop them; they skip when the ``ray`` extra is
not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import ceas
from ceas.cli import main
from ceas.experiment import dataset
from ceas.experiment.grid import Cell, GridError, run_grid
from ceas.experiment.reproduce import plan

TINY = ["run.rounds=3", "training.nodes=12", "scheduling.participants=4"]
SRC = Path(ceas.__file__).resolve().parents[1]


def tiny_cells(out: Path, n: int = 3, extra: list[str] | None = None) -> list[Cell]:
    """The first ``n`` cells of a one-seed quick reproduce, made tiny."""
    return plan("paper", quick=True, seeds=1, out=out, overrides=[*TINY, *(extra or [])])[:n]


def same_metrics(a: list[dict], b: list[dict]) -> bool:
    """Bit-for-bit equality of per-round metrics (NaN equals NaN)."""
    if len(a) != len(b) or (a and a[0].keys() != b[0].keys()):
        return False
    for key in a[0] if a else []:
        x = np.array([r[key] for r in a], dtype=float)
        y = np.array([r[key] for r in b], dtype=float)
        if not np.array_equal(x, y, equal_nan=True):
            return False
    return True


def same_dataset(a: Path, b: Path, names: list[str]) -> bool:
    ca = dataset.read_cells(a / dataset.DATASET, names)
    cb = dataset.read_cells(b / dataset.DATASET, names)
    return all(
        x["params"] == y["params"] and same_metrics(x["metrics"], y["metrics"])
        for x, y in zip(ca, cb)
    )


def test_local_grid_writes_one_dataset_with_parameters_as_columns(tmp_path):
    cells = tiny_cells(tmp_path, n=2)
    run = run_grid(cells, out=tmp_path, workers=2, progress=False)
    assert (run.ran, run.reused) == (2, 0)
    cols, rows = dataset.query(
        tmp_path, "SELECT scenario, seed, count(*), max(round) FROM results GROUP BY ALL ORDER BY 1"
    )
    assert cols[:2] == ["scenario", "seed"]
    assert rows == [("ceas", 0, 3, 2), ("random-fedavg", 0, 3, 2)]
    # the dataset holds what the runs measured, bit for bit
    for cell, res in zip(cells, run.results):
        [back] = dataset.read_cells(tmp_path / dataset.DATASET, [cell.name])
        assert same_metrics(back["metrics"], res["metrics"])
    # a re-planned grid with fewer cells: the dataset follows it (no stale partitions)
    run = run_grid(cells[:1], out=tmp_path, workers=1, progress=False)
    assert run.reused == 1
    assert dataset.query(tmp_path, "SELECT DISTINCT cell FROM results")[1] == [(cells[0].name,)]


def test_results_query_cli_answers_sql_and_names_bad_input(tmp_path, capsys):
    run_grid(tiny_cells(tmp_path, n=1), out=tmp_path, workers=1, progress=False)
    sql = "SELECT scenario, count(*) AS n FROM results GROUP BY scenario"
    assert main(["results", "query", str(tmp_path), sql, "--format", "csv"]) == 0
    assert capsys.readouterr().out == "scenario,n\nceas,3\n"
    assert main(["results", "query", str(tmp_path / "dataset"), sql, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"scenario": "ceas", "n": 3}
    for argv, needle in (
        ([str(tmp_path), "SELECT nope FROM results"], "query failed"),
        ([str(tmp_path / "nothing"), sql], "holds no grid dataset"),
        ([str(tmp_path), sql, "--format", "xml"], "--format: 'xml'"),
    ):
        assert main(["results", "query", *argv]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1


FAILING_PLUGIN = textwrap.dedent(
    '''
    """An aggregator that counts its constructions (one per attempt of a run) in a file and always fails."""
    import os

    from pydantic import BaseModel

    from ceas.consensus import register_aggregator


    @register_aggregator
    class AlwaysFails:
        name = "always-fails"

        class Params(BaseModel):
            pass

        def __init__(self):
            with open(os.environ["CEAS_TEST_ATTEMPTS"], "a") as fh:
                fh.write("attempt\\n")

        def __call__(self, updates, weights=None):
            raise RuntimeError("boom")
    '''
)


def test_a_failing_cell_is_retried_then_reported_and_the_rest_completes(
    tmp_path, monkeypatch, capsys
):
    from ceas import plugins

    monkeypatch.setattr(plugins, "_LOADED", list(plugins._LOADED))  # unloaded again after the test
    (tmp_path / "failplug.py").write_text(FAILING_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    attempts = tmp_path / "attempts.txt"
    monkeypatch.setenv("CEAS_TEST_ATTEMPTS", str(attempts))
    plugins.activate(["failplug"])
    from ceas.config import load_config
    from ceas.experiment.reproduce import QUICK

    cells = tiny_cells(tmp_path / "grid", n=2)
    bad = Cell(
        load_config("paper", [*QUICK, *TINY, "broker.enabled=true", 'consensus.aggregator="always-fails"',
                              'run.name="failing-s0"', f"run.out_dir={json.dumps(str(tmp_path / 'grid'))}"]),
        {"scenario": "failing", "seed": 0},
    )  # fmt: skip
    with pytest.raises(GridError) as info:
        run_grid([cells[0], bad, cells[1]], out=tmp_path / "grid", workers=2, retries=2,
                 progress=False)  # fmt: skip
    msg = str(info.value)
    assert "1 of 3 grid cells failed" in msg
    assert "failing-s0: RuntimeError: boom (after 3 attempts)" in msg
    assert attempts.read_text().count("attempt") == 3  # tried, then retried twice
    assert "RuntimeError: boom" in (tmp_path / "grid" / "failures" / "failing-s0.txt").read_text()
    names = [c.name for c in cells]
    assert sorted(dataset.query(tmp_path / "grid", "SELECT DISTINCT cell FROM results")[1]) == [
        (n,) for n in sorted(names)
    ]
    manifest = json.loads((tmp_path / "grid" / "dataset" / "_grid.json").read_text())
    assert [f["name"] for f in manifest["last_run"]["failed"]] == [bad.name]


def _cli_env(src: Path, *extra: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (src, *extra))
    return env


SWEEP = ["sweep", "--quick", "--vary", "security.byzantine_fraction=0,0.25", "--scenarios", "ceas",
         "--seeds", "2", "--workers", "1", "--quiet", "--set", "run.rounds=6", "--set", "training.nodes=12",
         "--set", "scheduling.participants=4", "--set", "run.checkpoint_every=1"]  # fmt: skip


def _grid_line(argv: list[str], env: dict[str, str]) -> str:
    """Run a grid command; its summary line ("N cells: ... reused, ... resumed, ... run")."""
    done = subprocess.run(argv, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return next(x for x in done.stdout.splitlines() if " cells: " in x)


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_a_grid_killed_midway_reruns_only_its_unfinished_cells_with_identical_results(
    tmp_path, capsys
):
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ceas.cli", *SWEEP, "--out", str(out)],
        env=_cli_env(SRC), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            workers |= set(_children(proc.pid))
            done = list(out.glob("*/summary.json"))
            started = [
                p for p in out.glob("*/checkpoint.npz") if not (p.parent / "summary.json").exists()
            ]
            if done and started:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the grid ended before it could be killed"
        workers |= set(_children(proc.pid))
        os.kill(proc.pid, signal.SIGKILL)  # the grid's process only, as `kill -9 <pid>` would
        proc.wait(30)
        deadline = time.monotonic() + 30
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(w) for w in workers), "a pool worker outlived the killed grid"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    finished = {p.parent.name for p in out.glob("*/summary.json")}
    resumable = {p.parent.name for p in out.glob("*/checkpoint.npz")} - finished
    assert 1 <= len(finished) < 4 and resumable
    stamps = {n: (out / n / "metrics.parquet").stat().st_mtime_ns for n in finished}
    # rerun as a fresh command, as a user would (this test process may hold plugins other tests loaded)
    line = _grid_line([sys.executable, "-m", "ceas.cli", *SWEEP, "--out", str(out)], _cli_env(SRC))
    rest = 4 - len(finished) - len(resumable)
    assert line.startswith(f"4 cells: {len(finished)} reused, {len(resumable)} resumed, {rest} run")
    assert {n: (out / n / "metrics.parquet").stat().st_mtime_ns for n in finished} == stamps
    whole = [sys.executable, "-m", "ceas.cli", *SWEEP, "--out", str(tmp_path / "whole")]
    assert _grid_line(whole, _cli_env(SRC)).startswith("4 cells: 0 reused, 0 resumed, 4 run")
    names = json.loads((out / "dataset" / "_grid.json").read_text())["cells"]
    assert same_dataset(out, tmp_path / "whole", names)
    assert (out / "results.json").read_text() == (tmp_path / "whole" / "results.json").read_text()


PLUGIN = "from ceas.consensus import register_aggregator\n\nVALUE = 1\n"


def test_a_one_line_code_or_plugin_change_reruns_the_cells_without_fresh(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(SRC / "ceas", src / "ceas", ignore=shutil.ignore_patterns("__pycache__"))
    plugdir = tmp_path / "plug"
    plugdir.mkdir()
    (plugdir / "myplug.py").write_text(PLUGIN)
    out = tmp_path / "grid"
    argv = [sys.executable, "-m", "ceas.cli", *SWEEP, "--out", str(out), "--plugin", "myplug"]

    def grid() -> str:
        return _grid_line(argv, _cli_env(src, plugdir))

    assert grid().startswith("4 cells: 0 reused, 0 resumed, 4 run")
    first = dataset.read_cells(
        out / dataset.DATASET, json.loads((out / "dataset" / "_grid.json").read_text())["cells"]
    )
    assert grid().startswith("4 cells: 4 reused")
    target = src / "ceas" / "experiment" / "plots.py"
    text = target.read_text()
    target.write_text(text + "\n_EDITED = True\n")  # one line of the package changes
    assert grid().startswith("4 cells: 0 reused, 0 resumed, 4 run")
    (plugdir / "myplug.py").write_text(
        PLUGIN.replace("VALUE = 1", "VALUE = 2")
    )  # one line of the plugin
    assert grid().startswith("4 cells: 0 reused, 0 resumed, 4 run")
    assert grid().startswith("4 cells: 4 reused")
    again = dataset.read_cells(out / dataset.DATASET, [c["name"] for c in first])
    assert all(same_metrics(a["metrics"], b["metrics"]) for a, b in zip(first, again))


# -- Ray ------------------------------------------------------------------------------------------------------


@pytest.fixture
def no_test_plugins(monkeypatch):
    """Ray workers import the driver's plugin modules; those of other tests live in their own tmp folders."""
    from ceas import plugins

    monkeypatch.setattr(plugins, "_LOADED", [])


def test_ray_backend_with_two_local_cpus_is_bit_identical_to_the_local_pool(
    tmp_path, no_test_plugins
):
    pytest.importorskip("ray")
    local = run_grid(
        tiny_cells(tmp_path / "local", n=3), out=tmp_path / "local", workers=2, progress=False
    )
    remote = run_grid(tiny_cells(tmp_path / "ray", n=3), out=tmp_path / "ray", backend="ray", workers=2,
                      progress=False)  # fmt: skip
    assert remote.ran == 3 and remote.backend == "ray"
    # the time spent starting and stopping the instance is told apart from the cells' time
    assert 0 < remote.backend_s < remote.wall_s
    assert f"of which {remote.backend_s:.1f} s starting and stopping the backend" in remote.line()
    import ray

    assert not ray.is_initialized()  # the grid stopped the instance it started
    names = [r["name"] for r in local.results]
    assert same_dataset(tmp_path / "local", tmp_path / "ray", names)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_two_process_ray_cluster_on_localhost_gives_the_same_results(tmp_path, no_test_plugins):
    ray = pytest.importorskip("ray")
    cli = Path(sys.executable).with_name("ray")
    if not cli.exists():
        pytest.skip("the ray command is not installed beside this Python")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    env = _cli_env(SRC)
    # `ray start --head` turns token authentication on when ~/.ray/auth_token exists (any local ray.init writes
    # it), a driver given an address does not unless RAY_AUTH_MODE says so: start the cluster in the mode this
    # process's driver is in (token once an earlier local instance of this process switched it on), whatever order
    # the tests run in
    env.setdefault("RAY_AUTH_MODE", "disabled")
    common = ["--num-cpus=1", "--block", "--disable-usage-stats"]
    procs = []
    try:
        procs.append(subprocess.Popen(
            [str(cli), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
             "--include-dashboard=false", *common],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait for the head's GCS port
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        procs.append(subprocess.Popen(
            [str(cli), "start", f"--address={address}", "--node-ip-address=127.0.0.1", *common],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))  # fmt: skip
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
        try:
            while time.monotonic() < deadline and ray.cluster_resources().get("CPU", 0) < 2:
                time.sleep(0.5)
            assert ray.cluster_resources().get("CPU", 0) == 2
            assert sum(n["Alive"] for n in ray.nodes()) == 2
            remote = run_grid(tiny_cells(tmp_path / "ray", n=3), out=tmp_path / "ray", backend="ray",
                              address=address, progress=False)  # fmt: skip
        finally:
            ray.shutdown()
        assert remote.ran == 3
        local = run_grid(tiny_cells(tmp_path / "local", n=3), out=tmp_path / "local", workers=1,
                         progress=False)  # fmt: skip
        assert same_dataset(
            tmp_path / "local", tmp_path / "ray", [r["name"] for r in local.results]
        )
    finally:
        for p in reversed(procs):  # the worker node, then the head: each with everything it started
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(30)
        # `ray start --head` noted this cluster as the machine's current one; it is gone (what `ray stop` does)
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.exists() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()


def test_the_polars_snippet_of_docs_scaling_runs_on_a_grid_dataset(tmp_path, capsys):
    pl = pytest.importorskip("polars")
    text = (SRC.parent / "docs" / "scaling.md").read_text()
    snippet = text.split("```python\n")[1].split("```")[0]
    run_grid(tiny_cells(tmp_path, n=2), out=tmp_path, workers=1, progress=False)
    exec(snippet.replace("runs/reproduce-quick", str(tmp_path)), {"pl": pl})  # noqa: S102 - our own doc
    assert "random-fedavg" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--backend", "ray", "--address", "127.0.0.1:1"], "no Ray cluster answers there"),
        (["--backend", "ray", "--address", "nonsense"], "is not an address"),
        (["--address", "auto"], "not allowed with --backend local"),
        (["--backend", "spark"], "'spark' is not a backend"),
    ],
)
def test_bad_backend_choices_are_one_line_errors_before_any_cell(tmp_path, capsys, argv, needle):
    if "ray" in argv:
        pytest.importorskip("ray")
    assert main(["reproduce", "--quick", "--quiet", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*/summary.json"))


def test_a_driver_refused_for_want_of_a_ray_token_is_told_how_to_send_one():
    from ceas.experiment.backends import _init_failure

    refused = RuntimeError("Failed to connect to GCS. Last connection error: ray.exceptions.AuthenticationError: "
                           "RPC error: InvalidAuthToken: Authentication token is missing or incorrect")  # fmt: skip
    try:
        try:
            raise refused
        except RuntimeError as inner:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.5:6379") from inner
    except ConnectionError as exc:
        told = _init_failure("10.0.0.5:6379", exc)
        other = _init_failure("10.0.0.5:6379", ConnectionError("Failed to connect to Ray cluster"))
    assert "RAY_AUTH_MODE=token" in told and "\n" not in told
    assert "cannot start or join Ray: ConnectionError: Failed to connect" in other
    assert "RAY_AUTH_MODE" not in other
