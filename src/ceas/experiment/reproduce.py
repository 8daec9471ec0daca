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
ceas-defences-oblivious   oblivious              trimmed mean        stamps
random-on-demand          random, on-demand      mean                none
========================  =====================  ==================  =========

``ceas-no-scheduling`` and ``ceas-defences-oblivious`` keep every defence of ``ceas`` (the same rule and weights, norm
bounding, trust, tight stamp references, authentication: all at their defaults in the three) and change only the
scheduling policy, to random or round-robin participants with every link generating: their difference to ``ceas``
is what entanglement awareness adds (``ceas-no-scheduling`` is "the same defences with random scheduling" of
issue 11; no second name is kept for it). ``random-on-demand`` is ``random-fedavg`` whose links generate only the
pairs the round's requests need: the utilisation of random selection once generation is controlled.

Every run is a grid cell (:mod:`ceas.experiment.grid`, local pool or Ray) and an ordinary run folder under
``<out>/<scenario>-s<seed>``; a finished run is reused when its config, code version and plugins match (so a killed
``reproduce`` runs only its unfinished cells, and a code change reruns them). Every round of every cell lands in the
dataset ``<out>/dataset`` (columns ``scenario``, ``seed``, then the metrics; :mod:`ceas.experiment.dataset`), from
which ``results.json`` (per scenario, mean and 95 % interval over seeds), ``report.md`` and ``accuracy.png`` (Fig. 4:
accuracy against round) are computed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ceas.config import load_config
from ceas.experiment import dataset, store
from ceas.experiment.grid import RETRIES, Cell, GridRun, run_grid, run_many

__all__ = ["FIG4", "QUICK", "SCENARIOS", "paired", "plan", "plot_fig4", "reproduce", "run_many", "summarise"]

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
    "ceas-defences-oblivious": [
        'scheduling.policy="oblivious"',
        'consensus.aggregator="trimmed-mean"',
        "consensus.fidelity_weighting=true",
    ],
    "random-on-demand": [
        'scheduling.policy="random"',
        'scheduling.policy_params.generation="on-demand"',
        'consensus.aggregator="mean"',
        "consensus.fidelity_weighting=false",
        "consensus.norm_bound=false",
    ],
}

QUICK = ["run.rounds=40", "training.nodes=30", "scheduling.participants=6", "training.shots=256"]


def plan(base: str, *, quick: bool, seeds: int, out: Path, overrides: list[str]) -> list[Cell]:
    """Every run of the comparison as a grid cell (validated config; parameters ``scenario`` and ``seed``)."""
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
            runs.append(Cell(load_config(base, extra), {"scenario": name, "seed": seed}))
    return runs


def _mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of a 95 % t-interval over the non-NaN values (0 for one value; NaN for none)."""
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
            "accuracy_band": [
                _mean_ci(list(col))[1]
                for col in np.array([[r["test_accuracy"] for r in rows] for rows in runs]).T
            ],
        }
    return table


def paired(results: list[dict[str, Any]], *, reference: str = "ceas") -> dict[str, Any]:
    """Per scenario: ``reference`` minus it, paired by seed, on the mean accuracy of the last 10 % of rounds (in
    points): mean, half-width of the 95 % t-interval, the worst seed (the most negative difference) and which."""
    acc: dict[str, dict[int, float]] = {}
    for r in results:
        name, seed = r["name"].rsplit("-s", 1)
        rows = r["metrics"]
        tail = rows[-max(1, len(rows) // 10) :]
        acc.setdefault(name, {})[int(seed)] = float(np.nanmean([x["test_accuracy"] for x in tail]))
    out: dict[str, Any] = {}
    for name, per_seed in acc.items():
        if name == reference or reference not in acc:
            continue
        seeds = sorted(set(per_seed) & set(acc[reference]))
        if not seeds:
            continue
        d = [100 * (acc[reference][s] - per_seed[s]) for s in seeds]
        mean, half = _mean_ci(d)
        worst = int(np.argmin(d))
        out[name] = {
            "seeds": len(seeds),
            "diff_points": mean,
            "ci95_points": half,
            "worst_seed_points": d[worst],
            "worst_seed": seeds[worst],
        }
    return out


def report(table: dict[str, Any], *, title: str, diffs: dict[str, Any] | None = None) -> str:
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
    if diffs:
        lines += [
            "",
            "| CEAS − scenario (paired by seed, points) | seeds | mean ± 95 % | worst seed |",
            "|---|---|---|---|",
        ]
        for name, d in diffs.items():
            lines.append(
                f"| {name} | {d['seeds']} | {d['diff_points']:+.1f} ± {d['ci95_points']:.1f} | "
                f"{d['worst_seed_points']:+.1f} (seed {d['worst_seed']}) |"
            )
    return "\n".join(lines) + "\n"


FIG4 = ("ceas", "random-fedavg", "oblivious-fedavg", "ceas-no-scheduling")


def plot_fig4(table: dict[str, Any], path: Path, *, seeds: int, title: str | None = None) -> None:
    """Fig. 4: mean test accuracy against round with its 95 % t-band over seeds, for the scenarios in
    :data:`FIG4` that ``table`` (:func:`summarise`) holds."""
    from ceas.experiment.plots import plot_runs

    curves = {}
    for name in FIG4:
        if name not in table:
            continue
        row = table[name]
        curves[name] = [
            {
                "round": i,
                "test_accuracy": a,
                "test_accuracy_low": a - h,
                "test_accuracy_high": a + h,
            }
            for i, (a, h) in enumerate(zip(row["accuracy_curve"], row["accuracy_band"]))
        ]
    title = title or f"Fig. 4: CEAS vs random participant selection (95 % band, {seeds} seeds)"
    plot_runs(curves, path, title=title)


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
    backend: str = "local",
    address: str | None = None,
    retries: int = RETRIES,
) -> dict[str, Any]:
    """Run (or reuse, or resume) every scenario × seed on ``backend`` (:func:`~ceas.experiment.grid.run_grid`),
    then write results.json, report.md and accuracy.png into ``out``, computed from the grid's dataset
    (``out/dataset``); ``run_plots``: each run also draws its own PNGs."""
    seeds = seeds if seeds is not None else (2 if quick else 5)
    out = Path(out or ("runs/reproduce-quick" if quick else "runs/reproduce"))
    cells = plan(base, quick=quick, seeds=seeds, out=out, overrides=overrides or [])
    grid: GridRun = run_grid(
        cells, out=out, backend=backend, address=address, workers=workers, retries=retries,
        progress=progress, fresh=fresh, run_plots=run_plots,
    )  # fmt: skip
    rows = dataset.read_cells(out / dataset.DATASET, [c.name for c in cells])
    table, diffs = summarise(rows), paired(rows)
    title = f"Headline comparison ({'quick' if quick else 'paper'} configuration, {seeds} seeds)"
    store.write_json_atomic(
        out / "results.json", {"title": title, "scenarios": table, "ceas_minus": diffs}
    )
    store.write_text_atomic(out / "report.md", report(table, title=title, diffs=diffs))
    plot_fig4(table, out / "accuracy.png", seeds=seeds)
    return {"out": out, "table": table, "grid": grid}
