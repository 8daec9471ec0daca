"""A 12-qubit register over 3 QPUs of 4 qubits, trained end to end through the broker, beside the monolithic
12-qubit model (issue 13): ``configs/split-circuit-12q.toml`` against ``configs/monolithic-12q.toml`` (the same data,
circuit, nodes, shots, noise range and schedule; 2 minibatch gradients of 8 samples per round), paired by seed.

Per run: test accuracy (mean of the last 4 rounds, and final), seconds of wall time per round, and for the split
register its QPU-QPU pairs per round, their mean fidelity at use and the round's simulated duration.

Run: ``python benchmarks/split_register.py --seeds 5`` (about 15 minutes on 2 cores). Writes
``benchmarks/results/split_register.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"split-circuit": "split-circuit-12q", "monolithic": "monolithic-12q"}


def one(job: tuple[str, int, str]) -> dict:
    kind, seed, out_dir = job
    from ceas.config import load_config
    from ceas.experiment.runner import run

    cfg = load_config(
        str(ROOT / "configs" / f"{CONFIGS[kind]}.toml"),
        [f"run.seed={seed}", f"run.name={kind}-s{seed}", f"run.out_dir={json.dumps(out_dir)}"],
    )
    start = time.perf_counter()
    rows = run(cfg, progress=False, overwrite=True, plots=False).metrics
    wall = time.perf_counter() - start
    out = {
        "kind": kind,
        "seed": seed,
        "accuracy_last4": float(np.nanmean([r["test_accuracy"] for r in rows[-4:]])),
        "final_accuracy": float(rows[-1]["test_accuracy"]),
        "wall_s_per_round": wall / len(rows),
    }
    if kind == "split-circuit":
        out["qpu_pairs_per_round"] = float(np.mean([r["circuit_pairs"] for r in rows]))
        out["pair_fidelity"] = float(np.nanmean([r["circuit_fidelity"] for r in rows]))
        out["round_time_s"] = float(np.mean([r["round_time_s"] for r in rows]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "runs" / "split_register"))
    args = parser.parse_args()
    jobs = [(kind, seed, args.out) for seed in range(args.seeds) for kind in CONFIGS]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(one, jobs))
    split = {r["seed"]: r for r in rows if r["kind"] == "split-circuit"}
    mono = {r["seed"]: r for r in rows if r["kind"] == "monolithic"}
    diff = np.array([split[s]["accuracy_last4"] - mono[s]["accuracy_last4"] for s in split])
    summary: dict = {}
    for kind in CONFIGS:
        mine = [r for r in rows if r["kind"] == kind]
        keys = [k for k in mine[0] if k not in ("kind", "seed")]
        summary[kind] = {k: float(np.mean([r[k] for r in mine])) for k in keys}
        summary[kind]["worst_seed_accuracy_last4"] = float(min(r["accuracy_last4"] for r in mine))
    summary["split_minus_monolithic_points"] = {
        "mean": float(100 * diff.mean()),
        "ci95": float(100 * 1.96 * diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0,
        "worst_seed": float(100 * diff.min()),
    }
    result = {"rows": rows, "summary": summary}
    (ROOT / "benchmarks" / "results" / "split_register.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
