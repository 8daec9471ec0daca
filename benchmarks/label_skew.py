"""Label skew and the schedule's seating bias (issue 12, item 2): CEAS with and without inclusion weighting.

Quick configuration through the broker (50 nodes, 10 Byzantine, 10 seats, 30 rounds, quantum payloads), IID shards and
Dirichlet label skew, each attack against FedAvg (random seating, mean), the median rule, CEAS as shipped and CEAS with
``consensus.inclusion_weighting = true``; paired seeds. Final accuracy = mean test accuracy of the last 5 rounds.
Also the ablation that locates the cost of CEAS under skew without attack (``--ablation``): FedAvg plus one CEAS
component at a time.

    python benchmarks/label_skew.py [--seeds 10] [--workers 2] [--alpha 0.3] [--dataset breast_cancer]
        [--attacks adaptive scaled-negative-mean alie] [--ablation] [--set key=value ... --tag NAME]

Writes ``benchmarks/results/label_skew[_<dataset>][_ablation].json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from scipy import stats

from ceas.config import load_config
from ceas.experiment.grid import Cell, run_grid

RESULTS = Path(__file__).parent / "results"
FEDAVG = [
    'scheduling.policy="random"',
    'consensus.aggregator="mean"',
    "consensus.fidelity_weighting=false",
    "consensus.norm_bound=false",
]
CEAS = [
    'scheduling.policy="ceas"',
    'consensus.aggregator="trimmed-mean"',
    "consensus.fidelity_weighting=true",
]
DEFENCES = {
    "FedAvg": FEDAVG,
    "median": FEDAVG[:1] + ['consensus.aggregator="median"'] + FEDAVG[2:],
    "CEAS": CEAS,
    "CEAS+inclusion": CEAS + ["consensus.inclusion_weighting=true"],
}
# FedAvg plus one CEAS component at a time (no attack): which one costs accuracy under skew
ABLATION = {
    "FedAvg": FEDAVG,
    "+ ceas seating": ['scheduling.policy="ceas"'] + FEDAVG[1:],
    "+ ceas seating, inclusion weights": [
        'scheduling.policy="ceas"',
        'consensus.aggregator="weighted-mean"',
        "consensus.fidelity_weighting=false",
        "consensus.norm_bound=false",
        "consensus.inclusion_weighting=true",
    ],
    "+ fidelity weights (weighted mean)": FEDAVG[:1]
    + ['consensus.aggregator="weighted-mean"', "consensus.fidelity_weighting=true"]
    + FEDAVG[3:],
    "+ trimmed mean": FEDAVG[:1] + ['consensus.aggregator="trimmed-mean"'] + FEDAVG[2:],
    "+ norm bound": FEDAVG[:3] + ["consensus.norm_bound=true"],
    "CEAS": CEAS,
    "CEAS + inclusion weights": CEAS + ["consensus.inclusion_weighting=true"],
    "CEAS + inclusion weights, no fidelity weights": CEAS[:2]
    + ["consensus.fidelity_weighting=false", "consensus.inclusion_weighting=true"],
}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--alpha", type=float, default=0.3)
    ap.add_argument("--dataset", default="breast_cancer")
    ap.add_argument(
        "--attacks", nargs="+", default=["adaptive", "scaled-negative-mean", "alie"]
    )
    ap.add_argument("--ablation", action="store_true", help="no attack; FedAvg + one component")
    ap.add_argument("--preset", default="quick", help="base configuration (quick or paper)")
    ap.add_argument("--partitions", nargs="+", default=["iid", "dirichlet"], choices=["iid", "dirichlet"])
    ap.add_argument("--defences", nargs="+", default=None, help="subset of the defences")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="section.key=value (all cells)")
    ap.add_argument("--tag", default="", help="suffix of the results file (e.g. fixed-scale)")
    ap.add_argument("--out", type=Path, default=Path("runs/label-skew"))
    args = ap.parse_args()
    partitions = {"iid": [], f"dirichlet-{args.alpha}": [
        'data.partition="dirichlet"', f"data.alpha={args.alpha}"]}  # fmt: skip
    defences = ABLATION if args.ablation else DEFENCES
    if args.defences:
        defences = {d: defences[d] for d in dict.fromkeys(["FedAvg", *args.defences])}
    partitions = {k: v for k, v in partitions.items() if k.split("-")[0] in args.partitions}
    attacks = ["none"] if args.ablation else ["none", *args.attacks]
    if args.ablation:
        partitions = {k: v for k, v in partitions.items() if k != "iid"}
    cells, keys = [], []
    for part, pset in partitions.items():
        for attack in attacks:
            for defence, dset in defences.items():
                for seed in range(args.seeds):
                    extra = [
                        "broker.enabled=true",
                        "security.byzantine_fraction=0.2",
                        f"security.attacks={'[]' if attack == 'none' else json.dumps([attack])}",
                        f'data.dataset="{args.dataset}"',
                        f"run.seed={seed}",
                        f'run.name="{part}-{attack}-{_slug(defence)}-s{seed}"',
                        f"run.out_dir={json.dumps(str(args.out / (args.preset + args.dataset + args.tag)))}",
                        *pset,
                        *args.overrides,
                        *dset,
                    ]
                    cells.append(Cell(load_config(args.preset, extra), {
                        "partition": part, "attack": attack, "defence": defence, "seed": seed}))  # fmt: skip
                    keys.append((part, attack, defence))
    t0 = time.perf_counter()
    grid = run_grid(
        cells, out=args.out / (args.preset + args.dataset + args.tag), workers=args.workers, progress=True
    )
    wall = time.perf_counter() - t0
    print(grid.line())
    acc: dict = {}
    for (part, attack, defence), res in zip(keys, grid.results):
        a = float(np.nanmean([r["test_accuracy"] for r in res["metrics"][-5:]]))
        acc.setdefault(part, {}).setdefault(attack, {}).setdefault(defence, []).append(a)
    table: dict = {}
    for part, rows in acc.items():
        ref = np.array(rows["none"]["FedAvg"])
        for attack, row in rows.items():
            for defence, v in row.items():
                v = np.array(v)
                own = v - np.array(rows["none"][defence])
                vs = v - ref
                half = float(stats.t.ppf(0.975, len(v) - 1) * vs.std(ddof=1) / np.sqrt(len(v)))
                table.setdefault(part, {}).setdefault(attack, {})[defence] = {
                    "accuracy": float(v.mean()),
                    "vs_fedavg_no_attack": float(vs.mean()),
                    "vs_fedavg_ci95": half,
                    "vs_fedavg_worst": float(vs.min()),
                    "drop_vs_own_no_attack": float(own.mean()),
                    "drop_worst": float(own.min()),
                    "per_seed": v.tolist(),
                }
    out = {
        "machine": platform.platform(),
        "config": f"{args.preset} preset + broker.enabled, 20 % Byzantine, quantum payloads",
        "dataset": args.dataset,
        "seeds": args.seeds,
        "alpha": args.alpha,
        "overrides": args.overrides,
        "wall_seconds": round(wall, 1),
        "table": table,
    }
    name = "label_skew" + ("" if args.dataset == "breast_cancer" else f"_{args.dataset}")
    name += "" if args.preset == "quick" else f"_{args.preset}"
    name += "_ablation" if args.ablation else ""
    name += f"_{args.tag}" if args.tag else ""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    for part, rows in table.items():
        print(f"\n{part} ({args.dataset}, {args.seeds} seeds): accuracy (vs FedAvg without attack, 95 % "
              "interval, worst seed)\n")  # fmt: skip
        names = list(defences)
        print("| attack | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for attack, row in rows.items():
            cells_ = [
                f"{100 * row[d]['accuracy']:.1f} ({100 * row[d]['vs_fedavg_no_attack']:+.1f} ± "
                f"{100 * row[d]['vs_fedavg_ci95']:.1f}; worst {100 * row[d]['vs_fedavg_worst']:+.1f})"
                for d in names
            ]
            print(f"| {attack} | " + " | ".join(cells_) + " |")


if __name__ == "__main__":
    main()
