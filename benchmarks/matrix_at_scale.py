"""The attack matrix at scale (issue 12, item 6): data sets x Byzantine fractions x IID / label skew x attacks x rules.

Quick configuration through the broker (50 nodes, 10 seats, 30 rounds, quantum payloads), >= 12 paired seeds. Cells
are crossed fully where they decide the claims -- every defence under no attack and the two strongest attacks
(``--full-attacks``: adaptive and the scaled negative mean) -- and sliced elsewhere: the remaining attacks
(``--slice-attacks``: ALIE, IPM, sign flip) against FedAvg, the median and CEAS only. Krum is left out where it cannot
run (n >= 2f + 3 fails at 0.4 with 10 seats). Each data set is its own grid and result file, written as soon as it
finishes, so a killed run loses at most one data set (and its finished cells are reused on the rerun).

Per cell (data set, partition, fraction, attack, defence): mean test accuracy of the last 5 rounds over seeds, the
mean drop against the same defence without attack (paired by seed) and its worst seed, and for CEAS the gap to the
best classical rule of that cell (best by mean accuracy; paired, worst seed).

    python benchmarks/matrix_at_scale.py [--seeds 12] [--workers 2] [--datasets breast_cancer wine iris]
        [--fractions 0.1 0.2 0.3 0.4] [--alpha 0.3]

Writes ``benchmarks/results/matrix_at_scale_<dataset>.json``; ``--summary`` prints the tables of docs/security.md from
the files present.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from ceas.config import load_config
from ceas.experiment.grid import Cell, run_grid

RESULTS = Path(__file__).parent / "results"
RANDOM = ['scheduling.policy="random"', "consensus.fidelity_weighting=false", "consensus.norm_bound=false"]
DEFENCES = {
    "FedAvg": [*RANDOM, 'consensus.aggregator="mean"'],
    "median": [*RANDOM, 'consensus.aggregator="median"'],
    "trimmed-mean": [*RANDOM, 'consensus.aggregator="trimmed-mean"'],
    "geometric-median": [*RANDOM, 'consensus.aggregator="geometric-median"'],
    "centered-clipping": [*RANDOM, 'consensus.aggregator="centered-clipping"'],
    "krum": [*RANDOM, 'consensus.aggregator="krum"'],
    "CEAS": [
        'scheduling.policy="ceas"',
        'consensus.aggregator="trimmed-mean"',
        "consensus.fidelity_weighting=true",
    ],
}
CLASSICAL = ("median", "trimmed-mean", "geometric-median", "centered-clipping", "krum")
SLICE_DEFENCES = ("FedAvg", "median", "CEAS")


def _cells(args, dataset: str) -> tuple[list[Cell], list[tuple]]:
    partitions = {"iid": [], f"dirichlet-{args.alpha}": [
        'data.partition="dirichlet"', f"data.alpha={args.alpha}"]}  # fmt: skip
    cells, keys = [], []
    out = args.out / dataset
    for part, pset in partitions.items():
        for frac in args.fractions:
            for attack in ["none", *args.full_attacks, *args.slice_attacks]:
                names = DEFENCES if attack in ["none", *args.full_attacks] else SLICE_DEFENCES
                for defence in names:
                    if defence == "krum" and 10 < 2 * int(frac * 10) + 3:
                        continue  # Krum refuses f = floor(fraction * 10 seats) with n < 2f + 3
                    for seed in range(args.seeds):
                        extra = [
                            "broker.enabled=true",
                            f"security.byzantine_fraction={frac}",
                            f"security.attacks={'[]' if attack == 'none' else json.dumps([attack])}",
                            f'data.dataset="{dataset}"',
                            f"run.seed={seed}",
                            f'run.name="{part}-f{frac}-{attack}-{defence}-s{seed}"',
                            f"run.out_dir={json.dumps(str(out))}",
                            *pset,
                            *DEFENCES[defence],
                        ]
                        params = {"partition": part, "fraction": frac, "attack": attack,
                                  "defence": defence, "seed": seed}  # fmt: skip
                        cells.append(Cell(load_config("quick", extra), params))
                        keys.append((part, frac, attack, defence))
    return cells, keys


def _table(keys, results) -> dict:
    acc: dict = {}
    for (part, frac, attack, defence), res in zip(keys, results):
        a = float(np.nanmean([r["test_accuracy"] for r in res["metrics"][-5:]]))
        acc.setdefault(f"{part}|{frac}", {}).setdefault(attack, {}).setdefault(defence, []).append(a)
    table: dict = {}
    for cell, rows in acc.items():
        for attack, row in rows.items():
            out = {}
            for defence, v in row.items():
                v = np.array(v)
                drop = v - np.array(rows["none"][defence])
                out[defence] = {"accuracy": float(v.mean()), "drop": float(drop.mean()),
                                "drop_worst": float(drop.min()), "per_seed": v.tolist()}  # fmt: skip
            classical = [d for d in CLASSICAL if d in row]
            if "CEAS" in row and classical:
                best = max(classical, key=lambda d: out[d]["accuracy"])
                gap = np.array(row["CEAS"]) - np.array(row[best])
                out["CEAS"]["best_classical"] = best
                out["CEAS"]["vs_best"] = float(gap.mean())
                out["CEAS"]["vs_best_worst"] = float(gap.min())
            table.setdefault(cell, {})[attack] = out
    return table


def _summary(files: list[Path]) -> None:
    for f in files:
        d = json.loads(f.read_text())
        print(f"\n{d['dataset']} ({d['seeds']} seeds, {d['wall_seconds']:.0f} s): CEAS drop against its own run "
              "without attack (worst seed) | CEAS − best classical rule of the cell (worst seed)\n")  # fmt: skip
        attacks = sorted({a for rows in d["table"].values() for a in rows if a != "none"})
        print("| partition | fraction | none: CEAS − best | " + " | ".join(attacks) + " |")
        print("|---|---|---|" + "---|" * len(attacks))
        for cell, rows in d["table"].items():
            part, frac = cell.split("|")
            c0 = rows["none"]["CEAS"]
            first = f"{100 * c0.get('vs_best', float('nan')):+.1f} ({100 * c0.get('vs_best_worst', float('nan')):+.1f})"
            out = []
            for a in attacks:
                c = rows[a]["CEAS"]
                txt = f"{100 * c['drop']:+.1f} ({100 * c['drop_worst']:+.1f})"
                if "vs_best" in c:
                    txt += f" \\| {100 * c['vs_best']:+.1f} ({100 * c['vs_best_worst']:+.1f}) vs {c['best_classical']}"
                out.append(txt)
            print(f"| {part} | {frac} | {first} | " + " | ".join(out) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--datasets", nargs="+", default=["breast_cancer", "wine", "iris"])
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.1, 0.2, 0.3, 0.4])
    ap.add_argument("--alpha", type=float, default=0.3)
    ap.add_argument("--full-attacks", nargs="+", default=["adaptive", "scaled-negative-mean"])
    ap.add_argument("--slice-attacks", nargs="+", default=["alie", "ipm", "sign-flip"])
    ap.add_argument("--out", type=Path, default=Path("runs/matrix-at-scale"))
    ap.add_argument("--summary", action="store_true", help="print the tables from the result files and stop")
    args = ap.parse_args()
    files = [RESULTS / f"matrix_at_scale_{d}.json" for d in args.datasets]
    if args.summary:
        _summary([f for f in files if f.exists()])
        return
    for dataset, path in zip(args.datasets, files):
        cells, keys = _cells(args, dataset)
        t0 = time.perf_counter()
        grid = run_grid(cells, out=args.out / dataset, workers=args.workers, progress=True)
        wall = time.perf_counter() - t0
        print(grid.line(), flush=True)
        path.write_text(json.dumps({
            "machine": platform.platform(),
            "config": "quick preset + broker.enabled: 50 nodes, 10 seats, 30 rounds, quantum payloads",
            "dataset": dataset, "seeds": args.seeds, "alpha": args.alpha, "fractions": args.fractions,
            "full_attacks": args.full_attacks, "slice_attacks": args.slice_attacks,
            "slice_defences": list(SLICE_DEFENCES), "cells": len(cells), "wall_seconds": round(wall, 1),
            "table": _table(keys, grid.results),
        }, indent=1) + "\n")  # fmt: skip
    _summary([f for f in files if f.exists()])


if __name__ == "__main__":
    main()
