"""``ceas sweep``: vary one configuration value and compare scenarios at each value (SPEC §8 sweeps).

SPEC §8 asks for sweeps of the Byzantine fraction (0–40 %), memory coherence, Dirichlet α, attack type and N. A
sweep is the headline comparison of :mod:`ceas.experiment.reproduce` repeated at every value of one parameter::

    ceas sweep --vary security.byzantine_fraction=0,0.1,0.2,0.3,0.4 --scenarios ceas,random-fedavg --seeds 3

Every run is a grid cell (:mod:`ceas.experiment.grid`: local pool or Ray) and an ordinary run folder
``<out>/<scenario>-v<i>-s<seed>`` (``i`` = index of the value), reused when it has finished with the same
configuration, code version and plugins, and resumed when it was killed, so a sweep can be stopped and restarted.
Every round of every cell lands in the dataset ``<out>/dataset`` (columns ``scenario``, ``seed``, ``value_index``, the
varied key, then the metrics); the results below are computed from it: ``results.json`` (per value and scenario: accuracy, utilisation, fidelity at use, aggregate error, mean and
95 % interval over seeds), ``report.md`` (a table per metric) and ``sweep.png`` (accuracy against the value, one line
per scenario, 95 % intervals as bars).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ceas._validate import unknown_name
from ceas.config import RunConfig, load_config
from ceas.errors import ConfigError
from ceas.experiment import dataset, store
from ceas.experiment.grid import RETRIES, Cell, run_grid
from ceas.experiment.reproduce import QUICK, SCENARIOS, summarise

__all__ = ["parse_vary", "plan_sweep", "sweep"]

DEFAULT_SCENARIOS = ("ceas", "random-fedavg")


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside brackets or quotes (so list values like ["alie","ipm"] survive)."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


def parse_vary(spec: str) -> tuple[str, list[str]]:
    """``"section.key=v1,v2,..."`` -> (``"section.key"``, [``"v1"``, ``"v2"``, ...]) (values as TOML literals).

    Raises
    ------
    ConfigError
        No ``=``, an empty key, fewer than one value, an empty value or a repeated value.
    """
    key, sep, rest = spec.partition("=")
    key = key.strip()
    if not sep or not key or "." not in key:
        raise ConfigError(
            f"--vary {spec!r}: expected section.key=value1,value2,... (e.g. security.byzantine_fraction=0,0.2)"
        )
    values = _split_top_level(rest)
    if not rest.strip() or any(v == "" for v in values):
        raise ConfigError(f"--vary {spec!r}: every value must be non-empty")
    if len(set(values)) != len(values):
        raise ConfigError(f"--vary {spec!r}: a value appears twice")
    return key, values


def plan_sweep(
    base: str,
    key: str,
    values: list[str],
    *,
    scenarios: list[str],
    seeds: int,
    out: Path,
    quick: bool = False,
    overrides: list[str] | None = None,
) -> list[tuple[int, str, RunConfig]]:
    """Every run of the sweep as (value index, scenario, validated config); bad values fail before anything runs."""
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise ConfigError(str(unknown_name("scenario", unknown[0], SCENARIOS)))
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}")
    runs = []
    for i, value in enumerate(values):
        for name in scenarios:
            for seed in range(seeds):
                extra = (QUICK if quick else []) + list(overrides or []) + SCENARIOS[name]
                extra += [
                    f"{key}={value}",
                    f"run.seed={seed}",
                    f"run.name={json.dumps(f'{name}-v{i}-s{seed}')}",
                    f"run.out_dir={json.dumps(str(out))}",
                    "broker.enabled=true",
                ]
                runs.append((i, name, load_config(base, extra)))
    return runs


def _numeric(values: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def cells_of(plan: list[tuple[int, str, RunConfig]], key: str, values: list[str]) -> list[Cell]:
    """The sweep's runs as grid cells: parameters ``scenario``, ``seed``, ``value_index`` and the varied key itself
    (a float column when every value is a number, else the values' TOML text)."""
    numeric = _numeric(values)
    column = numeric if numeric is not None else values
    return [
        Cell(cfg, {"scenario": name, "seed": cfg.run.seed, "value_index": i, key: column[i]})
        for i, name, cfg in plan
    ]


def report(result: dict[str, Any]) -> str:
    """The sweep as Markdown: one table per metric, rows = values, columns = scenarios (mean ± 95 % interval)."""
    key, values, table = result["parameter"], result["values"], result["table"]
    scenarios = list(next(iter(table.values())).keys()) if table else []
    lines = [f"## Sweep of `{key}` ({result['seeds']} seeds, {result['base']} configuration)", ""]
    for metric, label, digits in (
        ("final10_accuracy", "test accuracy, mean over the last 10 % of rounds", 3),
        ("utilisation", "Bell-pair utilisation", 3),
        ("aggregate_mse", "aggregate MSE against the honest full-batch gradient", 4),
    ):
        lines += [f"**{label}**", "", f"| {key} | " + " | ".join(scenarios) + " |"]
        lines.append("|---|" + "---|" * len(scenarios))
        for value in values:
            cells = []
            for s in scenarios:
                m, h = table[value][s][metric]
                cells.append("n/a" if math.isnan(m) else f"{m:.{digits}f} ± {h:.{digits}f}")
            lines.append(f"| {value} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_sweep(result: dict[str, Any], path: Path) -> None:
    """Accuracy (mean over the last 10 % of rounds) against the varied value, one line per scenario."""
    from ceas.experiment.plots import _figure

    plt = _figure()
    values, table = result["values"], result["table"]
    xs = _numeric(values)
    pos = xs if xs is not None else list(range(len(values)))
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    scenarios = list(next(iter(table.values())).keys()) if table else []
    for s in scenarios:
        mean = [table[v][s]["final10_accuracy"][0] for v in values]
        half = [table[v][s]["final10_accuracy"][1] for v in values]
        ax.errorbar(pos, mean, yerr=half, marker="o", capsize=3, label=s)
    if xs is None:
        ax.set_xticks(pos, values, rotation=20)
    ax.set_xlabel(result["parameter"])
    ax.set_ylabel("test accuracy (last 10 % of rounds)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def sweep(
    base: str,
    vary: str,
    *,
    scenarios: list[str] | None = None,
    seeds: int = 3,
    out: Path | None = None,
    quick: bool = False,
    workers: int = 2,
    overrides: list[str] | None = None,
    progress: bool = True,
    fresh: bool = False,
    run_plots: bool = False,
    backend: str = "local",
    address: str | None = None,
    retries: int = RETRIES,
) -> dict[str, Any]:
    """Run (or reuse, or resume) every value × scenario × seed as a grid on ``backend``; write results.json,
    report.md and sweep.png, computed from the grid's dataset ``out/dataset``. A finished run is reused only for the
    same config, code version and plugins; ``fresh`` deletes the planned runs' folders first all the same (see
    :func:`~ceas.experiment.grid.run_grid`); ``run_plots`` lets each run draw its own PNGs."""
    key, values = parse_vary(vary)
    scenarios = list(scenarios or DEFAULT_SCENARIOS)
    out = Path(out or f"runs/sweep-{key.replace('.', '-')}")
    plan = plan_sweep(
        base, key, values, scenarios=scenarios, seeds=seeds, out=out, quick=quick,
        overrides=overrides,
    )  # fmt: skip
    cells = cells_of(plan, key, values)
    grid = run_grid(
        cells, out=out, backend=backend, address=address, workers=workers, retries=retries,
        progress=progress, fresh=fresh, run_plots=run_plots,
    )  # fmt: skip
    results = dataset.read_cells(out / dataset.DATASET, [c.name for c in cells])
    table: dict[str, dict[str, Any]] = {}
    for i, value in enumerate(values):
        mine = [r for (j, _, _), r in zip(plan, results) if j == i]
        # summarise groups runs by the name before "-s<seed>": drop the value tag
        rows = summarise(
            [{"name": r["name"].replace(f"-v{i}-", "-"), "metrics": r["metrics"]} for r in mine]
        )
        table[value] = {
            s: {k: v for k, v in rows[s].items() if k != "accuracy_curve"} for s in scenarios
        }
    result = {
        "parameter": key,
        "values": values,
        "scenarios": scenarios,
        "seeds": seeds,
        "base": f"{base}{' (quick)' if quick else ''}",
        "overrides": list(overrides or []),
        "table": table,
    }
    store.write_json_atomic(out / "results.json", result)
    store.write_text_atomic(out / "report.md", report(result))
    plot_sweep(result, out / "sweep.png")
    return {"out": out, "grid": grid, **result}
