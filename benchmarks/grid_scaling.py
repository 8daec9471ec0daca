"""Grid speed-up with workers (issue 14): one 24-cell grid on 1 and 2 workers: local pool, Ray, running Ray cluster.

The grid is ``ceas reproduce --quick --seeds 3 --fresh`` (8 scenarios x 3 seeds = 24 cells). Three ways to run it:

* ``local``: the process pool, ``--workers W``;
* ``ray``: ``--backend ray --workers W``: the command starts a local Ray instance of W CPUs and stops it;
* ``ray-cluster``: ``--backend ray --address 127.0.0.1:PORT`` against a cluster of W CPUs started beforehand
  (``ray start --head --num-cpus W``, outside the timed command, stopped after it): how docs/scaling.md tells
  users to run grids.

Each run is its own command, timed as a whole (Python start, imports, Ray start and stop included); the command's
own last line also splits the grid's time into starting/stopping the backend and running the cells. Runs are
interleaved (every mode and worker count once, then again) so that load swings hit all alike. The machine is shared:
each command waits until the machine was less than ``--idle`` busy over 2 s (at most ``--max-wait`` s), and the
busy share and 1-minute load average before it are recorded, and so is ``others_cpu_share``: the share of the
machine's CPU that processes other than the command (and its cluster) used while it ran, an estimate of how much
other jobs disturbed it. Speed-up = median time on 1 worker / on 2 workers, per mode, for the whole command
and for the cells alone.

    python benchmarks/grid_scaling.py [--reps 2] [--modes local ray ray-cluster]

Writes ``benchmarks/results/grid_scaling.json`` and prints the table of docs/scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "grid_scaling.json"
MODES = ("local", "ray", "ray-cluster")
GRID = ["reproduce", "--quick", "--seeds", "3", "--fresh", "--quiet"]
CELLS = 24
ENV = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
"""Every command of the benchmark, cluster included, runs with one throw-away Ray token (``ray start --head``
turns token authentication on whenever ~/.ray/auth_token exists, and a driver given an explicit address does not)."""
LINE = re.compile(
    rf"^{CELLS} cells: .*\((?P<backend>\w+) backend, (?P<grid>[\d.]+) s, of which (?P<start_stop>[\d.]+) s "
    r"starting and stopping the backend\)$"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A one-node Ray cluster of ``cpus`` CPUs on localhost, in its own process group (stopped by killing it)."""

    def __init__(self, cpus: int) -> None:
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        cli = Path(sys.executable).with_name("ray")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(cli), "start", "--head", f"--port={self.port}", "--node-ip-address=127.0.0.1",
             f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats", "--block"],
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            self._wait_ready(cpus)
        except BaseException:
            self.stop()
            raise
        self.start_s = time.perf_counter() - t0
        time.sleep(3)  # let the daemons settle before the timed command

    def _wait_ready(self, cpus: int) -> None:
        ready = (
            "import ray, sys, time; ray.init(address=sys.argv[1], log_to_driver=False, logging_level='WARNING');"
            "d = time.monotonic() + 120\n"
            "while ray.cluster_resources().get('CPU', 0) < int(sys.argv[2]) and time.monotonic() < d: time.sleep(0.2)"
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the head's GCS port, then a driver that sees every CPU
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.3)
        subprocess.run([sys.executable, "-c", ready, self.address, str(cpus)], check=True, env=ENV,
                       capture_output=True, timeout=180)  # fmt: skip

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        current = (
            Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        )  # what `ray stop` would remove
        if current.exists() and current.read_text().strip().endswith(f":{self.port}"):
            current.unlink()


TICK = os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(total, busy) CPU ticks of the whole machine so far (/proc/stat; busy = not idle and not iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])  # guest time is already inside user time
    return total, total - fields[3] - fields[4]


def tree_ticks(roots: list[int]) -> dict[int, int]:
    """Own CPU ticks (user + system) of each live process descending from ``roots``, roots included (/proc)."""
    parent, ticks = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2 :].split()
        parent[int(entry)] = int(f[1])
        ticks[int(entry)] = int(f[11]) + int(f[12])
    tree, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid in ticks and pid not in tree:
            tree.add(pid)
            todo += [child for child, par in parent.items() if par == pid]
    return {pid: ticks[pid] for pid in tree}


