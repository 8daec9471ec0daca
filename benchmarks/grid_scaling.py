"""Grid speed-up with workers (issue 14): the 24-cell quick grid on 1 and 2 workers, local pool and local Ray.

The grid is ``ceas reproduce --quick --seeds 4 --fresh`` (6 scenarios x 4 seeds = 24 cells). Each configuration
runs as its own command (wall time of the whole command: imports, Ray start and stop included), interleaved
(local-1, local-2, ray-1, ray-2, then again) so that load swings hit all alike; the load average is recorded before
each. Speed-up = median wall time on 1 worker / on 2 workers, per backend.

    python benchmarks/grid_scaling.py [--reps 2] [--backends local ray]

Writes ``benchmarks/results/grid_scaling.json`` and prints the table of docs/scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "grid_scaling.json"


def one(backend: str, workers: int, out: Path) -> dict:
    ceas = Path(sys.executable).with_name("ceas")
    cmd = [str(ceas), "reproduce", "--quick", "--seeds", "4", "--fresh", "--quiet", "--out", str(out),
           "--workers", str(workers), "--backend", backend]  # fmt: skip
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    line = next(x for x in done.stdout.splitlines() if x.startswith("24 cells:"))
    return {"backend": backend, "workers": workers, "wall_s": round(wall, 2),
            "load_1min_before": load, "grid": line}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--backends", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for backend in args.backends:
                for workers in (1, 2):
                    row = one(backend, workers, Path(tmp) / f"{backend}-{workers}")
                    row["rep"] = rep
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    table = {}
    for backend in args.backends:
        med = {
            w: statistics.median(
                r["wall_s"] for r in rows if r["backend"] == backend and r["workers"] == w
            )
            for w in (1, 2)
        }
        table[backend] = {"1": med[1], "2": med[2], "speedup": round(med[1] / med[2], 2)}
    result = {
        "machine": platform.platform(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "load_average_end": os.getloadavg(),
        "rows": rows,
        "median_wall_s": table,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| backend | 1 worker (s) | 2 workers (s) | speed-up |")
    print("|---|---|---|---|")
    for backend, t in table.items():
        print(f"| {backend} | {t['1']:.1f} | {t['2']:.1f} | {t['speedup']:.2f}x |")


if __name__ == "__main__":
    main()
