"""Large N through the broker (issue 14): time per round and memory at N = 50 / 1,000 / 10,000 nodes.

Each N runs in its own process (so peak RSS is that N's alone): the ``paper`` preset with ``training.nodes = N``,
the ``synthetic`` data set with ``data.n_samples = max(4000, 4 N)`` (every node gets a shard of its own; the
bundled sets have too few samples), participants at the preset's 10 per round. Reported per N: set-up time
(data, network, trainer), median and mean ms per round over ``--rounds`` rounds after ``--warmup``, peak RSS
(``ru_maxrss``), and with ``--profile`` the top functions by own time of a few more rounds.

    python benchmarks/large_n.py [--nodes 50 1000 10000] [--rounds 10] [--warmup 2] [--profile]

Writes ``benchmarks/results/large_n.json`` and prints the table of docs/performance.md ("Large N").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "large_n.json"


def one(nodes: int, rounds: int, warmup: int, profile: bool) -> dict:
    """Build the trainer for ``nodes`` and time rounds; runs in the child process."""
    from ceas.config import load_config
    from ceas.experiment.runner import make_trainer

    t0 = time.perf_counter()
    cfg = load_config(
        "paper",
        [
            f"training.nodes={nodes}",
            'data.dataset="synthetic"',
            f"data.n_samples={max(4000, 4 * nodes)}",
            f"run.rounds={rounds + warmup}",
        ],
    )
    trainer = make_trainer(cfg)
    optimizer = trainer.make_optimizer()
    theta = trainer.initial_parameters()
    setup_s = time.perf_counter() - t0
    times = []
    for t in range(warmup + rounds):
        r0 = time.perf_counter()
        result = trainer.run_round(t, theta, optimizer)
        theta = result.theta
        if t >= warmup:
            times.append(1e3 * (time.perf_counter() - r0))
    out = {
        "nodes": nodes,
        "participants": cfg.scheduling.participants,
        "n_samples": cfg.data.n_samples,
        "setup_s": round(setup_s, 2),
        "round_ms_median": round(statistics.median(times), 1),
        "round_ms_mean": round(statistics.fmean(times), 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for t in range(warmup + rounds, warmup + rounds + 3):
            theta = trainer.run_round(t, theta, optimizer).theta
        prof.disable()
        stats = pstats.Stats(prof).stats
        top = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:12]
        out["profile_top_own_ms_per_round"] = [
            (f"{Path(f).name}:{line}:{fn}", round(1e3 * v[2] / 3, 2)) for (f, line, fn), v in top
        ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[50, 1000, 10000])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(one(args.child, args.rounds, args.warmup, args.profile)))
        return
    rows = []
    load0 = os.getloadavg()
    for n in args.nodes:
        cmd = [sys.executable, __file__, "--child", str(n), "--rounds", str(args.rounds)]
        cmd += ["--warmup", str(args.warmup)] + (["--profile"] if args.profile else [])
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["process_wall_s"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "machine": platform.platform(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "load_average_start": load0,
        "load_average_end": os.getloadavg(),
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| N | participants | set-up s | round ms, median (mean) | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['nodes']:,} | {r['participants']} | {r['setup_s']} | "
            f"{r['round_ms_median']} ({r['round_ms_mean']}) | {r['peak_rss_mib']:.0f} |"
        )


if __name__ == "__main__":
    main()