def run_watched(cmd: list[str], roots: list[int]) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``cmd``; also the CPU seconds it and the processes under ``roots`` used meanwhile (sampled every 0.2 s,
    so the last 0.2 s of each process that ends is missed: an estimate, slightly low)."""
    before = tree_ticks(roots)
    seen: dict[int, int] = {}
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    ) as proc:
        out: dict[str, str] = {}
        reader = threading.Thread(
            target=lambda: out.update(zip(("out", "err"), proc.communicate()))
        )
        reader.start()
        while reader.is_alive():
            for pid, t in tree_ticks([proc.pid, *roots]).items():
                seen[pid] = max(seen.get(pid, 0), t)
            reader.join(0.2)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, out.get("out"), out.get("err"))
    used = sum(t - before.get(pid, 0) for pid, t in seen.items())
    return subprocess.CompletedProcess(cmd, 0, out.get("out", ""), out.get("err", "")), used / TICK


def busy_fraction(seconds: float = 2.0) -> float:
    """Share of the machine's CPU time spent busy over the next ``seconds``."""
    total0, busy0 = machine_ticks()
    time.sleep(seconds)
    total1, busy1 = machine_ticks()
    return (busy1 - busy0) / max(1, total1 - total0)


def wait_for_idle(threshold: float, max_wait_s: float) -> tuple[float, float]:
    """Wait until the machine is less than ``threshold`` busy over 2 s (other jobs share it); (busy, waited s)."""
    t0 = time.perf_counter()
    while True:
        busy = busy_fraction()
        waited = time.perf_counter() - t0
        if busy < threshold or waited > max_wait_s:
            return busy, waited
        time.sleep(5)


def one(mode: str, workers: int, out: Path, idle: float, max_wait_s: float) -> dict:
    ceas = Path(sys.executable).with_name("ceas")
    cmd = [str(ceas), *GRID, "--out", str(out), "--workers", str(workers)]
    cluster = None
    if mode == "local":
        cmd += ["--backend", "local"]
    else:
        cmd += ["--backend", "ray"]
    if mode == "ray-cluster":
        cluster = Cluster(workers)
        cmd += ["--address", cluster.address]
    try:
        busy, waited = wait_for_idle(idle, max_wait_s)
        load = os.getloadavg()[0]
        total0, busy0 = machine_ticks()
        t0 = time.perf_counter()
        done, ours = run_watched(cmd, [cluster.proc.pid] if cluster else [])
        wall = time.perf_counter() - t0
        total1, busy1 = machine_ticks()
    finally:
        if cluster is not None:
            cluster.stop()
    line = next(x for x in done.stdout.splitlines() if x.startswith(f"{CELLS} cells:"))
    m = LINE.match(line)
    if m is None:
        raise RuntimeError(f"unexpected grid line: {line!r}")
    grid, start_stop = float(m["grid"]), float(m["start_stop"])
    row = {"mode": mode, "workers": workers, "wall_s": round(wall, 2), "grid_s": grid,
           "backend_start_stop_s": start_stop, "cells_s": round(grid - start_stop, 2),
           "load_1min_before": round(load, 2), "busy_2s_before": round(busy, 3),
           "waited_for_idle_s": round(waited, 1), "own_cpu_s": round(ours, 1),
           "others_cpu_share": round(max(0.0, ((busy1 - busy0) / TICK - ours) / ((total1 - total0) / TICK)), 3),
           "grid_line": line}  # fmt: skip
    if cluster is not None:
        row["cluster_start_s_untimed"] = round(cluster.start_s, 2)
    return row


def medians(rows: list[dict], mode: str, key: str) -> dict:
    med = {
        w: statistics.median(r[key] for r in rows if r["mode"] == mode and r["workers"] == w)
        for w in (1, 2)
    }
    return {"1": round(med[1], 2), "2": round(med[2], 2), "speedup": round(med[1] / med[2], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--idle",
        type=float,
        default=0.15,
        help="start each command once the machine is less busy than this over 2 s (shared machine)",
    )
    ap.add_argument(
        "--max-wait", type=float, default=600, help="but wait at most this many seconds"
    )
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop a running cluster on the way out
    rows = []
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for mode in args.modes:
                for workers in (1, 2):
                    row = one(
                        mode, workers, Path(tmp) / f"{mode}-{workers}", args.idle, args.max_wait
                    )
                    row["rep"] = rep
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    whole = {m: medians(rows, m, "wall_s") for m in args.modes}
    cells = {m: medians(rows, m, "cells_s") for m in args.modes}
    result = {
        "machine": platform.platform(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "command": " ".join(["ceas", *GRID, "--workers W", "--backend ..."]),
        "idle_gate": {"busy_below": args.idle, "max_wait_s": args.max_wait},
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "rows": rows,
        "median_wall_s": whole,
        "median_cells_s": cells,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        "| mode | whole command, 1 / 2 workers (s) | speed-up | cells alone, 1 / 2 workers (s) | speed-up |"
    )
    print("|---|---|---|---|---|")
    for m in args.modes:
        w, c = whole[m], cells[m]
        print(f"| {m} | {w['1']:.1f} / {w['2']:.1f} | {w['speedup']:.2f}x | {c['1']:.1f} / {c['2']:.1f} | "
              f"{c['speedup']:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
