"""``ceas reproduce``: the paper's headline comparison (SPEC §8) in one command.

Scenarios (each run for several seeds, under the same coordinated Byzantine attack):

========================  =====================  ==================  =========
scenario                  scheduling policy      aggregation rule    weighting
========================  =====================  ==================  =========
ceas                      ceas                   trimmed mean        stamps
random-fedavg             random (Fig. 4)        mean                none
oblivious-fedavg          oblivious              mean                none
oblivious-median          oblivious              median              none
ceas-no-weighting         ceas                   trimmed mean        none
ceas-no-scheduling        random                 trimmed mean        stamps
========================  =====================  ==================  =========

Every run is an ordinary run folder under ``<out>/<scenario>-s<seed>``; a finished run is reused when its config,
code version and plugins match (so a killed ``reproduce`` resumes where it stopped, and a code change reruns it). Results: ``results.json`` (per run and aggregated, mean
and 95 % interval over seeds), ``report.md`` and ``accuracy.png`` (Fig. 4: accuracy against round).
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ceas.config import RunConfig, load_config
from ceas.errors import ResumeError
from ceas.experiment import store

SCENARIOS: dict[str, list[str]] = {
    "ceas": [
        'scheduling.policy="ceas"',
        'consensus.aggregator="trimmed-mean"',
        "consensus.fidelity_weighting=true",
    ],
    "random-fedavg": [
        'scheduling.policy="random"',
        'consensus.aggregator="mean"',
        "consensus.fidelity_weighting=false",
        "consensus.norm_bound=false",
    ],
    "oblivious-fedavg": [
        'scheduling.policy="oblivious"',
        'consensus.aggregator="mean"',
        "consensus.fidelity_weighting=false",
        "consensus.norm_bound=false",
    ],
    "oblivious-median": [
        'scheduling.policy="oblivious"',
        'consensus.aggregator="median"',
        "consensus.fidelity_weighting=false",
        "consensus.norm_bound=false",
    ],
    "ceas-no-weighting": [
        'scheduling.policy="ceas"',
        'consensus.aggregator="trimmed-mean"',
        "consensus.fidelity_weighting=false",
    ],
    "ceas-no-scheduling": [
        'scheduling.policy="random"',
        'consensus.aggregator="trimmed-mean"',
        "consensus.fidelity_weighting=true",
    ],
}

QUICK = ["run.rounds=40", "training.nodes=30", "scheduling.participants=6", "training.shots=256"]


def plan(base: str, *, quick: bool, seeds: int, out: Path, overrides: list[str]) -> list[RunConfig]:
    """Every run of the comparison as a validated config."""
    runs = []
    for name, settings in SCENARIOS.items():
        for seed in range(seeds):
            extra = (QUICK if quick else []) + list(overrides) + settings
            extra += [
                f"run.seed={seed}",
                f"run.name={json.dumps(f'{name}-s{seed}')}",
                f"run.out_dir={json.dumps(str(out))}",
                "broker.enabled=true",
            ]
            runs.append(load_config(base, extra))
    return runs


def _same_run(record: dict[str, Any], cfg: RunConfig, made_by: dict[str, Any]) -> bool:
    """A summary or checkpoint of this very config, made by this code version with these plugins."""
    return (
        record.get("config_digest") == cfg.digest()
        and record.get("code_version") == made_by["code_version"]
        and record.get("plugins") == made_by["plugins"]
    )


def _run_one(
    cfg: RunConfig, plugins: tuple[str, ...] = (), run_plots: bool = False
) -> dict[str, Any]:
    from ceas.experiment.runner import run, run_dir_of
    from ceas.plugins import activate, provenance

    activate(plugins)  # a worker process registers the plugins its config names
    made_by = provenance()
    folder = run_dir_of(cfg)
    summary = folder / store.SUMMARY
    if summary.exists():
        done = json.loads(summary.read_text())
        if _same_run(done, cfg, made_by) and done.get("rounds") == cfg.run.rounds:
            return {"name": cfg.run.name, "metrics": store.read_metrics(folder / store.METRICS)}
    # resume a killed run of this very config and code; a checkpoint left by another config, other code or other
    # plugins is replaced, since the folder belongs to this comparison
    resume = False
    if (folder / store.CHECKPOINT).exists():
        try:
            _, meta = store.load_checkpoint(folder / store.CHECKPOINT)
            resume = _same_run(meta, cfg, made_by)
        except ResumeError:  # a torn or foreign file: start again
            resume = False
    result = run(cfg, resume=resume, overwrite=not resume, progress=False, plots=run_plots)
    return {"name": cfg.run.name, "metrics": result.metrics}


def _prepare(configs: list[RunConfig]) -> None:
    """Load every data set of the grid once, before the worker processes fork, so that they inherit the
    preprocessed, read-only arrays (and the modules a cell needs) instead of each building its own."""
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


_LIMITS = None


def _worker_init(threads: int) -> None:
    """A grid worker uses its share of the cores: simulator threads and BLAS threads (no oversubscription when
    several workers share few cores; numbers do not depend on it)."""
    global _LIMITS
    from ceas.qnn.simulator import set_default_threads

    set_default_threads(threads)
    try:
        from threadpoolctl import threadpool_limits  # ships with scikit-learn
    except ImportError:  # pragma: no cover
        return
    _LIMITS = threadpool_limits(limits=threads)


def run_many(
    configs: list[RunConfig],
    *,
    workers: int = 2,
    progress: bool = True,
    fresh: bool = False,
    run_plots: bool = False,
) -> list[dict[str, Any]]:
    """Run (or reuse, or resume) every config in a process pool; results in the order given.

    A finished run is reused only when its folder holds a run of the same configuration, code version and plugins
    (see :mod:`ceas.plugins`); ``fresh=True`` deletes the planned runs' folders first all the same. Runs draw no
    plots of their own unless ``run_plots`` (the grid draws its figures once from all results; ``ceas plot <run
    folder>`` draws one run's later).
    """
    from ceas.plugins import loaded

    plugins = loaded()
    if fresh:
        import shutil

        from ceas.experiment.runner import run_dir_of

        for cfg in configs:
            shutil.rmtree(run_dir_of(cfg), ignore_errors=True)
    _prepare(configs)
    workers = max(1, workers)
    threads = max(
        1, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1) // workers
    )
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_worker_init, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(_run_one, c, plugins, run_plots) for c in configs]
        if not progress:
            return [f.result() for f in futures]
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        results = []
        with Progress(
            TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as bar:
            task = bar.add_task("runs", total=len(futures))
            for f in futures:
                results.append(f.result())
                bar.advance(task)
        return results


def _mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of a 95 % t-interval (0 for a single value)."""
    x = np.asarray([v for v in values if not math.isnan(v)], float)
    if x.size == 0:
        return math.nan, math.nan
    if x.size == 1:
        return float(x[0]), 0.0
    from scipy import stats

    return float(x.mean()), float(
        stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    )


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per scenario: final accuracy, utilisation, fidelity at use, aggregate error (mean and 95 % interval)."""
    by: dict[str, list[list[dict[str, Any]]]] = {}
    for r in results:
        by.setdefault(r["name"].rsplit("-s", 1)[0], []).append(r["metrics"])
    table: dict[str, Any] = {}
    for name, runs in by.items():
        last = [rows[-1] for rows in runs]
        tail = [rows[-max(1, len(rows) // 10) :] for rows in runs]  # last 10 % of rounds
        table[name] = {
            "seeds": len(runs),
            "final_accuracy": _mean_ci([r["test_accuracy"] for r in last]),
            "final10_accuracy": _mean_ci(
                [float(np.nanmean([r["test_accuracy"] for r in t])) for t in tail]
            ),
            "utilisation": _mean_ci([r["utilisation"] for r in last]),
            "fidelity_at_use": _mean_ci(
                [float(np.nanmean([r["fidelity_at_use"] for r in rows])) for rows in runs]
            ),
            "aggregate_mse": _mean_ci(
                [float(np.nanmean([r["aggregate_mse"] for r in rows])) for rows in runs]
            ),
            "accuracy_curve": np.nanmean(
                np.array([[r["test_accuracy"] for r in rows] for rows in runs]), axis=0
            ).tolist(),
        }
    return table


def report(table: dict[str, Any], *, title: str) -> str:
    """The comparison as a Markdown table (mean ± 95 % interval over seeds)."""

    def fmt(pair, digits=3):
        m, h = pair
        return "n/a" if math.isnan(m) else f"{m:.{digits}f} ± {h:.{digits}f}"

    lines = [
        f"## {title}",
        "",
        (
            "| scenario | seeds | final accuracy | mean acc. last 10 % | utilisation | "
            "fidelity at use | aggregate MSE |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in table.items():
        lines.append(
            f"| {name} | {row['seeds']} | {fmt(row['final_accuracy'])} | {fmt(row['final10_accuracy'])} | "
            f"{fmt(row['utilisation'])} | {fmt(row['fidelity_at_use'], 4)} | {fmt(row['aggregate_mse'], 4)} |"
        )
    if "ceas" in table and "random-fedavg" in table:
        gap = table["ceas"]["final10_accuracy"][0] - table["random-fedavg"]["final10_accuracy"][0]
        lines += [
            "",
            (
                f"CEAS − random selection (mean accuracy over the last 10 % of rounds): "
                f"{100 * gap:+.1f} points (paper: +10 to +15)."
            ),
        ]
    return "\n".join(lines) + "\n"


def reproduce(
    base: str = "paper",
    *,
    quick: bool = False,
    seeds: int | None = None,
    out: Path | None = None,
    workers: int = 2,
    overrides: list[str] | None = None,
    progress: bool = True,
    fresh: bool = False,
    run_plots: bool = False,
) -> dict[str, Any]:
    """Run (or resume) every scenario × seed and write results.json, report.md and accuracy.png into ``out``
    (``run_plots``: each run also draws its own PNGs)."""
    seeds = seeds if seeds is not None else (2 if quick else 5)
    out = Path(out or ("runs/reproduce-quick" if quick else "runs/reproduce"))
    configs = plan(base, quick=quick, seeds=seeds, out=out, overrides=overrides or [])
    results = run_many(
        configs, workers=workers, progress=progress, fresh=fresh, run_plots=run_plots
    )
    table = summarise(results)
    title = f"Headline comparison ({'quick' if quick else 'paper'} configuration, {seeds} seeds)"
    store.write_json_atomic(out / "results.json", {"title": title, "scenarios": table})
    store.write_text_atomic(out / "report.md", report(table, title=title))
    from ceas.experiment.plots import plot_runs

    curves = {
        name: [{"round": i, "test_accuracy": a} for i, a in enumerate(row["accuracy_curve"])]
        for name, row in table.items()
        if name in ("ceas", "random-fedavg", "oblivious-fedavg")
    }
    plot_runs(curves, out / "accuracy.png", title="Fig. 4: CEAS vs random participant selection")
    return {"out": out, "table": table}
