"""Broker round cost by phase at N = 50 and N = 1,000 nodes: is scheduling + network < 10 % of a round?

One round of ``ceas.broker.round.BrokerTrainer.run_round`` is split into phases by wrapping what the round calls
(the trainer's own policy and learner instance attributes, and for the duration of one configuration the functions
``views`` and ``execute`` of ``ceas.broker.configure``, restored afterwards):

* **scheduling** = ``configure.views`` (inventory and node views) + ``trainer.ctx.policy`` (the decision);
* **network** = ``configure.execute`` (the round's τ in the network: pairs consumed, generated, delivered, key
  distilled);
* **learning** = ``trainer.ctx.learner.local_gradients`` or ``local_gradient_report`` (participants' minibatch
  gradients, shots, node noise; the report with predicted-MSE stamps);
* **other** = the rest of ``run_round``: QFI refresh, attacks, verification tests, stamps, MAC signing and
  verification, payload teleportation, robust aggregation, trust, accounting and the test-set evaluation
  (``trainer.ctx.learner.evaluate``, timed separately as ``evaluation``, a part of ``other``).

Times are ``time.perf_counter`` wall times in ms per round; ``warmup`` rounds run first and are not counted. The
share of a configuration is Σ(scheduling + network) / Σ round over its timed rounds (the ratio of the means); the
median of the per-round shares is reported beside it.

Configuration: the ``paper`` preset with ``training.nodes = N``; participants stay at the preset's value
(``preset``) or are a share of N (``20%``) or a number, as ``--participants`` says. The paper's data set
(breast_cancer, 426 training samples) cannot give 1,000 nodes one sample each, so when N exceeds the training
samples, nodes **share samples** for this benchmark only: the partition runs on the sample indices repeated
ceil(N / n) times, mapped back modulo n (``shared_samples``, a wrapper of ``ceas.broker.learning.partition`` in
this process). The data set is unchanged. Shard contents do not change the cost of a round: every participant draws
``batch_size`` samples whatever its shard size. The JSON records the number of copies.

Run:  ``.venv/bin/python benchmarks/broker_scaling.py`` (about 25 s on 2 cores); options ``--nodes 50 1000``,
``--rounds 20``, ``--warmup 2``, ``--participants preset 20%``, ``--profile 1000`` (cProfile of a few extra rounds
at that N, hotspots into the JSON), ``--table-only`` (print the markdown table of an existing JSON). Writes
``benchmarks/results/broker_scaling.json`` and prints the table of docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import math
import os
import platform
import pstats
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).parent / "results" / "broker_scaling.json"
PHASES = ("views", "policy", "execute", "local_gradients", "evaluate")
PROFILED = ("views", "policy", "execute")  # scheduling + network
TARGET_SHARE = 0.10  # issue 5: scheduling + network under 10 % of the round at N = 50


def machine_info() -> dict:
    """Cores, CPU model, Python and library versions, load averages (1, 5, 15 min) at the start."""
    import scipy

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_at_start": os.getloadavg(),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    return info


def git_state() -> dict:
    """The commit the benchmark ran on and whether ``src/`` had uncommitted changes (None outside a checkout)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--", "src")
    return {
        "commit": git("rev-parse", "HEAD"),
        "src_dirty": None if status is None else bool(status),
    }


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


# ---------------------------------------------------------------------------------------------------------------
# building the trainer
# ---------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def shared_samples(nodes: int, record: dict):
    """While active, ``DataLevelTrainer`` can split a training set of n < ``nodes`` samples over ``nodes`` nodes.

    ``ceas.broker.learning.partition`` (only this process's reference to it) is wrapped: the partition scheme runs
    on the sample indices repeated ``copies = ceil(nodes / n)`` times and each index is mapped back modulo n, so a
    sample may sit in up to ``copies`` shards. The data set itself is unchanged (same training and test arrays, so
    the full-batch gradient and the evaluation cost what they cost at N = 50). ``record`` receives n and ``copies``
    (1 = the partition was not touched).
    """
    import ceas.broker.learning as trainer_module

    original = trainer_module.partition

    def partition(y, n_nodes, rng, **kwargs):
        n = int(np.asarray(y).shape[0])
        copies = max(1, math.ceil(n_nodes / n))
        record.update(training_samples=n, training_copies=copies)
        if copies == 1:
            return original(y, n_nodes, rng, **kwargs)
        shards = original(np.tile(np.asarray(y), copies), n_nodes, rng, **kwargs)
        return [np.unique(shard % n) for shard in shards]

    trainer_module.partition = partition
    try:
        yield
    finally:
        trainer_module.partition = original


