"""How close do the scheduling policies come to the optimum? Exact answers on small binned instances (issue 5).

For each reduced instance below -- fixed before any policy was evaluated on it and reported whatever the outcome --
plus four random two-node instances drawn after the ceas rules were frozen (``held-out-*``),
this script solves the binned CEAS scheduling MDP (Definition 3) by value iteration to a Bellman residual below 1e-8,
evaluates every built-in policy exactly on the same finite MDP (policy evaluation to the same tolerance) and reports
each policy's expected discounted reward J from the initial state (empty memories, full key pools) and its ratio to
the optimum J*.

    .venv/bin/python benchmarks/scheduling_optimality.py          # all instances, a few minutes on 2 cores
    .venv/bin/python benchmarks/scheduling_optimality.py base     # one instance

Writes benchmarks/results/scheduling_optimality.json and prints the Markdown table committed in docs/scheduling.md.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ceas.scheduling import FiniteMDP, MDPSpec, SchedulingParams, make_policy

POLICIES = ("ceas", "greedy-fidelity", "oblivious", "random")

# Shared by every instance: one payload pair per participant, a tag costs 2 key steps of 0.1 bit (a fresh pair at
# F0 = 0.95 yields 2 steps, a one-round-old pair 1, older ones none), pools hold 3 steps and start full.
# Penalties are scaled to the reduced instances, where one payload pair earns up to 1/m of a round's utility:
# a wasted pair costs 0.05 (a tenth of that), waiting one round for an on-demand pair costs 0.2.
COMMON = {
    "payload_pairs": 1,
    "verification_pairs": 0,
    "tag_steps": 2,
    "key_step_bits": 0.1,
    "key_levels": 3,
    "key_init": 3,
}
PARAMS = {
    "participants": 1,
    "waste_penalty": 0.05,
    "latency_penalty": 0.2,
    "discount": 0.95,
    "round_s": 1.0,
    "age_bins": 4,
}


def two(value):
    return [value, value]


INSTANCES = {
    "base": {
        "about": "T = 10 s (3 age bins), 0.8 pairs/round, M = 2",
        "spec": {
            "f0": two(0.95),
            "t_coh_s": two(10.0),
            "slots": two(2),
            "arrivals": two(0.8),
            "trust": [1.0, 0.8],
            "phi": two(1.0),
            "ready_prob": two(1.0),
        },
    },
    "short-coherence": {
        "about": "T = 5 s (2 age bins)",
        "spec": {
            "f0": two(0.95),
            "t_coh_s": two(5.0),
            "slots": two(2),
            "arrivals": two(0.8),
            "trust": [1.0, 0.8],
            "phi": two(1.0),
            "ready_prob": two(1.0),
        },
    },
    "long-coherence": {
        "about": "T = 20 s (4 age bins)",
        "spec": {
            "f0": two(0.95),
            "t_coh_s": two(20.0),
            "slots": two(2),
            "arrivals": two(0.8),
            "trust": [1.0, 0.8],
            "phi": two(1.0),
            "ready_prob": two(1.0),
        },
    },
    "scarce-generation": {
        "about": "0.3 pairs/round",
        "spec": {
            "f0": two(0.95),
            "t_coh_s": two(10.0),
            "slots": two(2),
            "arrivals": two(0.3),
            "trust": [1.0, 0.8],
            "phi": two(1.0),
            "ready_prob": two(1.0),
        },
    },
    "abundant-generation": {
        "about": "2 pairs/round",
        "spec": {
            "f0": two(0.95),
            "t_coh_s": two(10.0),
            "slots": two(2),
            "arrivals": two(2.0),
            "trust": [1.0, 0.8],
            "phi": two(1.0),
            "ready_prob": two(1.0),
        },
    },
    "more-slots": {
        "about": "M = 4 slots",
        "spec": {
            "f0": two(0.95),
            "t_coh_s": two(10.0),
            "slots": two(4),
            "arrivals": two(0.8),
            "trust": [1.0, 0.8],
            "phi": two(1.0),
            "ready_prob": two(1.0),
        },
    },
    "heterogeneous": {
        "about": "T = 20 / 5 s, 0.4 / 1.5 pairs/round, M = 3 / 2, trust 1.0 / 0.7",
        "spec": {
            "f0": two(0.95),
            "t_coh_s": [20.0, 5.0],
            "slots": [3, 2],
            "arrivals": [0.4, 1.5],
            "trust": [1.0, 0.7],
            "phi": two(1.0),
            "ready_prob": two(1.0),
        },
    },
    "verification-readiness": {
        "about": "1 verification pair per participant, readiness 0.8 / 0.9, M = 3",
        "spec": {
            "f0": two(0.95),
            "t_coh_s": two(10.0),
            "slots": two(3),
            "arrivals": two(0.8),
            "trust": [1.0, 0.8],
            "phi": two(1.0),
            "ready_prob": [0.8, 0.9],
        },
        "common": {"verification_pairs": 1},
    },
    "three-nodes": {
        "about": "3 nodes, m = 2, T = 10 s, M = 2, pools of 2 steps",
        "spec": {
            "f0": [0.95] * 3,
            "t_coh_s": [10.0] * 3,
            "slots": [2] * 3,
            "arrivals": [0.8] * 3,
            "trust": [1.0, 0.9, 0.6],
            "phi": [1.0, 0.8, 1.0],
            "ready_prob": [1.0] * 3,
        },
        "common": {"key_levels": 2, "key_init": 2},
        "params": {"participants": 2},
    },
}


def held_out(seed: int) -> dict:
    """A random two-node instance drawn after the ceas rules were frozen (out-of-sample check)."""
    rng = np.random.default_rng(1000 + seed)
    t = np.exp(rng.uniform(np.log(4.0), np.log(20.0), 2)).round(1)
    arr = rng.uniform(0.3, 2.0, 2).round(2)
    slots = rng.integers(1, 4, 2)
    trust = np.sort(rng.uniform(0.5, 1.0, 2))[::-1].round(2)
    ready = rng.choice([1.0, 0.9, 0.8], 2)
    ver = int(rng.integers(0, 2))
    return {
        "about": f"T = {t[0]} / {t[1]} s, {arr[0]} / {arr[1]} pairs/round, M = {slots[0]} / {slots[1]}, "
        f"trust {trust[0]} / {trust[1]}, ready {ready[0]} / {ready[1]}, {ver} verification pair(s)",
        "spec": {
            "f0": two(0.95),
            "t_coh_s": t.tolist(),
            "slots": slots.tolist(),
            "arrivals": arr.tolist(),
            "trust": trust.tolist(),
            "phi": two(1.0),
            "ready_prob": ready.tolist(),
        },
        "common": {"verification_pairs": ver},
    }


HELD_OUT = {f"held-out-{i}": held_out(i) for i in range(4)}


def run(name: str, inst: dict) -> dict:
    params = SchedulingParams(**{**PARAMS, **inst.get("params", {})})
    spec = MDPSpec(**inst["spec"], **{**COMMON, **inst.get("common", {})}, params=params)
    t0 = time.perf_counter()
    model = FiniteMDP(spec)
    vi = model.value_iteration()
    t_vi = time.perf_counter() - t0
    n, m = spec.n_links, spec.m
    phases = n // math.gcd(n, m)
    row = {
        "instance": name,
        "about": inst["about"],
        "links": n,
        "participants": m,
        "age_bins": spec.bins.tolist(),
        "joint_states": model.n_states,
        "vi_iterations": vi.iterations,
        "vi_residual": vi.residual,
        "vi_seconds": round(t_vi, 2),
        "optimal_return": vi.expected_return,
        "policies": {},
    }
    print(
        f"{name}: {model.n_states} states, VI {vi.iterations} backups, residual {vi.residual:.2e}, "
        f"J* = {vi.expected_return:.4f} ({t_vi:.1f} s)",
        flush=True,
    )
    for pol_name in POLICIES:
        t0 = time.perf_counter()
        value = model.evaluate(make_policy(pol_name, params), phases=phases)
        ratio = value.expected_return / vi.expected_return
        row["policies"][pol_name] = {
            "expected_return": value.expected_return,
            "ratio": ratio,
            "eval_residual": value.residual,
            "seconds": round(time.perf_counter() - t0, 2),
        }
        print(f"  {pol_name:16s} J = {value.expected_return:.4f}  ratio {ratio:.4f}", flush=True)
    return row


def table(rows: list[dict]) -> str:
    head = "| instance | setting | states | VI residual | J* | " + " | ".join(POLICIES) + " |"
    sep = "|---|---|---:|---:|---:|" + "---:|" * len(POLICIES)
    lines = [head, sep]
    for r in rows:
        cells = [f"{100 * r['policies'][p]['ratio']:.1f} %" for p in POLICIES]
        lines.append(
            f"| {r['instance']} | {r['about']} | {r['joint_states']} | {r['vi_residual']:.1e} | "
            f"{r['optimal_return']:.3f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    everything = {**INSTANCES, **HELD_OUT}
    names = argv or list(everything)
    rows = [run(n, everything[n]) for n in names]
    out = Path(__file__).parent / "results" / "scheduling_optimality.json"
    if not argv:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        meta = {"common": COMMON, "params": PARAMS, "numpy": np.__version__, "instances": rows}
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
        tmp.replace(out)
    print()
    print(table(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
