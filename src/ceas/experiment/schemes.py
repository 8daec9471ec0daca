"""``ceas schemes``: the three ways of distributing the QNN (SPEC §7, Fig. 1a-c) on the same network, under the CEAS
policy and under random scheduling.

Every scheme trains the same circuit on the same data over the same simulated network (the paper preset's star of
N = 50 QPUs), with classical authenticated replies (split gradients travel classically) and no Byzantine nodes; each
round computes the same number of minibatch gradients (``scheduling.participants``: nodes at the data level,
replicas of K QPUs for a split circuit). The data-level scheme spends pairs only on verification and key; a split
circuit also on its QPU-QPU pairs (:mod:`ceas.broker.circuit_pairs`)::

    ceas schemes --seeds 5            # the comparison in docs/results.md
    ceas schemes --quick --seeds 2    # a smaller one

Every run is a grid cell (:mod:`ceas.experiment.grid`), an ordinary run folder ``<out>/<scheme>-<policy>-s<seed>``
reused when it has finished with the same configuration, code version and plugins. Per scheme and policy (mean and
95 % interval over seeds): test accuracy over the last 10 % of rounds, Bell pairs generated per round (all links,
all purposes), the pair utilisation (link pairs consumed by work whose result was used over pairs generated; every
QPU-QPU pair a split circuit consumes is two link pairs, all used), the round's duration (τ, or the slowest replica's
circuit runs when longer), and the mean fidelity of the QPU-QPU pairs at use. Written to ``results.json`` and
``report.md``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ceas.config import load_config
from ceas.experiment import dataset, store
from ceas.experiment.grid import RETRIES, Cell, run_grid
from ceas.experiment.reproduce import _mean_ci

__all__ = ["POLICY_SETTINGS", "SCHEME_SETTINGS", "compare_schemes", "plan_schemes"]

SCHEME_SETTINGS: dict[str, list[str]] = {
    "data": [],
    "unitary": ["partitions.scheme=unitary", "partitions.blocks=2"],
    "circuit": ["partitions.scheme=circuit", "partitions.qubits_per_qpu=2"],
}
"""The schemes compared and their settings (K = 2 QPUs per replica for both split schemes on the 4-qubit circuit)."""

POLICY_SETTINGS: dict[str, list[str]] = {
    "ceas": ["scheduling.policy=ceas"],
    "random": ["scheduling.policy=random"],
}

BASE = [
    "broker.payload=classical",
    "security.byzantine_fraction=0",
    "run.rounds=40",
    "training.batch_size=16",
    "training.shots=32",
]
"""What every scheme shares beyond the paper preset: classical replies, no attack, and fewer shots and samples than
the paper's 512 × 32 -- a split circuit's pair demand (and the time to simulate its stream) grows with both."""

QUICK = ["run.rounds=15", "scheduling.participants=4"]


def plan_schemes(
    *, seeds: int, out: Path, quick: bool = False, overrides: list[str] | None = None
) -> list[Cell]:
    """Every run as a grid cell (parameters ``scheme``, ``policy``, ``seed``); bad settings fail before any run."""
    cells = []
    for scheme, settings in SCHEME_SETTINGS.items():
        for policy, chosen in POLICY_SETTINGS.items():
            for seed in range(seeds):
                extra = BASE + (QUICK if quick else []) + list(overrides or []) + settings + chosen
                extra += [
                    f"run.seed={seed}",
                    f"run.name={json.dumps(f'{scheme}-{policy}-s{seed}')}",
                    f"run.out_dir={json.dumps(str(out))}",
                ]
                cells.append(
                    Cell(load_config("paper", extra), {"scheme": scheme, "policy": policy, "seed": seed})
                )
    return cells


def _per_run(rows: list[dict[str, Any]], round_s: float) -> dict[str, float]:
    """One run's figures (module docstring)."""
    tail = rows[-max(1, len(rows) // 10) :]
    circuit = [r.get("circuit_pairs") or 0 for r in rows]
    circuit_generated = [r.get("circuit_pairs_generated") or 0 for r in rows]
    generated = [r["pairs_generated"] for r in rows]
    network_used = rows[-1]["utilisation"] * sum(generated)  # the network's run-long utilisation
    all_generated = sum(generated) + sum(circuit_generated)
    fid = [r.get("circuit_fidelity") for r in rows if r.get("circuit_fidelity") is not None]
    return {
        "accuracy": float(np.nanmean([r["test_accuracy"] for r in tail])),
        "pairs_per_round": all_generated / len(rows),
        "qpu_pairs_per_round": sum(circuit) / len(rows),
        "utilisation": (network_used + 2 * sum(circuit)) / all_generated if all_generated else math.nan,
        "round_time_s": float(np.mean([r.get("round_time_s") or round_s for r in rows])),
        "pair_fidelity": float(np.nanmean(fid)) if fid else math.nan,
    }


FIGURES = (
    ("accuracy", "test accuracy (last 10 % of rounds)", 3),
    ("pairs_per_round", "Bell pairs generated per round (all links)", 0),
    ("qpu_pairs_per_round", "QPU-QPU pairs consumed per round", 0),
    ("utilisation", "pair utilisation", 3),
    ("round_time_s", "round duration (s)", 1),
    ("pair_fidelity", "QPU-QPU pair fidelity at use", 4),
)


def report(result: dict[str, Any]) -> str:
    """The comparison as one Markdown table (mean ± 95 % interval over seeds)."""
    lines = [
        f"| scheme | policy | " + " | ".join(label for _, label, _ in FIGURES) + " |",
        "|---|---|" + "---|" * len(FIGURES),
    ]
    for scheme, by_policy in result["table"].items():
        for policy, fig in by_policy.items():
            cells = []
            for key, _, digits in FIGURES:
                mean, half = fig[key]
                cells.append("n/a" if math.isnan(mean) else f"{mean:.{digits}f} ± {half:.{digits}f}")
            lines.append(f"| {scheme} | {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare_schemes(
    *,
    seeds: int = 5,
    out: Path | None = None,
    quick: bool = False,
    workers: int = 2,
    overrides: list[str] | None = None,
    progress: bool = True,
    fresh: bool = False,
    backend: str = "local",
    address: str | None = None,
    retries: int = RETRIES,
) -> dict[str, Any]:
    """Run (or reuse, or resume) every scheme × policy × seed; write results.json and report.md."""
    out = Path(out or ("runs/schemes-quick" if quick else "runs/schemes"))
    cells = plan_schemes(seeds=seeds, out=out, quick=quick, overrides=overrides)
    grid = run_grid(
        cells, out=out, backend=backend, address=address, workers=workers, retries=retries,
        progress=progress, fresh=fresh,
    )  # fmt: skip
    runs = dataset.read_cells(out / dataset.DATASET, [c.name for c in cells])
    table: dict[str, dict[str, Any]] = {}
    for cell, run in zip(cells, runs):
        fig = _per_run(run["metrics"], cell.config.scheduling.round_s)
        by = table.setdefault(cell.params["scheme"], {}).setdefault(cell.params["policy"], {})
        for key, value in fig.items():
            by.setdefault(key, []).append(value)
    table = {
        s: {p: {k: _mean_ci(v) for k, v in figs.items()} for p, figs in by.items()}
        for s, by in table.items()
    }
    result = {
        "seeds": seeds,
        "quick": quick,
        "base": BASE + (QUICK if quick else []),
        "overrides": list(overrides or []),
        "schemes": SCHEME_SETTINGS,
        "table": table,
    }
    store.write_json_atomic(out / "results.json", result)
    store.write_text_atomic(out / "report.md", report(result))
    return {"out": out, "grid": grid, **result}
