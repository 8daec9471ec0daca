"""Honest nodes through the broker (issue 5): does training over the network keep the no-network accuracy?

Runs the ``paper`` preset (50 nodes, 10 participants, 512 shots, p_k ~ U[0, 0.2], quantum payloads, 100 rounds)
with no Byzantine nodes, for several seeds, in four variants:

* ``no-network``: the foundation's data-level loop (``broker.enabled = false``);
* ``ceas``, ``random``, ``oblivious``: through the broker and the simulated network with that scheduling policy
  (same aggregation rule and fidelity weighting for all three, so only the scheduling differs).

Reports per variant the final test accuracy (mean over seeds and its 95 % t-interval), Bell-pair utilisation, mean
fidelity at use and payload latency, all measured in the same invocation. Writes
``benchmarks/results/honest_broker.json`` and ``docs/figures/honest_broker_vs_random.png`` (mean test accuracy
against round, one line per variant) and prints a Markdown table.

Usage: ``.venv/bin/python benchmarks/honest_broker.py [--seeds 3] [--rounds 100] [--workers 2] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np

from ceas.config import load_config
from ceas.experiment.reproduce import _mean_ci, run_many

ROOT = Path(__file__).resolve().parents[1]
HONEST = ["security.byzantine_fraction=0", "security.attacks=[]"]
VARIANTS: dict[str, list[str]] = {
    "no-network": ["broker.enabled=false"],
    "ceas": ['scheduling.policy="ceas"'],
    "random": ['scheduling.policy="random"'],
    "oblivious": ['scheduling.policy="oblivious"'],
}


def _final(rows: list[dict], key: str) -> float:
    vals = [r[key] for r in rows if key in r and not math.isnan(r[key])]
    return float(vals[-1]) if vals else math.nan


def _mean(rows: list[dict], key: str) -> float:
    vals = [r[key] for r in rows if key in r and not math.isnan(r[key])]
    return float(np.mean(vals)) if vals else math.nan


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/honest_broker"))
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/honest_broker.json")
    ap.add_argument(
        "--figure", type=Path, default=ROOT / "docs/figures/honest_broker_vs_random.png"
    )
    ap.add_argument(
        "--set", dest="overrides", action="append", default=[], help="override for every variant"
    )
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args(argv)

    configs, labels = [], []
    variants = {name: VARIANTS[name] for name in args.variants}
    for name, settings in variants.items():
        for seed in range(args.seeds):
            configs.append(
                load_config(
                    "paper",
                    HONEST
                    + args.overrides
                    + settings
                    + [
                        f"run.rounds={args.rounds}",
                        f"run.seed={seed}",
                        f'run.name="{name}-s{seed}"',
                        f"run.out_dir={json.dumps(str(args.out))}",
                    ],
                )
            )
            labels.append(name)
    t0 = time.perf_counter()
    results = run_many(configs, workers=args.workers)
    wall = time.perf_counter() - t0

    table: dict[str, dict] = {}
    curves: dict[str, np.ndarray] = {}
    for name in variants:
        runs = [r["metrics"] for r, lab in zip(results, labels) if lab == name]
        row = {"seeds": len(runs)}
        for key, fn in (
            ("test_accuracy", _final),
            ("utilisation", _final),
            ("fidelity_at_use", _mean),
            ("latency_s", _mean),
        ):
            m, h = _mean_ci([fn(rows, key) for rows in runs])
            row[key] = {"mean": m, "ci95": h}
        table[name] = row
        acc = [[r["test_accuracy"] for r in rows] for rows in runs]
        curves[name] = np.nanmean(np.array(acc, float), axis=0)
    ref = table["no-network"]["test_accuracy"]["mean"] if "no-network" in table else math.nan
    for row in table.values():
        row["gap_to_no_network_points"] = 100.0 * (row["test_accuracy"]["mean"] - ref)

    out = {
        "machine": {"python": platform.python_version(), "cores": __import__("os").cpu_count()},
        "config": "paper preset, no Byzantine nodes",
        "overrides": args.overrides,
        "rounds": args.rounds,
        "seeds": args.seeds,
        "wall_seconds": wall,
        "variants": table,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")

    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for name, curve in curves.items():
        r = np.flatnonzero(~np.isnan(curve))
        ax.plot(r + 1, curve[r], label=name)
    ax.set_xlabel("round")
    ax.set_ylabel(f"test accuracy (mean of {args.seeds} seeds)")
    ax.set_ylim(0.4, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Honest nodes: trained through the broker vs without the network")
    fig.tight_layout()
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure)
    plt.close(fig)

    print(
        "| variant | final test accuracy | vs no network | utilisation | fidelity at use | latency (s) |"
    )
    print("|---|---|---|---|---|---|")

    def cell(v: dict, digits: int = 3) -> str:
        return "—" if math.isnan(v["mean"]) else f"{v['mean']:.{digits}f} ± {v['ci95']:.{digits}f}"

    for name, row in table.items():
        print(
            f"| {name} | {cell(row['test_accuracy'])} | {row['gap_to_no_network_points']:+.1f} | "
            f"{cell(row['utilisation'])} | {cell(row['fidelity_at_use'], 4)} | {cell(row['latency_s'])} |"
        )
    print(f"\n{len(configs)} runs in {wall:.0f} s")
    return out


if __name__ == "__main__":
    main()
