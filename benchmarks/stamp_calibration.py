"""Do the stamps predict the error of what is delivered? In-situ calibration and Proposition 1 (issue 11).

For each variant (node mitigation off / calibrated) this trains the paper configuration with honest nodes through the
broker and, every ``--every`` rounds, redraws every honest participant's delivered update ``--draws`` times
(:mod:`ceas.experiment.calibration`): fresh shots on the same minibatch, fresh payload measurements through the same
pairs. It reports, over node-rounds, the Spearman correlation and the median ratio of each stamp (the predicted-MSE
stamp and the paper's S·F̂_Q·v²) against the measured 1/MSE about the noiseless gradient of the same minibatch, and
Proposition 1 in situ: the φ-weighted mean's noise error against the uniform mean's, beside the ratio the stamps
predict, and the same for the configured robust rule.

Run:  ``python benchmarks/stamp_calibration.py`` (about a minute per variant on 2 idle cores); options ``--rounds``,
``--every``, ``--draws``, ``--seed``. Writes ``benchmarks/results/stamp_calibration.json`` and
``docs/figures/stamp_calibration.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "mitigation off": ['noise.mitigation="off"'],
    "mitigation calibrated": ['noise.mitigation="calibrated"'],
}


def measure(args) -> dict:
    from ceas.config import load_config
    from ceas.experiment.calibration import calibrate, summarise

    out = {}
    for name, extra in VARIANTS.items():
        overrides = [
            "security.byzantine_fraction=0.0",
            f"run.rounds={args.rounds}",
            f"run.seed={args.seed}",
            'consensus.stamp="mse"',
            *extra,
        ]
        cfg = load_config("paper", overrides)
        start = time.perf_counter()
        cal = calibrate(cfg, every=args.every, draws=args.draws, seed=args.seed)
        out[name] = {
            "overrides": overrides,
            "summary": summarise(cal),
            "wall_s": time.perf_counter() - start,
            "node_rounds": {k: v.tolist() for k, v in cal.arrays().items()},
            "proposition1": cal.prop1,
        }
        print(name, json.dumps(out[name]["summary"], indent=1))
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4.4), dpi=120)
    for ax, (name, res) in zip(np.atleast_1d(axes), results.items()):
        a = {k: np.asarray(v) for k, v in res["node_rounds"].items()}
        inv = 1.0 / a["measured_mse"]
        s = res["summary"]
        ax.loglog(
            inv,
            a["phi_mse"],
            "o",
            ms=4,
            alpha=0.7,
            label=f"predicted-MSE stamp (Spearman {s['phi_mse']['spearman']:.2f})",
        )
        paper = a["phi_paper"] * np.median(
            inv / a["phi_paper"]
        )  # rescaled: its units are arbitrary
        ax.loglog(
            inv,
            paper,
            "x",
            ms=4,
            alpha=0.6,
            label=f"paper S·F_Q·v², rescaled (Spearman {s['phi_paper']['spearman']:.2f})",
        )
        lo, hi = inv.min() / 1.5, inv.max() * 1.5
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="prediction = measurement")
        ax.set_xlabel("measured 1 / MSE of the delivered update")
        ax.set_ylabel("stamp φ")
        ax.set_title(f"{name}: {s['node_rounds']} node-rounds")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3, which="both")
    fig.suptitle("In-situ stamp calibration (paper config, honest nodes)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--draws", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "stamp_calibration.json"
    )
    p.add_argument(
        "--figure", type=Path, default=ROOT / "docs" / "figures" / "stamp_calibration.png"
    )
    args = p.parse_args(argv)
    results = measure(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "args": vars(args) | {"out": str(args.out), "figure": str(args.figure)},
                "results": results,
            },
            indent=1,
        )
    )
    plot(results, args.figure)
    print(f"wrote {args.out} and {args.figure}")
    return results


if __name__ == "__main__":
    main()
