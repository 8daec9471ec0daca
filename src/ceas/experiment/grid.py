"""Grids of runs (reproduce, sweeps, the attack matrix): every cell once, on a local pool or a Ray cluster.

A **cell** is one run: a validated configuration (its own seed, so its own random streams) and the parameters that
place it in the grid (scenario, seed, swept value, ...). :func:`run_grid`

1. **reuses** a cell whose run folder holds a finished run of the same configuration, code version and plugin
   modules (``summary.json`` records them, :func:`ceas.plugins.provenance`); such a cell is not sent anywhere;
2. sends every other cell to the backend (:mod:`ceas.experiment.backends`) as one call of :func:`run_cell`, which
   **resumes** a killed run of the same configuration, code and plugins from its checkpoint, or runs it afresh;
3. **retries** a failed cell up to ``retries`` more times (a retry resumes from the cell's last checkpoint), then
   reports it by name and reason; the other cells complete all the same, and the grid ends with a
   :class:`GridError` that names every failed cell (tracebacks in ``<out>/failures/``), never a silent gap;
4. writes each finished cell's per-round metrics, with the cell's parameters as columns, into the grid's dataset
   (:mod:`ceas.experiment.dataset`) as soon as it finishes.

Progress shows cells done / running / failed. Numbers never depend on the backend or the number of workers: a cell
is computed from its configuration alone, wherever it runs (tested bit for bit).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ceas.config import RunConfig
from ceas.errors import CeasError, ResumeError
from ceas.experiment import dataset, store

__all__ = ["Cell", "GridError", "GridRun", "run_cell", "run_grid", "run_many"]

RETRIES = 2
"""Default extra attempts of a failed cell."""


@dataclass(frozen=True)
class Cell:
    """One run of a grid: its configuration and the parameters that place it (dataset columns)."""

    config: RunConfig
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.run.name


@dataclass(frozen=True)
class Failure:
    name: str
    reason: str
    attempts: int


@dataclass(frozen=True)
class GridRun:
    """What a grid did: per cell (in plan order) ``{"name", "status", "metrics"}``; counts by status.

    ``wall_s`` is the whole grid in seconds; ``backend_s`` the part of it spent starting (or joining) and stopping the
    backend (a local Ray instance: seconds; a process pool: a few milliseconds), so ``wall_s - backend_s`` is the
    time the cells took, data set preparation included.
    """

    results: list[dict[str, Any]]
    reused: int
    resumed: int
    ran: int
    retried: int
    backend: str
    wall_s: float
    backend_s: float = 0.0

    def line(self) -> str:
        n = len(self.results)
        return (
            f"{n} cells: {self.reused} reused, {self.resumed} resumed, {self.ran} run"
            f"{f', {self.retried} retries' if self.retried else ''} ({self.backend} backend, "
            f"{self.wall_s:.1f} s, of which {self.backend_s:.1f} s starting and stopping the backend)"
        )


class GridError(CeasError):
    """Some cells failed after their retries; the message names each with its reason."""

    def __init__(self, failures: Sequence[Failure], total: int, where: Path | None) -> None:
        self.failures = list(failures)
        lines = [
            f"{len(failures)} of {total} grid cells failed (the others finished and are kept):"
        ]
        lines += [f"  {f.name}: {f.reason} (after {f.attempts} attempts)" for f in failures]
        if where is not None:
            lines.append(
                f"  tracebacks in {where}; rerun the same command to retry only these cells"
            )
        super().__init__("\n".join(lines))


def _same_run(record: Mapping[str, Any], cfg: RunConfig, made_by: Mapping[str, Any]) -> bool:
    """A summary or checkpoint of this very config, made by this code version with these plugins."""
    return (
        record.get("config_digest") == cfg.digest()
        and record.get("code_version") == made_by["code_version"]
        and record.get("plugins") == made_by["plugins"]
    )


def finished_metrics(cfg: RunConfig, made_by: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The metrics of a finished run of ``cfg`` by the same code and plugins in its folder, else None."""
    from ceas.experiment.runner import run_dir_of

    folder = run_dir_of(cfg)
    try:
        done = json.loads((folder / store.SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    if _same_run(done, cfg, made_by) and done.get("rounds") == cfg.run.rounds:
        try:
            return store.read_metrics(folder / store.METRICS)
        except OSError:
            return None
    return None


_THREADS_SET: int | None = None


def _use_threads(threads: int) -> None:
    """Simulator and BLAS threads of this worker: its share of the cores (numbers do not depend on it)."""
    global _THREADS_SET
    if _THREADS_SET == threads:
        return
    from ceas.qnn.simulator import set_default_threads

    set_default_threads(threads)
    try:
        from threadpoolctl import threadpool_limits  # ships with scikit-learn
    except ImportError:  # pragma: no cover
        pass
    else:
        threadpool_limits(limits=threads)
    _THREADS_SET = threads


def run_cell(
    cfg: RunConfig,
    plugins: tuple[str, ...] = (),
    code_version: str | None = None,
    threads: int | None = None,
    run_plots: bool = False,
    traceback_dir: str | None = None,
) -> dict[str, Any]:
    """Run one cell where it lands (a pool worker or a Ray worker): reuse, resume or run it.

    ``code_version`` is the driver's: a worker running other code refuses the cell (its numbers would be of other
    code). A failure writes its traceback to ``traceback_dir/<cell>.txt`` and is re-raised.
    Returns ``{"name", "status" ("reused" | "resumed" | "ran"), "metrics"}``.
    """
    try:
        return _run_cell(cfg, plugins, code_version, threads, run_plots)
    except BaseException:
        if traceback_dir is not None:
            import traceback

            store.write_text_atomic(
                Path(traceback_dir) / f"{cfg.run.name}.txt", traceback.format_exc()
            )
        raise


def _run_cell(cfg, plugins, code_version, threads, run_plots) -> dict[str, Any]:
    from ceas.experiment.runner import run, run_dir_of
    from ceas.plugins import activate, provenance

    if threads is not None:
        _use_threads(threads)
    activate(plugins)  # a worker registers the plugins its config names
    made_by = provenance()
    if code_version is not None and made_by["code_version"] != code_version:
        import socket

        raise RuntimeError(
            f"worker on {socket.gethostname()} runs other code (code version {made_by['code_version'][:12]}, "
            f"driver {code_version[:12]}); install the same ceas and plugins on every node"
        )
    metrics = finished_metrics(cfg, made_by)
    if metrics is not None:
        return {"name": cfg.run.name, "status": "reused", "metrics": metrics}
    folder = run_dir_of(cfg)
    # resume a killed run of this very config and code; a checkpoint left by another config, other code or other
    # plugins is replaced, since the folder belongs to this grid
    resume = False
    if (folder / store.CHECKPOINT).exists():
        try:
            _, meta = store.load_checkpoint(folder / store.CHECKPOINT)
            resume = _same_run(meta, cfg, made_by)
        except ResumeError:  # a torn or foreign file: start again
            resume = False
    result = run(cfg, resume=resume, overwrite=not resume, progress=False, plots=run_plots)
    return {
        "name": cfg.run.name,
        "status": "resumed" if resume else "ran",
        "metrics": result.metrics,
    }


def _prepare(configs: Sequence[RunConfig]) -> None:
    """Load every data set of the grid once, before local workers fork, so that they inherit the preprocessed,
    read-only arrays (and the modules a cell needs) instead of each building its own."""
    from ceas.experiment.runner import make_trainer  # noqa: F401  (imports the trainer for the workers)
    from ceas.qnn.data import load_dataset

    if any(cfg.broker.enabled for cfg in configs):
        import ceas.broker.round  # noqa: F401
    seen = set()
    for cfg in configs:
        d = cfg.data
        classes = tuple(d.classes) if d.classes is not None else None
        key = (d.dataset, cfg.model.n_qubits, d.test_fraction, classes, cfg.run.seed, d.n_samples)
        if key not in seen:
            seen.add(key)
            load_dataset(
                d.dataset,
                cfg.model.n_qubits,
                test_fraction=d.test_fraction,
                classes=classes,
                seed=cfg.run.seed,
                n_samples=d.n_samples,
            )


def _progress_bar(enabled: bool):
    if not enabled:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]cells"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("done · {task.fields[running]} running · {task.fields[failed]} failed"),
        TimeElapsedColumn(),
    )


