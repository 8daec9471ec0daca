"""Agreement without a trusted broker (issue 15): accuracy and cost against the trusted mode, paired by seed.

Paper preset (``configs/paper.toml``: 50 nodes, m = 10, 100 rounds, 20 % Byzantine), adaptive gradient attack, seeds
0 … S−1, three arms per seed:

* ``trusted``: ``consensus.trusted_broker = true`` (the paper's setting);
* ``decentralised``: ``consensus.trusted_broker = false`` at the default pairwise seed keys
  (``security.seed_key_bits``), the key-aware scheduler seating only participants whose pairwise pools can pay an
  agreement attempt (``docs/consensus.md``);
* ``decentralised-wrong-digest``: the same with a Byzantine aggregator proposing a wrong digest whenever it leads.

Reported per arm: final test accuracy (mean ± 95 % t-interval), decentralised − trusted paired by seed (mean ± 95 %
t-interval, worst seed), rounds agreed, failed attempts (all detected), rounds outside n > 3f, participants and
Byzantine participants per round, agreement tags and key bits per round, key pairs, utilisation (last round,
cumulative). ``--cost`` adds the cost per round at N = 50 and N = 200 (m = 10, honest, first ``--cost-rounds``
rounds), where the pre-shared pairwise key material N(N − 1)/2 seeds is what grows.

    python benchmarks/decentralised.py --seeds 10 --workers 2 --cost

Writes ``benchmarks/results/decentralised.json``. Every run is a grid cell (``ceas.experiment.grid``), reused when
its configuration and code match.
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
from ceas.experiment.reproduce import _mean_ci

ROOT = Path(__file__).resolve().parents[1]
ARMS = {
    "trusted": [],
    "decentralised": ["consensus.trusted_broker=false"],
    "decentralised-wrong-digest": [
        "consensus.trusted_broker=false",
        'security.attacks=["adaptive", "wrong-digest"]',
    ],
}
BASE = ["broker.enabled=true", 'security.attacks=["adaptive"]']


def cells(seeds: int, out: Path, rounds: int) -> list[Cell]:
    grid = []
    for arm, extra in ARMS.items():
        for seed in range(seeds):
            name = f"{arm}-s{seed}"
            cfg = load_config(
                str(ROOT / "configs" / "paper.toml"),
                [
                    *BASE,
                    *extra,
                    f"run.rounds={rounds}",
                    f"run.seed={seed}",
                    f"run.name={json.dumps(name)}",
                    f"run.out_dir={json.dumps(str(out))}",
                ],
            )
            grid.append(Cell(cfg, {"arm": arm, "seed": seed}))
    return grid


def cost_cells(out: Path, rounds: int) -> list[Cell]:
    grid = []
    for n in (50, 200):
        name = f"cost-n{n}"
        cfg = load_config(
            str(ROOT / "configs" / "paper.toml"),
            [
                "broker.enabled=true",
                "consensus.trusted_broker=false",
                "security.byzantine_fraction=0.0",
                f"training.nodes={n}",
                f"run.rounds={rounds}",
                f"run.name={json.dumps(name)}",
                f"run.out_dir={json.dumps(str(out))}",
            ],
        )
        grid.append(Cell(cfg, {"nodes": n}))
    return grid


def _per_round(rows: list[dict], key: str) -> float:
    return float(np.mean([r.get(key, 0) for r in rows]))


def arm_summary(runs: dict[int, list[dict]]) -> dict:
    """One arm over its seeds: accuracy, agreement and cost (mean ± 95 % half-width over seeds)."""
    seeds = sorted(runs)

    def over(f) -> list[float]:
        return list(_mean_ci([f(runs[s]) for s in seeds]))

    out = {
        "seeds": len(seeds),
        "final_accuracy": over(lambda rows: rows[-1]["test_accuracy"]),
        "utilisation": over(lambda rows: rows[-1]["utilisation"]),
        "participants_per_round": over(lambda rows: _per_round(rows, "participants")),
        "byzantine_participants_per_round": over(
            lambda rows: _per_round(rows, "byzantine_participants")
        ),
        "key_pairs_per_round": over(lambda rows: _per_round(rows, "key_pairs")),
        "pairs_generated_per_round": over(lambda rows: _per_round(rows, "pairs_generated")),
    }
    if "agreed" in runs[seeds[0]][0]:
        out.update(
            rounds_agreed=over(lambda rows: float(sum(r["agreed"] for r in rows))),
            rounds_held=over(lambda rows: float(sum(r["participants"] > 0 for r in rows))),
            failed_attempts=over(lambda rows: float(sum(r["agreement_failed"] for r in rows))),
            detected_attempts=over(
                lambda rows: float(sum(r["agreement_detected"] for r in rows))
            ),
            rounds_outside_bound=over(
                lambda rows: float(sum(1 - r["agreement_bound_ok"] for r in rows))
            ),
            inconsistent_rounds=over(
                lambda rows: float(sum(1 - r["agreement_consistent"] for r in rows))
            ),
            seated_pairs_short=over(
                lambda rows: float(sum(r.get("agreement_seat_short", 0) for r in rows))
            ),
            key_dry_messages=over(lambda rows: float(sum(r["agreement_key_dry"] for r in rows))),
            tags_per_round=over(lambda rows: _per_round(rows, "agreement_messages")),
            key_bits_per_round=over(lambda rows: _per_round(rows, "agreement_key_bits")),
            swapped_per_round=over(lambda rows: _per_round(rows, "agreement_swapped")),
        )
    return out


def paired(a: dict[int, list[dict]], b: dict[int, list[dict]]) -> dict:
    """a − b on the final test accuracy (points), paired by seed."""
    seeds = sorted(set(a) & set(b))
    d = [100 * (a[s][-1]["test_accuracy"] - b[s][-1]["test_accuracy"]) for s in seeds]
    mean, half = _mean_ci(d)
    worst = int(np.argmin(d))
    return {
        "mean_points": mean,
        "ci95_points": half,
        "worst_points": d[worst],
        "worst_seed": seeds[worst],
        "identical_seeds": int(sum(x == 0 for x in d)),
        "per_seed_points": d,
    }


def cost_summary(rows: list[dict]) -> dict:
    keys = ("agreement_messages", "agreement_key_bits", "agreement_swapped", "key_pairs",
            "pairs_generated", "participants")  # fmt: skip
    out = {k + "_per_round": _per_round(rows, k) for k in keys}
    out["first_round"] = {k: rows[0][k] for k in keys}  # a full round of m seats, fresh seed keys
    out["rounds_agreed"] = int(sum(r["agreed"] for r in rows))
    out["rounds_held"] = int(sum(r["participants"] > 0 for r in rows))
    out["utilisation_last"] = rows[-1]["utilisation"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cost", action="store_true", help="also the cost per round at N = 50, 200")
    ap.add_argument("--cost-rounds", type=int, default=100)
    ap.add_argument("--out", default=str(ROOT / "runs" / "decentralised"))
    ap.add_argument("--result", default=str(ROOT / "benchmarks" / "results" / "decentralised.json"))
    args = ap.parse_args()
    out = Path(args.out)
    grid = cells(args.seeds, out, args.rounds)
    extra = cost_cells(out, args.cost_rounds) if args.cost else []
    t0 = time.perf_counter()
    run = run_grid(grid + extra, out=out, workers=args.workers)
    print(run.line())
    by: dict[str, dict[int, list[dict]]] = {}
    for cell, res in zip(grid, run.results[: len(grid)]):
        by.setdefault(cell.params["arm"], {})[cell.params["seed"]] = res["metrics"]
    report = {
        "command": f"python benchmarks/decentralised.py --seeds {args.seeds} --rounds {args.rounds}"
        + (f" --cost --cost-rounds {args.cost_rounds}" if args.cost else ""),
        "config": "configs/paper.toml + broker.enabled=true, security.attacks=['adaptive']",
        "arms": {arm: arm_summary(runs) for arm, runs in by.items()},
        "vs_trusted": {
            arm: paired(runs, by["trusted"]) for arm, runs in by.items() if arm != "trusted"
        },
        "wall_s": time.perf_counter() - t0,
        "machine": platform.platform(),
    }
    if extra:
        report["cost"] = {
            f"N={c.params['nodes']}": cost_summary(res["metrics"])
            for c, res in zip(extra, run.results[len(grid) :])
        }
    Path(args.result).write_text(json.dumps(report, indent=1) + "\n")
    for arm, s in report["arms"].items():
        line = f"{arm:28s} acc {100 * s['final_accuracy'][0]:.1f} ± {100 * s['final_accuracy'][1]:.1f}"
        if "rounds_agreed" in s:
            line += f"  agreed {s['rounds_agreed'][0]:.1f}  failed {s['failed_attempts'][0]:.1f}"
            line += f"  seats {s['participants_per_round'][0]:.2f}"
        if arm in report["vs_trusted"]:
            v = report["vs_trusted"][arm]
            line += f"  vs trusted {v['mean_points']:+.1f} ± {v['ci95_points']:.1f} (worst {v['worst_points']:+.1f})"
        print(line)
    print(f"wrote {args.result}")


if __name__ == "__main__":
    main()