def participants_for(token: str, nodes: int, preset_value: int) -> int:
    """``preset`` → the preset's value; ``20%`` → round(0.2 · nodes), at least 1; ``12`` → 12."""
    if token == "preset":
        return preset_value
    if token.endswith("%"):
        return max(1, round(float(token[:-1]) / 100.0 * nodes))
    return int(token)


def build_trainer(preset: str, nodes: int, participants: int, extra: list[str]):
    """The broker trainer of ``preset`` at ``nodes`` nodes (started), and the record of the partition (see shared_samples)."""
    from ceas.config import load_config
    from ceas.experiment.runner import make_trainer

    overrides = [f"training.nodes={nodes}", f"scheduling.participants={participants}", *extra]
    cfg = load_config(preset, overrides)
    if not cfg.broker.enabled:
        raise SystemExit(f"preset {preset!r} has broker.enabled = false: nothing to benchmark")
    data_record: dict = {}
    with shared_samples(nodes, data_record):
        trainer = make_trainer(cfg)
    return trainer, overrides, data_record


class PhaseTimer:
    """Wraps functions the round calls and sums their wall time (s) per round; :meth:`restore` undoes the wraps."""

    def __init__(self) -> None:
        self.current = dict.fromkeys(PHASES, 0.0)
        self.profiler: cProfile.Profile | None = (
            None  # when set, runs only inside the PROFILED phases
        )
        self._undo: list = []

    def reset(self) -> None:
        self.current = dict.fromkeys(PHASES, 0.0)

    def wrap(self, owner, attribute: str, phase: str) -> None:
        """Time ``owner.attribute`` (a module's function, or an instance's method or attribute) as ``phase``."""
        fn = getattr(owner, attribute)

        def timed(*args, **kwargs):
            prof = self.profiler if phase in PROFILED else None
            if prof is not None:
                prof.enable()
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.current[phase] += time.perf_counter() - start
                if prof is not None:
                    prof.disable()

        self._undo.append((owner, attribute, fn))
        object.__setattr__(
            owner, attribute, timed
        )  # frozen dataclasses too; instance attributes shadow methods

    def restore(self) -> None:
        for owner, attribute, fn in reversed(self._undo):
            object.__setattr__(owner, attribute, fn)
        self._undo.clear()


def instrument(trainer) -> PhaseTimer:
    from ceas.broker import configure

    timer = PhaseTimer()
    learner = trainer.ctx.learner
    owners = {"views": configure, "policy": trainer.ctx, "execute": configure}
    for name in PHASES:
        timer.wrap(owners.get(name, learner), name, name)
    # with predicted-MSE stamps the local phase asks for the gradients with their error report
    timer.wrap(learner, "local_gradient_report", "local_gradients")
    return timer


# ---------------------------------------------------------------------------------------------------------------
# one configuration
# ---------------------------------------------------------------------------------------------------------------


def _stats_ms(seconds: list[float]) -> dict:
    ms = [1e3 * s for s in seconds]
    return {"median_ms": statistics.median(ms), "mean_ms": statistics.fmean(ms), "per_round_ms": ms}


def _top(prof: cProfile.Profile, rounds: int, top: int) -> dict:
    """The ``top`` functions of a profile by own time and by cumulative time, in ms per round."""
    stats = pstats.Stats(prof)

    def rows(column: int) -> list[dict]:
        order = sorted(stats.stats.items(), key=lambda kv: kv[1][column], reverse=True)[:top]
        return [
            {
                "function": f"{Path(file).name}:{line}({func})",
                "calls": ncalls,
                "tottime_ms_per_round": 1e3 * tottime / rounds,
                "cumtime_ms_per_round": 1e3 * cumtime / rounds,
            }
            for (file, line, func), (_, ncalls, tottime, cumtime, _) in order
        ]

    return {
        "profiled_ms_per_round": 1e3 * stats.total_tt / rounds,
        "top_tottime": rows(2),
        "top_cumtime": rows(3),
    }


