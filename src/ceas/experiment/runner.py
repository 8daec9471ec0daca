"""Run a configured experiment to completion: folder, progress, checkpoints, resume, results.

``run(cfg)`` trains for ``cfg.run.rounds`` rounds, writing into ``<out_dir>/<name>/``; a checkpoint every
``checkpoint_every`` rounds holds the parameters, optimiser state and all metrics so far. ``run(cfg, resume=True)``
continues from the last checkpoint of the same configuration (its digest must match) and ends with metrics identical
to an uninterrupted run.
"""

from __future__ import annotations

import math
import pickle
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ceas import __version__
from ceas.config import RunConfig, to_toml
from ceas.errors import ResumeError
from ceas.experiment import store


@dataclass(frozen=True)
class RunResult:
    """Where a finished run lives and what it measured."""

    run_dir: Path
    metrics: list[dict[str, Any]]
    summary: dict[str, Any]


def make_trainer(cfg: RunConfig):
    """The broker (network, scheduling, security, consensus) when ``broker.enabled``, else plain data-level training."""
    if cfg.broker.enabled:
        from ceas.broker.round import BrokerTrainer

        trainer = BrokerTrainer(cfg)
        trainer.start()
        return trainer
    from ceas.broker.learning import DataLevelTrainer

    return DataLevelTrainer(cfg)


def run_dir_of(cfg: RunConfig) -> Path:
    return Path(cfg.run.out_dir) / cfg.run.name


def holds_run(out: Path) -> bool:
    """Whether a run folder holds results (a checkpoint, metrics or a summary).

    A folder with only its config snapshot is a run killed before its first checkpoint: there is nothing to resume,
    and a plain run starts it again (the advice of both commands agrees).
    """
    return any((out / f).exists() for f in (store.CHECKPOINT, store.METRICS, store.SUMMARY))


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run at a round boundary after writing a checkpoint; the message says how to continue."""


class _StopFlag:
    requested = False


@contextmanager
def _sigint_after_round():
    """Defer the first SIGINT to the end of the current round (so the checkpoint is consistent); a second one
    interrupts at once, leaving the last periodic checkpoint. Only the main thread can install signal handlers."""
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        flag.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _progress(enabled: bool):
    if not enabled:
        return nullcontext(None)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]round"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("acc {task.fields[acc]}"),
        TimeRemainingColumn(),
        transient=False,
    )
    return progress


def _summary(
    cfg: RunConfig, rows: list[dict[str, Any]], wall_s: float, resumed_from: int | None
) -> dict[str, Any]:
    from ceas.plugins import provenance

    accs = [r["test_accuracy"] for r in rows if not math.isnan(r["test_accuracy"])]
    return {
        **provenance(),
        "name": cfg.run.name,
        "ceas_version": __version__,
        "config_digest": cfg.digest(),
        "seed": cfg.run.seed,
        "rounds": len(rows),
        "final_test_accuracy": accs[-1] if accs else None,
        "best_test_accuracy": max(accs) if accs else None,
        "final_train_loss": rows[-1]["train_loss"] if rows else None,
        "wall_seconds_this_session": round(wall_s, 3),
        "resumed_from_round": resumed_from,
    }


def run(
    cfg: RunConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    plots: bool = True,
) -> RunResult:
    """Train as configured and write every result file. See the module docstring.

    ``plots=False`` skips the per-run PNGs (grids draw theirs once from all results; ``ceas plot`` redraws one).
    """
    out = run_dir_of(cfg)
    ckpt_path = out / store.CHECKPOINT
    if not resume and not overwrite and holds_run(out):
        raise ResumeError(
            f"run folder {str(out)!r} already holds a run; pass --resume to continue it, --overwrite to replace it, "
            "or choose another run.name"
        )
    # a damaged or foreign checkpoint is refused before any compute is spent or any file written
    arrays, meta = store.load_checkpoint(ckpt_path) if resume else ({}, {})
    if resume and meta.get("config_digest") != cfg.digest():
        raise ResumeError(
            f"checkpoint in {str(out)!r} was made with a different configuration; resume with the same config "
            f"(see {str(out / store.CONFIG)!r}) or start a new run"
        )
    trainer = make_trainer(cfg)
    optimizer = trainer.make_optimizer()
    rows: list[dict[str, Any]] = []
    start_round = 0
    theta = trainer.initial_parameters()
    resumed_from = None
    if resume:
        try:
            theta = arrays["theta"]
            optimizer.load_state(arrays)
            if "extra_state" in arrays:
                trainer.load_extra_state(arrays["extra_state"].tobytes())
            rows = list(meta["metrics"])
        except (
            KeyError,
            ValueError,
            TypeError,
            EOFError,
            AttributeError,
            pickle.UnpicklingError,
        ) as exc:
            raise ResumeError(
                f"checkpoint {str(ckpt_path)!r} is unreadable ({type(exc).__name__}: {exc}); it cannot be resumed: "
                "start again with --overwrite"
            ) from None
        start_round = resumed_from = int(meta["next_round"])
    elif out.exists():
        for f in (store.CHECKPOINT, store.METRICS, store.SUMMARY):
            (out / f).unlink(missing_ok=True)
    store.write_text_atomic(out / store.CONFIG, to_toml(cfg))

    def checkpoint(next_round: int) -> None:
        meta = {
            "next_round": next_round,
            "config_digest": cfg.digest(),
            "metrics": rows,
            **provenance(),
        }
        arrays = {"theta": theta, **optimizer.state()}
        if hasattr(trainer, "extra_state"):
            arrays["extra_state"] = np.frombuffer(trainer.extra_state(), dtype=np.uint8)
        # checkpoint first: a folder with metrics always has the checkpoint that continues them
        store.save_checkpoint(ckpt_path, arrays=arrays, meta=meta)
        store.write_metrics(out / store.METRICS, rows)

    from ceas.plugins import provenance

    t0 = time.perf_counter()
    total = cfg.run.rounds
    bar = _progress(progress)
    with bar as live, _sigint_after_round() as stop:
        task = live.add_task("train", total=total, completed=start_round, acc="-") if live else None
        for t in range(start_round, total):
            result = trainer.run_round(t, theta, optimizer)
            theta = result.theta
            rows.append(result.metrics)
            if (t + 1) % cfg.run.checkpoint_every == 0 or t + 1 == total or stop.requested:
                checkpoint(t + 1)
            if live is not None:
                acc = result.metrics["test_accuracy"]
                live.update(task, advance=1, acc="-" if math.isnan(acc) else f"{acc:.3f}")
            if stop.requested and t + 1 < total:
                raise RunInterrupted(
                    f"interrupted after round {t + 1} of {total}; checkpoint in {str(out)!r}: continue with "
                    "--resume"
                )
    wall = time.perf_counter() - t0
    summary = _summary(cfg, rows, wall, resumed_from)
    store.write_json_atomic(out / store.SUMMARY, summary)
    if not plots:
        return RunResult(run_dir=out, metrics=rows, summary=summary)
    from ceas.experiment.plots import plot_accuracy

    plot_accuracy(rows, out / "accuracy.png", title=cfg.run.name)
    if rows and "utilisation" in rows[0]:
        from ceas.experiment.plots import plot_network

        plot_network(rows, out / "network.png", title=f"{cfg.run.name}: network and scheduling")
    return RunResult(run_dir=out, metrics=rows, summary=summary)


def final_parameters(run_dir: Path) -> np.ndarray:
    """θ at the last checkpoint of a run folder, shape (P,)."""
    arrays, _ = store.load_checkpoint(Path(run_dir) / store.CHECKPOINT)
    return arrays["theta"]
