"""Network-layer benchmark: one hour of simulated time on 50 links under SPEC defaults.

Reports (written to ``benchmarks/results/network_throughput.json``):

* wall time and pair events per wall second for one simulated hour, stepped in 1 s rounds as the broker steps it
  (and in one ``advance(3600)`` call);
* the cost of one training round's network work: ``advance(1.0)`` with a typical demand (10 participants x 128
  payload pairs used as they are heralded, then 2 verification pairs each) — the lead compares it with a round;
* interleaved comparisons with naive peers on the same windows: per-attempt Bernoulli stepping for generation, and
  the event-by-event reference simulation (``tests/network/network_memory_reference.py``) for the memory windows;
* a statistical sanity check of the hour's supply against p c / L per link.

SeQUeNCe and SimQN (``qns``) are not used here; the cross-check of one link against them is
``benchmarks/crosscheck_peers.py`` (optional ``crosscheck`` extra, run in a separate venv).

Usage: ``.venv/bin/python benchmarks/network_throughput.py [--hours 1] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "network"))

from network_memory_reference import reference_resolve

from ceas.network import NetworkParams, QuantumNetwork, StreamDemand
from ceas.network.generation import sample_arrivals
from ceas.network.memory import get_eviction_policy


def events(counters) -> int:
    return int(
        counters.generated.sum()
        + counters.expired.sum()
        + counters.evicted.sum()
        + counters.consumed_total.sum()
    )


def hour_stepwise(seconds: int) -> dict:
    net = QuantumNetwork.from_params(NetworkParams(), np.random.default_rng(0))
    t0 = time.perf_counter()
    for _ in range(seconds):
        net.advance(1.0)
    wall = time.perf_counter() - t0
    c = net.counters()
    n_att = np.floor(seconds / net.table.attempt_s)
    p = net.table.p_success
    z = (c.generated - n_att * p) / np.sqrt(n_att * p * (1 - p))
    return {
        "simulated_s": seconds,
        "wall_s": wall,
        "generated": int(c.generated.sum()),
        "expired": int(c.expired.sum()),
        "evicted": int(c.evicted.sum()),
        "pair_events": events(c),
        "generated_per_wall_s": c.generated.sum() / wall,
        "pair_events_per_wall_s": events(c) / wall,
        "supply_max_abs_z": float(np.abs(z).max()),
        "residual_max": int(np.abs(c.residual).max()),
    }


def hour_one_call(seconds: int) -> dict:
    net = QuantumNetwork.from_params(NetworkParams(), np.random.default_rng(0))
    t0 = time.perf_counter()
    net.advance(float(seconds))
    wall = time.perf_counter() - t0
    c = net.counters()
    return {"wall_s": wall, "pair_events": events(c), "pair_events_per_wall_s": events(c) / wall}


def training_rounds(rounds: int) -> dict:
    """advance(1.0) + typical consumption of one default round (m = 10 participants, P * S_p = 128 pairs each)."""
    net = QuantumNetwork.from_params(NetworkParams(), np.random.default_rng(1))
    rng = np.random.default_rng(2)
    net.advance(5.0)  # warm memories
    times = []
    delivered = []
    for _ in range(rounds):
        participants = rng.choice(net.n_links, size=10, replace=False)
        pairs = np.zeros(net.n_links, np.int64)
        pairs[participants] = 128
        t0 = time.perf_counter()
        report = net.advance(1.0, StreamDemand(pairs, purpose="payload", order="expiring"))
        verify = np.zeros(net.n_links, np.int64)
        verify[participants] = 2
        net.request_many(verify, purpose="verification")
        times.append(time.perf_counter() - t0)
        delivered.append(report.delivered.n)
    ms = 1e3 * np.array(times)
    return {
        "rounds": rounds,
        "mean_ms": float(ms.mean()),
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "payload_pairs_delivered_per_round": float(np.mean(delivered)),
    }


def peers(reps: int, reference_reps: int) -> dict:
    """Interleaved: ceas generation vs per-attempt Bernoulli; ceas memory window vs event-by-event reference."""
    net = QuantumNetwork.from_params(NetworkParams(), np.random.default_rng(3))
    table = net.table
    rng = np.random.default_rng(4)
    policy = get_eviction_policy("oldest")
    gen_ceas, gen_naive, mem_ceas, mem_ref = [], [], [], []
    attempts = np.floor(1.0 / table.attempt_s).astype(np.int64)
    for r in range(reps):
        pending = np.floor(0.0 / table.attempt_s).astype(np.int64) + rng.geometric(table.p_success)
        t0 = time.perf_counter()
        arrivals, _ = sample_arrivals(rng, table.p_success, table.attempt_s, pending, 1.0)
        gen_ceas.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        hits = rng.random(attempts.sum()) < np.repeat(
            table.p_success, attempts
        )  # step every attempt
        naive_count = int(hits.sum())
        gen_naive.append(time.perf_counter() - t0)
        window = net.inventory.window(
            1.0, arrivals.offsets, arrivals.time_s, arrivals.time_s + table.cutoff_s[arrivals.link]
        )
        t0 = time.perf_counter()
        out = policy.resolve(window)
        mem_ceas.append(time.perf_counter() - t0)
        if r < reference_reps:
            t0 = time.perf_counter()
            ref = reference_resolve(window, "oldest")
            mem_ref.append(time.perf_counter() - t0)
            assert np.array_equal(ref[2], out.arrival_evicted) and np.array_equal(
                ref[3], out.arrival_expired
            )
    return {
        "window_s": 1.0,
        "pairs_per_window": int(arrivals.link.size),
        "attempts_per_window": int(attempts.sum()),
        "naive_successes_last_window": naive_count,
        "generation_ceas_ms": 1e3 * float(np.median(gen_ceas)),
        "generation_per_attempt_bernoulli_ms": 1e3 * float(np.median(gen_naive)),
        "generation_speedup": float(np.median(gen_naive) / np.median(gen_ceas)),
        "memory_ceas_ms": 1e3 * float(np.median(mem_ceas)),
        "memory_event_by_event_ms": 1e3 * float(np.median(mem_ref)),
        "memory_speedup": float(np.median(mem_ref) / np.median(mem_ceas)),
        "reference_reps": reference_reps,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=600)
    ap.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "network_throughput.json")
    )
    args = ap.parse_args()
    seconds = round(3600 * args.hours)
    result = {
        "benchmark": "network_throughput",
        "config": "NetworkParams() defaults: star, 50 links, L ~ U[2, 40] km, single-click theta 0.05, "
        "M = 20, T ~ logU[0.05, 1] s, F_min 0.8, eviction oldest",
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "hour_stepwise_1s": hour_stepwise(seconds),
        "hour_one_call": hour_one_call(seconds),
        "round_cost": training_rounds(args.rounds),
        "peers_interleaved": peers(reps=40, reference_reps=3),
        "external_simulators": "SeQUeNCe and SimQN (qns) are not installed here; no cross-check was run.",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
