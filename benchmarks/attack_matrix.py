"""Attack matrix (issue 6): every attack x {FedAvg, median, Krum, CEAS} at 10 Byzantine of 50 nodes, quick config.

Each cell is the final test accuracy (mean of the last 5 rounds, and over seeds) of a run through the broker and the
network. The no-attack column is measured in the same run. Writes benchmarks/results/attack_matrix.json and prints
the Markdown table pasted into docs/security.md.

    python benchmarks/attack_matrix.py [--seeds 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from ceas.config import load_config
from ceas.experiment.reproduce import run_many
from ceas.security.params import ATTACK_NAMES

DEFENCES = {
    "FedAvg": [
        'scheduling.policy="random"',
        'consensus.aggregator="mean"',
        "consensus.fidelity_weighting=false",
    ],
    "median": [
        'scheduling.policy="random"',
        'consensus.aggregator="median"',
        "consensus.fidelity_weighting=false",
    ],
    "Krum": [
        'scheduling.policy="random"',
        'consensus.aggregator="krum"',
        "consensus.fidelity_weighting=false",
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
    args = ap.parse_args()
    attacks = ["none", *ATTACK_NAMES]
    configs, keys = [], []
    for attack in attacks:
        for defence, settings in DEFENCES.items():
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
                    *settings,
                ]
                configs.append(load_config("quick", extra))
                keys.append((attack, defence))
    t0 = time.perf_counter()
    results = run_many(configs, workers=args.workers, progress=True)
    wall = time.perf_counter() - t0
    cells: dict[str, dict[str, list[float]]] = {}
    for (attack, defence), res in zip(keys, results):
        acc = float(np.nanmean([r["test_accuracy"] for r in res["metrics"][-5:]]))
        cells.setdefault(attack, {}).setdefault(defence, []).append(acc)
    table = {a: {d: float(np.mean(v)) for d, v in row.items()} for a, row in cells.items()}
    out = {
        "machine": platform.platform(),
        "config": "quick preset + broker.enabled, 50 nodes, 10 Byzantine (20 %), 30 rounds",
        "payload": args.payload,
        "seeds": args.seeds,
        "wall_seconds": round(wall, 1),
        "accuracy": table,
    }
    path = Path(__file__).parent / "results" / f"attack_matrix_{args.payload}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    base = table["none"]
    lines = ["| attack | " + " | ".join(DEFENCES) + " |", "|---" * (len(DEFENCES) + 1) + "|"]
    for attack in attacks:
        row = table[attack]
        cells_txt = []
        for d in DEFENCES:
            drop = 100 * (base[d] - row[d])
            cells_txt.append(
                f"{100 * row[d]:.1f}" + ("" if attack == "none" else f" ({-drop:+.1f})")
            )
        lines.append(f"| {attack} | " + " | ".join(cells_txt) + " |")
    print("\n".join(lines))
    worst = max(100 * (base["CEAS"] - table[a]["CEAS"]) for a in attacks)
    print(f"\nCEAS worst drop against its no-attack run: {worst:.1f} points (target <= 5)")


if __name__ == "__main__":
    main()
