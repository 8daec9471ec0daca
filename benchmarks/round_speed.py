"""Paper round, quick grid cell and command start-up: today's code against a reference commit, side by side.

    python benchmarks/round_speed.py                       # reference = 109510a (main before issue 16)
    python benchmarks/round_speed.py --ref 109510a --reps 3 --out benchmarks/results/round_speed.json

The reference commit's ``src/`` is exported with ``git archive`` into a temporary folder; both trees run in
subprocesses of the same interpreter (``PYTHONPATH`` picks the tree), interleaved (ref, new, ref, new, …), so
that load on the machine hits both alike. Reported: medians, and the ratio ref/new of each measurement.

Measurements
------------
round      ms per paper round (``configs/paper.toml``: 50 nodes, 10 participants, 512 shots, broker, attacks),
           after 3 warm-up rounds, in-process timer over ``--rounds`` rounds.
grid       wall time of ``ceas reproduce --quick --seeds 4`` (scenarios × 4 seeds: 24 quick cells at 109510a, 32 today; 2 workers,
           ``--fresh``) -> cells per hour.
startup    wall time of ``ceas --help``, ``ceas validate configs/paper.toml``, ``ceas show quick`` (bytecode cached,
           as after an install).
profile    cProfile of one paper run (``--profile-rounds`` rounds, with its checkpoints, summary and plots) and of one
           quick grid cell run after another in the same process (as a grid worker does), split into phases by the
           cumulative time of each phase's entry functions (:data:`PHASES`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# phase -> entry functions (path suffix, function name[<-caller]); a phase's time is the sum of their cumulative
# times. Both trees' names are listed: the reference (109510a) runs the round in broker/round.py and the learning
# layer in experiment/trainer.py, the current tree in the broker's phase modules (configure, local, transport,
# aggregate, account) and broker/learning.py; an entry that names no function of a tree adds nothing there.
PHASES = {
    "scheduling": [
        ("broker/round.py", "_views"),
        ("broker/configure.py", "views"),
        ("policies/", "__call__"),
    ],
    "network": [("broker/round.py", "_execute"), ("broker/configure.py", "execute")],
    "local gradients (incl. QFI refresh)": [
        ("experiment/trainer.py", "local_gradients"),
        ("broker/learning.py", "local_gradients"),
        ("qnn/model.py", "qfi_summary"),
    ],
    "payload, MACs, verification, adversary": [
        ("broker/payload.py", "encode<-run_round"),
        ("broker/payload.py", "payload_scale<-run_round"),
        ("broker/payload.py", "deliver"),
        ("security/messages.py", "sign"),
        ("security/messages.py", "verify"),
        ("security/verification.py", "sample_honest_test"),
        ("security/verification.py", "honest_test_errors"),
        ("security/verification.py", "estimate_fidelity"),
        ("security/attacks.py", "updates"),
        ("security/attacks.py", "inject"),
        ("security/attacks.py", "claims"),
    ],
    "aggregation (stamps, robust rule)": [
        ("consensus/robust.py", "aggregate"),
        ("consensus/stamps.py", "verify_stamps"),
        ("consensus/stamps.py", "tighten_claims"),
    ],
    "trust": [("consensus/trust.py", "update"), ("consensus/trust.py", "penalize")],
    "metrics (test accuracy, full-batch gradient)": [
        ("experiment/trainer.py", "evaluate"),
        ("qnn/model.py", "loss_and_grad<-run_round"),
        ("broker/learning.py", "evaluate"),
        ("broker/learning.py", "full_gradient"),
    ],
    "I/O (checkpoints, metrics, summary, plots)": [
        ("experiment/runner.py", "checkpoint"),
        ("experiment/store.py", "write_json_atomic<-run"),
        ("experiment/store.py", "write_text_atomic<-run"),
        ("experiment/plots.py", "plot_accuracy"),
        ("experiment/plots.py", "plot_network"),
    ],
    "setup (data set, network, trainer)": [("experiment/runner.py", "make_trainer")],
}

# --------------------------------------------------------------------------------------------------------------
# child side: runs inside the tree under test (PYTHONPATH)
# --------------------------------------------------------------------------------------------------------------


def _child_round(rounds: int) -> dict:
    from ceas.config import load_config
    from ceas.experiment.runner import make_trainer

    cfg = load_config("paper", [f"run.rounds={rounds + 3}"])
    trainer = make_trainer(cfg)
    opt = trainer.make_optimizer()
    theta = trainer.initial_parameters()
    for t in range(3):
        theta = trainer.run_round(t, theta, opt).theta
    t0 = time.perf_counter()
    for t in range(3, 3 + rounds):
        theta = trainer.run_round(t, theta, opt).theta
    return {"ms_per_round": 1000 * (time.perf_counter() - t0) / rounds}


def _phases(stats, wall: float) -> dict:
    table = {}
    for phase, entries in PHASES.items():
        total = 0.0
        for suffix, name in entries:
            caller = None
            if "<-" in name:
                name, caller = name.split("<-")
            for (path, _, func), (_, _, _, ct, callers) in stats.stats.items():
                if func != name or suffix not in path.replace(os.sep, "/"):
                    continue
                if caller is None:
                    total += ct
                else:
                    total += sum(v[3] for k, v in callers.items() if k[2] == caller)
        table[phase] = total
    table["other"] = max(0.0, wall - sum(table.values()))
    table["total"] = wall
    return table


def _child_profile(rounds: int, out_dir: str) -> dict:
    import cProfile
    import pstats

    from ceas.config import load_config
    from ceas.experiment import reproduce
    from ceas.experiment.runner import run

    # imports (lazy in the new tree) and first-call caches warmed by a short run of another seed, so that both
    # trees are profiled in the steady state of a long session; start-up is measured separately
    warm = load_config(
        "paper",
        ["run.rounds=2", "run.seed=1", f"run.out_dir={json.dumps(out_dir)}", 'run.name="warm"'],
    )
    run(warm, overwrite=True, progress=False)
    # one paper run: rounds, checkpoints, summary, plots
    cfg = load_config(
        "paper", [f"run.rounds={rounds}", f"run.out_dir={json.dumps(out_dir)}", 'run.name="paper"']
    )
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(run, cfg, overwrite=True, progress=False)
    paper = _phases(pstats.Stats(prof), time.perf_counter() - t0)
    paper["rounds"] = rounds
    # one quick grid cell, the second of a worker (the first warms imports and, where cached, the data set)
    cells = reproduce.plan("paper", quick=True, seeds=1, out=Path(out_dir) / "grid", overrides=[])
    if hasattr(reproduce, "_run_one"):  # the reference tree (before grids had backends)
        run_one = reproduce._run_one
    else:
        from ceas.experiment.grid import run_cell

        cells = [c.config for c in cells]
        run_one = run_cell
    run_one(cells[0])
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(run_one, cells[1])
    cell = _phases(pstats.Stats(prof), time.perf_counter() - t0)
    return {"paper_run": paper, "quick_cell": cell}


# --------------------------------------------------------------------------------------------------------------
# parent side
# --------------------------------------------------------------------------------------------------------------


def _env(src: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src)
    return env


def _ceas() -> list[str]:
    return [sys.executable, "-c", "import sys; from ceas.cli import main; sys.exit(main())"]


def _cells_run(out: Path) -> int:
    """Runs a finished ``reproduce`` folder holds (one sub-folder per cell besides its dataset)."""
    return sum(1 for p in out.iterdir() if p.is_dir() and (p / "config.toml").exists())


def _timed(cmd: list[str], env: dict, cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _child(src: Path, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        env=_env(src),
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _summary(ref: list[float], new: list[float], lower_is_better: bool = True) -> dict:
    r, n = statistics.median(ref), statistics.median(new)
    return {
        "ref": ref,
        "new": new,
        "ref_median": r,
        "new_median": n,
        "speedup": (r / n) if lower_is_better else (n / r),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--ref", default="109510a", help="reference commit (default: main before issue 16)"
    )
    ap.add_argument(
        "--reps", type=int, default=3, help="interleaved repetitions of round and start-up timing"
    )
    ap.add_argument(
        "--grid-reps", type=int, default=2, help="interleaved repetitions of the 24-cell grid"
    )
    ap.add_argument("--rounds", type=int, default=30, help="timed paper rounds per repetition")
    ap.add_argument(
        "--profile-rounds", type=int, default=100, help="rounds of the profiled paper run"
    )
    ap.add_argument("--skip-grid", action="store_true")
    ap.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "round_speed.json"
    )
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        kind, *rest = args.child
        result = (
            _child_round(int(rest[0])) if kind == "round" else _child_profile(int(rest[0]), rest[1])
        )
        print(json.dumps(result))
        return 0

    work = Path(tempfile.mkdtemp(prefix="ceas-bench-"))
    try:
        ref_root = work / "ref"
        ref_root.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.ref, "src", "configs"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(ref_root)], input=archive, check=True)
        trees = {"ref": ref_root / "src", "new": ROOT / "src"}
        for src in trees.values():  # bytecode cached in both, as after an install
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(src)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        commit_new = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "src"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        result: dict = {
            "command": "python benchmarks/round_speed.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "ref_commit": args.ref,
            "new_commit": commit_new + ("+dirty" if dirty else ""),
            "machine": {
                "cpus": os.cpu_count(),
                "processor": platform.processor() or platform.machine(),
                "python": platform.python_version(),
                "loadavg_start": os.getloadavg(),
            },
        }

        # 1. one paper round
        rounds = {"ref": [], "new": []}
        for _ in range(args.reps):
            for name, src in trees.items():
                rounds[name].append(_child(src, "round", str(args.rounds))["ms_per_round"])
                print(f"round {name}: {rounds[name][-1]:.1f} ms", file=sys.stderr)
        result["paper_round_ms"] = _summary(rounds["ref"], rounds["new"])

        # 2. start-up of commands that do no training
        startup = {}
        for label, cmd in (
            ("--help", ["--help"]),
            ("validate configs/paper.toml", ["validate", "configs/paper.toml"]),
            ("show quick", ["show", "quick"]),
        ):
            times = {"ref": [], "new": []}
            for _ in range(max(args.reps, 5)):
                for name, src in trees.items():
                    times[name].append(_timed(_ceas() + cmd, _env(src), ROOT))
            startup[label] = _summary(times["ref"], times["new"])
            print(
                f"start-up {label}: {startup[label]['ref_median']:.2f} s -> {startup[label]['new_median']:.2f} s",
                file=sys.stderr,
            )
        result["startup_s"] = startup

        # 3. a grid of quick cells (every scenario x 4 seeds)
        if not args.skip_grid:
            walls = {"ref": [], "new": []}
            cells = {"ref": 0, "new": 0}  # scenarios x 4 seeds: the trees may have different scenario lists
            for rep in range(args.grid_reps):
                for name, src in trees.items():
                    out = work / f"grid-{name}-{rep}"
                    cmd = _ceas() + [
                        "reproduce",
                        "--quick",
                        "--seeds",
                        "4",
                        "--workers",
                        "2",
                        "--out",
                        str(out),
                        "--fresh",
                        "-q",
                    ]
                    walls[name].append(_timed(cmd, _env(src), ROOT))
                    cells[name] = _cells_run(out)
                    shutil.rmtree(out, ignore_errors=True)
                    print(f"grid {name}: {walls[name][-1]:.1f} s", file=sys.stderr)
            grid = _summary(walls["ref"], walls["new"])
            grid["cells"] = cells
            grid["ref_cells_per_hour"] = cells["ref"] * 3600 / grid["ref_median"]
            grid["new_cells_per_hour"] = cells["new"] * 3600 / grid["new_median"]
            # the target is cells per hour, so the ratio is of rates, not of wall times
            grid["speedup"] = grid["new_cells_per_hour"] / grid["ref_cells_per_hour"]
            result["grid_24_quick_cells_s"] = grid

        # 4. profiles by phase
        result["profile_s"] = {
            name: _child(src, "profile", str(args.profile_rounds), str(work / f"profile-{name}"))
            for name, src in trees.items()
        }
        result["machine"]["loadavg_end"] = os.getloadavg()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(_table(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _table(result: dict) -> str:
    lines = ["| measurement | ref | new | ratio ref/new |", "|---|---|---|---|"]
    r = result["paper_round_ms"]
    lines.append(
        f"| paper round (ms) | {r['ref_median']:.1f} | {r['new_median']:.1f} | {r['speedup']:.2f}× |"
    )
    if "grid_24_quick_cells_s" in result:
        g = result["grid_24_quick_cells_s"]
        lines.append(
            f"| quick grid, 4 seeds (cells/hour) | {g['ref_cells_per_hour']:.0f} | {g['new_cells_per_hour']:.0f} | "
            f"{g['speedup']:.2f}× |"
        )
    for label, s in result["startup_s"].items():
        lines.append(
            f"| `ceas {label}` (s) | {s['ref_median']:.2f} | {s['new_median']:.2f} | {s['speedup']:.2f}× |"
        )
    for what in ("paper_run", "quick_cell"):
        ref, new = result["profile_s"]["ref"][what], result["profile_s"]["new"][what]
        lines += ["", f"| {what} phase (s, cProfile) | ref | new | ratio |", "|---|---|---|---|"]
        for phase in ref:
            if phase == "rounds":
                continue
            ratio = ref[phase] / new[phase] if new[phase] > 0 else float("inf")
            lines.append(f"| {phase} | {ref[phase]:.3f} | {new[phase]:.3f} | {ratio:.1f}× |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