def profile_rounds(trainer, timer: PhaseTimer, t0: int, theta, optimizer, rounds: int) -> dict:
    """cProfile ``rounds`` more whole rounds, then ``rounds`` more with the profiler on only inside scheduling and
    network (``views``, ``policy``, ``execute``); the top 15 functions of each, in ms per round."""
    whole = cProfile.Profile()
    whole.enable()
    for t in range(t0, t0 + rounds):
        theta = trainer.run_round(t, theta, optimizer).theta
    whole.disable()
    timer.profiler = cProfile.Profile()
    try:
        for t in range(t0 + rounds, t0 + 2 * rounds):
            theta = trainer.run_round(t, theta, optimizer).theta
    finally:
        sched_net, timer.profiler = timer.profiler, None
    return {
        "rounds": rounds,
        "whole_round": _top(whole, rounds, 15),
        "scheduling_and_network": _top(sched_net, rounds, 15),
    }


def bench_config(
    preset: str,
    nodes: int,
    participants: int,
    rounds: int,
    warmup: int,
    extra: list[str],
    profile: int,
    log,
) -> dict:
    """Time ``warmup`` + ``rounds`` rounds of one configuration; per-phase statistics in ms per round."""
    load_start = os.getloadavg()
    wall_start = time.perf_counter()
    build_start = time.perf_counter()
    trainer, overrides, data_record = build_trainer(preset, nodes, participants, extra)
    build_s = time.perf_counter() - build_start
    timer = instrument(trainer)
    try:
        optimizer = trainer.make_optimizer()
        theta = trainer.initial_parameters()
        per_round: dict[str, list[float]] = {k: [] for k in (*PHASES, "round")}
        for t in range(warmup + rounds):
            timer.reset()
            start = time.perf_counter()
            theta = trainer.run_round(t, theta, optimizer).theta
            elapsed = time.perf_counter() - start
            if t < warmup:
                continue
            per_round["round"].append(elapsed)
            for k in PHASES:
                per_round[k].append(timer.current[k])
        if profile:
            log(f"  profiling 2 x {profile} more rounds (cProfile)")
            profiled = profile_rounds(trainer, timer, warmup + rounds, theta, optimizer, profile)
    finally:
        timer.restore()
    timed_wall_s = sum(per_round["round"])
    r = per_round
    groups = {
        "round": r["round"],
        "scheduling": [a + b for a, b in zip(r["views"], r["policy"])],
        "network": r["execute"],
        "learning": r["local_gradients"],
        "other": [
            tot - v - p - e - g
            for tot, v, p, e, g in zip(
                r["round"], r["views"], r["policy"], r["execute"], r["local_gradients"]
            )
        ],
        "evaluation": r["evaluate"],
        "views": r["views"],
        "policy": r["policy"],
    }
    sched_net = [s + n for s, n in zip(groups["scheduling"], groups["network"])]
    share = sum(sched_net) / timed_wall_s
    result = {
        "nodes": nodes,
        "participants": participants,
        "preset": preset,
        "overrides": overrides,
        "rounds_timed": rounds,
        "warmup_rounds": warmup,
        "data": data_record,
        "build_s": build_s,
        "phases": {k: _stats_ms(v) for k, v in groups.items()},
        "share_scheduling_network": share,
        "share_scheduling_network_median_of_rounds": statistics.median(
            s / tot for s, tot in zip(sched_net, r["round"])
        ),
        "load_average_at_start": load_start,
    }
    if profile:
        result["profile"] = profiled
    result["wall_s"] = time.perf_counter() - wall_start
    result["load_average_at_end"] = os.getloadavg()
    result["peak_rss_mib_process"] = peak_rss_mib()
    return result


# ---------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------