def _check_names(cells: Sequence[Cell]) -> None:
    names = [c.name for c in cells]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise CeasError(f"grid cell name {dup!r} appears twice; allowed: one run.name per cell")


def run_grid(
    cells: Sequence[Cell],
    *,
    out: Path | None = None,
    backend: str = "local",
    address: str | None = None,
    workers: int = 2,
    retries: int = RETRIES,
    progress: bool = True,
    fresh: bool = False,
    run_plots: bool = False,
) -> GridRun:
    """Run (or reuse, or resume) every cell; see the module docstring.

    ``out`` is the grid's folder: its dataset goes to ``out/dataset`` (none without ``out``), failed cells'
    tracebacks to ``out/failures``. ``fresh=True`` deletes the cells' run folders first. Raises :class:`GridError`
    after the rest of the grid finished when some cells failed ``retries + 1`` times.
    """
    from ceas.experiment.backends import check_choice, make_backend
    from ceas.plugins import provenance

    cells = list(cells)
    _check_names(cells)
    check_choice(backend, address)  # also when every cell is reused
    if retries < 0:
        raise CeasError(f"retries: {retries} is out of range; allowed: [0, inf)")
    t0 = time.perf_counter()
    made_by = provenance()
    plugins = tuple(made_by["plugins"])
    root = Path(out) / dataset.DATASET if out is not None else None
    fail_dir = Path(out) / "failures" if out is not None else None
    if fresh:
        _delete_run_folders(cells)
    if root is not None:
        dataset.prune(root, [c.name for c in cells])
    results: list[dict[str, Any] | None] = [None] * len(cells)

    def finish(i: int, res: dict[str, Any]) -> None:
        results[i] = res
        if root is not None:
            dataset.write_cell(
                root,
                cells[i].name,
                cells[i].params,
                res["metrics"],
                code_version=made_by["code_version"],
            )
        if fail_dir is not None:
            (fail_dir / f"{cells[i].name}.txt").unlink(missing_ok=True)

    todo = deque()
    for i, cell in enumerate(cells):
        metrics = finished_metrics(cell.config, made_by)
        if metrics is None:
            todo.append(i)
        else:
            finish(i, {"name": cell.name, "status": "reused", "metrics": metrics})
    attempts = [0] * len(cells)
    failures: list[Failure] = []
    engine = None
    backend_s = 0.0
    with _progress_bar(progress) as bar:
        task = bar.add_task("cells", total=len(cells), completed=len(cells) - len(todo),
                            running=0, failed=0) if bar else None  # fmt: skip
        try:
            if todo:
                t_start = time.perf_counter()
                engine = make_backend(backend, workers=workers, address=address)
                backend_s += time.perf_counter() - t_start
                if engine.name == "local":
                    _prepare([cells[i].config for i in todo])
            inflight: dict[Any, int] = {}
            while todo or inflight:
                while todo and len(inflight) < engine.capacity:
                    i = todo.popleft()
                    attempts[i] += 1
                    handle = engine.submit(
                        run_cell, cells[i].config, plugins, made_by["code_version"],
                        engine.threads, run_plots, None if fail_dir is None else str(fail_dir),
                    )  # fmt: skip
                    inflight[handle] = i
                for handle, ok, value in engine.wait(list(inflight), timeout=0.5):
                    i = inflight.pop(handle)
                    if ok:
                        finish(i, value)
                        if bar:
                            bar.advance(task)
                    elif attempts[i] <= retries:
                        todo.append(i)  # resumes from the cell's last checkpoint
                    else:
                        failures.append(Failure(cells[i].name, value, attempts[i]))
                if bar:
                    bar.update(task, running=len(inflight), failed=len(failures))
        finally:
            if engine is not None:
                t_stop = time.perf_counter()
                engine.close()
                backend_s += time.perf_counter() - t_stop
    done = [r for r in results if r is not None]
    run = GridRun(
        results=done,
        reused=sum(r["status"] == "reused" for r in done),
        resumed=sum(r["status"] == "resumed" for r in done),
        ran=sum(r["status"] == "ran" for r in done),
        retried=sum(attempts) - sum(1 for a in attempts if a),
        backend=backend,
        wall_s=time.perf_counter() - t0,
        backend_s=backend_s,
    )
    if root is not None:
        _write_manifest(root, cells, made_by, run, failures)
    if failures:
        raise GridError(sorted(failures, key=lambda f: f.name), len(cells), fail_dir)
    return run


