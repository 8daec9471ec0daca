"""Attack matrix (issue 6): every attack x {FedAvg, median, Krum, CEAS} at 10 Byzantine of 50 nodes, quick config.

Each cell is the final test accuracy (mean of the last 5 rounds, and over seeds) of a run through the broker and the
network. The no-attack column is measured in the same run. Writes benchmarks/results/attack_matrix.json and prints
the Markdown table pasted into docs/security.md.

    python benchmarks/attack_matrix.py [--seeds 2] [--workers 2] [--payload quantum|classical]
        [--attacks sign-flip adaptive ...] [--defences CEAS ...] [--set key=value ...] [--fresh]
        [--backend local|ray] [--address auto|HOST:PORT] [--retries 2]

A subset (--attacks / --defences / --set) is written to benchmarks/results/attack_matrix_<payload>_subset.json so the
committed full matrix is only replaced by a full run. The matrix is a grid (``ceas.experiment.grid``): a finished
run is reused only for the same configuration, code version and plugins, so a code change reruns it without
--fresh; every round of every cell lands in ``<out>/<payload>/dataset`` (columns attack, defence, seed, payload),
queryable with ``ceas results query``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from ceas.config import load_config
from ceas.experiment.grid import Cell, run_grid
from ceas.security.attacks import ATTACKS

# every registered attack a trusted-broker data-level run can use (equivocation and the agreement attacks need
# agreement without a trusted broker; state attacks need a split circuit)
ATTACK_NAMES = tuple(
    n for n in ATTACKS.names() if ATTACKS[n].surface not in ("equivocation", "agreement", "state")
)

DEFENCES = {
    "FedAvg": [
        'scheduling.policy="random"',
        'consensus.aggregator="mean"',
        "consensus.fidelity_weighting=false",
        "consensus.norm_bound=false",
    ],
    "median": [
        'scheduling.policy="random"',
        'consensus.aggregator="median"',
        "consensus.fidelity_weighting=false",
        "consensus.norm_bound=false",
    ],
    "Krum": [
        'scheduling.policy="random"',
        'consensus.aggregator="krum"',
        "consensus.fidelity_weighting=false",
        "consensus.norm_bound=false",
    ],
    "CEAS": [
        'scheduling.policy="ceas"',
        'consensus.aggregator="trimmed-mean"',
        "consensus.fidelity_weighting=true",
    ],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/attack-matrix"))
    ap.add_argument("--payload", choices=["quantum", "classical"], default="quantum")
    ap.add_argument("--attacks", nargs="+", choices=list(ATTACK_NAMES), default=list(ATTACK_NAMES))
    ap.add_argument("--defences", nargs="+", choices=list(DEFENCES), default=list(DEFENCES))
    ap.add_argument(
        "--set", dest="overrides", action="append", default=[], help="section.key=value"
    )
    ap.add_argument(
        "--fresh", action="store_true", help="delete earlier runs of this payload first"
    )
    ap.add_argument("--backend", choices=["local", "ray"], default="local")
    ap.add_argument("--address", default=None, help="with --backend ray: auto or HOST:PORT")
    ap.add_argument("--retries", type=int, default=2, help="extra attempts of a failed cell")
    args = ap.parse_args()
    attacks = ["none", *args.attacks]
    defences = {d: DEFENCES[d] for d in args.defences}
    subset = (
        len(args.attacks) < len(ATTACK_NAMES) or len(defences) < len(DEFENCES) or args.overrides
    )
    if args.fresh:
        shutil.rmtree(args.out / args.payload, ignore_errors=True)
    cells, keys = [], []
    for attack in attacks:
        for defence, settings in defences.items():
            for seed in range(args.seeds):
                names = "[]" if attack == "none" else json.dumps([attack])
                extra = [
                    "broker.enabled=true",
                    "security.byzantine_fraction=0.2",
                    f'broker.payload="{args.payload}"',
                    f"security.attacks={names}",
                    f"run.seed={seed}",
                    f'run.name="{attack}-{defence}-s{seed}"',
                    f"run.out_dir={json.dumps(str(args.out / args.payload))}",
                    *args.overrides,
                    *settings,
                ]
                params = {
                    "attack": attack,
                    "defence": defence,
                    "seed": seed,
                    "payload": args.payload,
                }
                cells.append(Cell(load_config("quick", extra), params))
                keys.append((attack, defence))
    t0 = time.perf_counter()
    grid = run_grid(
        cells, out=args.out / args.payload, backend=args.backend, address=args.address,
        workers=args.workers, retries=args.retries, progress=True,
    )  # fmt: skip
    results = grid.results
    wall = time.perf_counter() - t0
    print(grid.line())
    cells: dict[str, dict[str, list[float]]] = {}
    for (attack, defence), res in zip(keys, results):
        acc = float(np.nanmean([r["test_accuracy"] for r in res["metrics"][-5:]]))
        cells.setdefault(attack, {}).setdefault(defence, []).append(acc)
    table = {a: {d: float(np.mean(v)) for d, v in row.items()} for a, row in cells.items()}
    # paired by seed against the same defence without attack: the worst seed beside every mean
    worst = {
        a: {d: float(np.min(np.array(v) - np.array(cells["none"][d]))) for d, v in row.items()}
        for a, row in cells.items()
    }
    out = {
        "machine": platform.platform(),
        "config": "quick preset + broker.enabled, 50 nodes, 10 Byzantine (20 %), 30 rounds",
        "payload": args.payload,
        "seeds": args.seeds,
        "overrides": args.overrides,
        "wall_seconds": round(wall, 1),
        "backend": args.backend,
        "accuracy": table,
        "worst_seed_change": worst,
        "per_seed": cells,
    }
    name = f"attack_matrix_{args.payload}{'_subset' if subset else ''}.json"
    path = Path(__file__).parent / "results" / name
    path.write_text(json.dumps(out, indent=2) + "\n")
    base = table["none"]
    lines = ["| attack | " + " | ".join(defences) + " |", "|---" * (len(defences) + 1) + "|"]
    for attack in attacks:
        row = table[attack]
        cells_txt = []
        for d in defences:
            drop = 100 * (base[d] - row[d])
            cells_txt.append(
                f"{100 * row[d]:.1f}"
                + (
                    ""
                    if attack == "none"
                    else f" ({-drop:+.1f}; worst {100 * worst[attack][d]:+.1f})"
                )
            )
        lines.append(f"| {attack} | " + " | ".join(cells_txt) + " |")
    print("\n".join(lines))
    if "CEAS" in defences:
        worst = max(100 * (base["CEAS"] - table[a]["CEAS"]) for a in attacks)
        print(f"\nCEAS worst drop against its no-attack run: {worst:.1f} points (target <= 5)")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