def markdown_table(configs: list[dict]) -> str:
    """One row per configuration: medians (means) in ms per round and the scheduling + network share."""
    lines = [
        (
            "| N | participants | round ms | scheduling ms | network ms | learning ms | other ms "
            "| scheduling + network share | peak RSS MiB |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in configs:
        p = c["phases"]

        def cell(name, p=p):
            return f"{p[name]['median_ms']:.1f} ({p[name]['mean_ms']:.1f})"

        lines.append(
            f"| {c['nodes']} | {c['participants']} | {cell('round')} | {cell('scheduling')} | "
            f"{cell('network')} | {cell('learning')} | {cell('other')} | "
            f"{100 * c['share_scheduling_network']:.1f} % | {c['peak_rss_mib_process']:.0f} |"
        )
    return "\n".join(lines)


def verdict(configs: list[dict]) -> str:
    """Whether scheduling + network is under 10 % of the round at N = 50 (as measured), one line."""
    at50 = [c for c in configs if c["nodes"] == 50]
    if not at50:
        return "N = 50 not run: the 10 % target is not checked."
    parts = []
    for c in at50:
        share = c["share_scheduling_network"]
        met = "met" if share < TARGET_SHARE else "NOT met"
        parts.append(
            f"N = 50, {c['participants']} participants: scheduling + network = {100 * share:.1f} % "
            f"of the round, target < {100 * TARGET_SHARE:.0f} % {met}"
        )
    return "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; write the JSON; print the markdown table. Returns the JSON's content."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[50, 1000])
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument(
        "--participants",
        nargs="+",
        default=["preset", "20%"],
        help="per N: 'preset' (the preset's value), a share of N ('20%%') or a number; duplicates run once",
    )
    parser.add_argument("--preset", default="paper")
    parser.add_argument(
        "--set", dest="extra", action="append", default=[], help="extra config override"
    )
    parser.add_argument(
        "--profile",
        type=int,
        nargs="*",
        default=[],
        help="N values to profile with cProfile after timing (rounds: --profile-rounds)",
    )
    parser.add_argument("--profile-rounds", type=int, default=3)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument(
        "--table-only", action="store_true", help="print the table of an existing --out JSON"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.table_only:
        data = json.loads(out.read_text())
        print(markdown_table(data["configs"]))
        print(verdict(data["configs"]))
        return data
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be >= 1 and --warmup >= 0")

    def log(msg: str) -> None:
        print(msg, flush=True)

    from ceas.config import load_config

    preset_participants = load_config(args.preset, args.extra).scheduling.participants
    info = machine_info()
    log(
        f"machine: {info['cpu']}, {info['usable_cores']} usable cores, python {info['python']}, "
        f"numpy {info['numpy']}, load {info['load_average_at_start']}"
    )
    wall_start = time.perf_counter()
    configs = []
    for nodes in args.nodes:
        seen = set()
        for token in args.participants:
            m = participants_for(token, nodes, preset_participants)
            if m in seen:
                continue
            seen.add(m)
            log(f"N = {nodes}, participants = {m} ({token}): {args.warmup} + {args.rounds} rounds")
            res = bench_config(
                args.preset,
                nodes,
                m,
                args.rounds,
                args.warmup,
                args.extra,
                args.profile_rounds if nodes in args.profile else 0,
                log,
            )
            res["participants_option"] = token
            p = res["phases"]
            log(
                f"  round {p['round']['median_ms']:.1f} ms (median), scheduling "
                f"{p['scheduling']['median_ms']:.1f}, network {p['network']['median_ms']:.1f}, learning "
                f"{p['learning']['median_ms']:.1f}, other {p['other']['median_ms']:.1f}; share "
                f"{100 * res['share_scheduling_network']:.1f} %; wall {res['wall_s']:.1f} s"
            )
            configs.append(res)
    info["load_average_at_end"] = os.getloadavg()
    result = {
        "benchmark": "broker_scaling",
        "command": "python benchmarks/broker_scaling.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": info,
        "git": git_state(),
        "target": {"nodes": 50, "share_below": TARGET_SHARE, "verdict": verdict(configs)},
        "total_wall_s": time.perf_counter() - wall_start,
        "peak_rss_mib": peak_rss_mib(),
        "configs": configs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    log(f"wrote {out}")
    log(markdown_table(configs))
    log(result["target"]["verdict"])
    return result


if __name__ == "__main__":
    main()