def _delete_run_folders(cells: Sequence[Cell]) -> None:
    import shutil

    from ceas.experiment.runner import run_dir_of

    for cell in cells:
        shutil.rmtree(run_dir_of(cell.config), ignore_errors=True)


def _write_manifest(
    root: Path, cells: Sequence[Cell], made_by: dict, run: GridRun, failures: list
) -> None:
    """The grid's manifest beside its dataset: cells, parameter columns, code version, plugins, the last run."""
    dataset.write_manifest(
        root,
        {
            "cells": [c.name for c in cells],
            "params": sorted({k for c in cells for k in c.params}),
            "code_version": made_by["code_version"],
            "plugins": list(made_by["plugins"]),
            "last_run": {
                "reused": run.reused, "resumed": run.resumed, "ran": run.ran,
                "retries": run.retried, "backend": run.backend,
                "failed": [f.__dict__ for f in failures],
            },
        },
    )  # fmt: skip


def run_many(
    configs: Sequence[RunConfig],
    *,
    workers: int = 2,
    progress: bool = True,
    fresh: bool = False,
    run_plots: bool = False,
    backend: str = "local",
    address: str | None = None,
    retries: int = RETRIES,
) -> list[dict[str, Any]]:
    """Configs without grid parameters or a dataset: :func:`run_grid`'s results (``name``, ``metrics``) in order."""
    run = run_grid(
        [Cell(c) for c in configs], workers=workers, progress=progress, fresh=fresh,
        run_plots=run_plots, backend=backend, address=address, retries=retries,
    )  # fmt: skip
    return run.results
