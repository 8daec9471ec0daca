"""What the stamp and the node's noise mitigation change in learning: paired seeds, paper configuration (issue 11).

Variants (each pins its stamp, weighting and mitigation, so the defaults do not matter):

* ``paper-stamp``: φ = S·F̂_Q·v² weights, nodes send what they measure (the defaults before issue 11);
* ``mse-stamp``: φ = 1 / the node's predicted MSE of its update as delivered, no mitigation;
* ``mse-stamp-mitigation``: the same, each node dividing its measurements by its known contraction;
* ``no-weighting-mitigation`` / ``no-weighting``: equal weights in the robust rule (the scheduler still sees paper
  stamps), with and without mitigation.

Per variant and seed: test accuracy (mean of the last 10 rounds) and the mean aggregate MSE about the honest
full-batch gradient. Differences against ``paper-stamp`` are paired by seed, with a 95 % interval (1.96 standard
errors) and the worst seed.

Run:  ``python benchmarks/stamp_ablation.py --seeds 10`` (honest nodes) and ``... --attack`` (the paper's default
attack, 20 % Byzantine); about 10 minutes each on 2 cores. Writes ``benchmarks/results/stamp_ablation_<case>.json``.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "paper-stamp": ['consensus.stamp="paper"', 'noise.mitigation="off"'],
    "mse-stamp": ['consensus.stamp="mse"', 'noise.mitigation="off"'],
    "mse-stamp-mitigation": ['consensus.stamp="mse"', 'noise.mitigation="calibrated"'],
    "no-weighting-mitigation": [
        'consensus.stamp="paper"',
        "consensus.fidelity_weighting=false",
        'noise.mitigation="calibrated"',
    ],
    "no-weighting": [
        'consensus.stamp="paper"',
        "consensus.fidelity_weighting=false",
        'noise.mitigation="off"',
    ],
}


def one(job: tuple[str, int, tuple[str, ...], str]) -> tuple[str, int, float, float]:
    name, seed, extra, out_dir = job
    from ceas.config import load_config
    from ceas.experiment.runner import run

    overrides = [
        f"run.seed={seed}",
        f"run.name={name}-s{seed}",
        f"run.out_dir={json.dumps(out_dir)}",
        *extra,
        *VARIANTS[name],
    ]
    rows = run(load_config("paper", overrides), progress=False, overwrite=True, plots=False).metrics
    acc = float(np.nanmean([r["test_accuracy"] for r in rows[-10:]]))
    mse = float(np.nanmean([r["aggregate_mse"] for r in rows]))
    return name, seed, acc, mse


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument(
        "--attack", action="store_true", help="keep the paper's 20 %% Byzantine (else honest)"
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--runs", type=Path, default=Path("runs/stamp_ablation"))
    args = p.parse_args(argv)
    case = "attack" if args.attack else "honest"
    extra = () if args.attack else ("security.byzantine_fraction=0.0",)
    jobs = [(n, s, extra, str(args.runs / case)) for n in VARIANTS for s in range(args.seeds)]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(one, jobs))
    acc = {n: np.array([a for m, s, a, _ in sorted(rows) if m == n]) for n in VARIANTS}
    mse = {n: np.array([e for m, s, _, e in sorted(rows) if m == n]) for n in VARIANTS}
    base = acc["paper-stamp"]
    summary = {}
    for n in VARIANTS:
        d = 100 * (acc[n] - base)
        half = 1.96 * d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
        summary[n] = {
            "accuracy_mean": float(acc[n].mean()),
            "paired_diff_points": float(d.mean()),
            "ci95_points": float(half),
            "worst_seed_diff_points": float(d.min()),
            "aggregate_mse_mean": float(mse[n].mean()),
            "per_seed_accuracy": acc[n].tolist(),
        }
        print(
            f"{n:26s} acc {acc[n].mean():.4f}  vs paper-stamp {d.mean():+.2f} ± {half:.2f} "
            f"(worst seed {d.min():+.2f})  aggregate MSE {mse[n].mean():.5f}"
        )
    out = ROOT / "benchmarks" / "results" / f"stamp_ablation_{case}.json"
    out.write_text(
        json.dumps(
            {"seeds": args.seeds, "case": case, "variants": VARIANTS, "summary": summary}, indent=1
        )
    )
    print(f"wrote {out}")
    return summary


if __name__ == "__main__":
    main()
