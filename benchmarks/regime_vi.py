"""Value iteration against ``ceas`` at physics inside the regime map (issue 11, item 2).

Exact value iteration runs only on tiny instances (:func:`ceas.scheduling.policies.value_iteration.exact_size_error`:
at most 4 nodes, 4 slots, 4 age bins and 100,000 joint memory states). So each map cell's physics -- link setting
``network.link.eta0`` and memory coherence T = r·τ, as in ``ceas map`` -- is taken with N = 3 nodes, 2 memory slots
per link, 4 age bins (15 memory states per link, 3,375 joint) and m = 1 participant per round; everything else is
the paper preset (512 shots, 128 payload + 16 verification pairs per participant), with no Byzantine node.

Per cell:

* **exact**: the reduced instance the broker's ``value-iteration`` policy solves (:func:`reduced_instance` of the
  run's own channels) -- J* by value iteration, and ``ceas`` and ``oblivious`` evaluated exactly on it (expected
  discounted return from empty memories, as a fraction of J*);
* **broker**: paired seeds of full broker runs (100 rounds) with ``scheduling.policy`` = ``value-iteration``, ``ceas``
  and ``oblivious``: accuracy (mean of the last 10 % of rounds), utilisation, accepted replies; the paired accuracy
  difference value-iteration − ceas with its 95 % t-interval and worst seed.

Run:  ``python benchmarks/regime_vi.py --seeds 5`` (writes ``benchmarks/results/regime_vi.json``; ``--cells NAME ...``
runs some cells and keeps the others from the existing file).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CELLS = {  # (eta0, T/tau, small payload): inside the map's axes, where the MDP has >= 2 age bins
    "eta0=0.15,T/tau=5": (0.15, 5.0, False),
    "eta0=0.15,T/tau=50": (0.15, 50.0, False),
    "eta0=0.5,T/tau=50": (0.5, 50.0, False),
    "small-payload,eta0=0.005,T/tau=5": (0.005, 5.0, True),
    "small-payload,eta0=0.005,T/tau=50": (0.005, 50.0, True),
}
SMALL = [
    "model.n_qubits=2",
    "model.n_layers=1",
    "scheduling.payload_copies=1",
    "security.verification_pairs=1",
    "network.memory.slots=3",
    "scheduling.age_bins=3",
]
"""Small-payload cells: a 2-qubit, 1-layer model (4 parameters), S_p = 1 and one verification pair, so a participant
needs 5 pairs a round and 3 slots can hold most of it (8,000 joint states); eta0 = 0.005 puts supply / demand at
0.64 (2.4-4.8 pairs per round on the three links), inside the map's range. With 128-pair payloads (the other cells)
no exactly solvable memory (at most 4 slots) holds a meaningful share of a payload."""
TINY = [
    "training.nodes=3",
    "network.topology.n_nodes=3",
    "network.memory.slots=2",
    "scheduling.age_bins=4",
    "scheduling.participants=1",
    "security.byzantine_fraction=0",
    "security.attacks=[]",
    "broker.enabled=true",
]
POLICIES = ("value-iteration", "ceas", "oblivious")


def settings(eta0: float, ratio: float, small: bool = False) -> list[str]:
    return (
        TINY
        + (SMALL if small else [])
        + [
            f"network.link.eta0={eta0}",
            f"network.memory.coherence_min_s={ratio}",
            f"network.memory.coherence_max_s={ratio}",
        ]
    )


def exact(eta0: float, ratio: float, small: bool = False) -> dict:
    from ceas.broker.setup import build_context
    from ceas.config import load_config
    from ceas.scheduling import make_policy

    cfg = load_config(
        "paper", settings(eta0, ratio, small) + ['scheduling.policy="value-iteration"']
    )
    ctx = build_context(cfg)
    model = ctx.policy.model
    t0 = time.perf_counter()
    vi = model.value_iteration()
    row = {
        "age_bins": model.spec.bins.tolist(),
        "rate_hz": ctx.channels.rate_hz.tolist(),
        "joint_states": model.n_states,
        "vi_residual": vi.residual,
        "vi_seconds": round(time.perf_counter() - t0, 1),
        "optimal_return": vi.expected_return,
        "policies": {},
    }
    n, m = model.spec.n_links, model.spec.m
    for name in ("ceas", "oblivious"):
        value = model.evaluate(make_policy(name, model.spec.params), phases=n // math.gcd(n, m))
        row["policies"][name] = {
            "expected_return": value.expected_return,
            "ratio": value.expected_return / vi.expected_return if vi.expected_return else math.nan,
        }
    return row


def broker(eta0: float, ratio: float, small: bool, seeds: int, out: Path, workers: int) -> dict:
    from ceas.config import load_config
    from ceas.experiment.grid import Cell, run_grid
    from ceas.experiment.regime_map import _final10, _mean_ci

    cells = []
    for pol in POLICIES:
        for s in range(seeds):
            name = f"{pol}-e{eta0}-r{ratio}{'-small' if small else ''}-s{s}"
            cfg = load_config("paper", settings(eta0, ratio, small) + [
                f'scheduling.policy="{pol}"', f"run.seed={s}", f"run.name={json.dumps(name)}",
                f"run.out_dir={json.dumps(str(out))}"])  # fmt: skip
            cells.append(Cell(cfg, {"policy": pol, "seed": s}))
    grid = run_grid(cells, workers=workers, progress=False)
    by = {(c.params["policy"], c.params["seed"]): r["metrics"] for c, r in zip(cells, grid.results)}
    row = {"policies": {}}
    for pol in POLICIES:
        runs = [by[(pol, s)] for s in range(seeds)]
        row["policies"][pol] = {
            "final10_accuracy": _mean_ci([_final10(r) for r in runs]),
            "utilisation": _mean_ci([r[-1]["utilisation"] for r in runs]),
            "accepted": _mean_ci([float(np.mean([x["accepted"] for x in r])) for r in runs]),
        }
    diffs = [_final10(by[("value-iteration", s)]) - _final10(by[("ceas", s)]) for s in range(seeds)]
    mean, half = _mean_ci(diffs)
    row["vi_minus_ceas"] = {"mean": mean, "half_width": half, "per_seed": diffs,
                            "worst_seed": int(np.argmin(diffs)), "worst": float(min(diffs))}  # fmt: skip
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cells", nargs="*", default=list(CELLS), help="names of CELLS to run")
    ap.add_argument("--runs", type=Path, default=Path("runs/regime-vi"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "regime_vi.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = {}
    previous = json.loads(args.out.read_text())["cells"] if args.out.exists() else {}
    for name, (eta0, ratio, small) in CELLS.items():
        if name not in set(args.cells):
            if name in previous:
                rows[name] = previous[name]  # keep a cell measured by an earlier call
            continue
        t = time.perf_counter()
        ex = exact(eta0, ratio, small)
        print(f"{name}: bins {ex['age_bins']} states {ex['joint_states']} VI {ex['vi_seconds']} s; ceas "
              f"{ex['policies']['ceas']['ratio']:.4f} of J*, oblivious {ex['policies']['oblivious']['ratio']:.4f}",
              flush=True)  # fmt: skip
        br = broker(eta0, ratio, small, args.seeds, args.runs, args.workers)
        d = br["vi_minus_ceas"]
        print(f"  broker: VI - ceas {100 * d['mean']:+.1f} ± {100 * d['half_width']:.1f} points (worst "
              f"{100 * d['worst']:+.1f}, seed {d['worst_seed']}); " + ", ".join(
                  f"{p} acc {v['final10_accuracy'][0]:.3f} util {v['utilisation'][0]:.3f} acc/round "
                  f"{v['accepted'][0]:.2f}" for p, v in br["policies"].items()), flush=True)  # fmt: skip
        rows[name] = {"eta0": eta0, "coherence_over_round": ratio, "small_payload": small, "exact": ex, "broker": br,
                      "wall_s": round(time.perf_counter() - t, 1)}  # fmt: skip
    result = {
        "seeds": args.seeds,
        "settings": TINY,
        "wall_s": time.perf_counter() - t0,
        "cells": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({result['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
