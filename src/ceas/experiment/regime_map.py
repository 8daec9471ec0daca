"""``ceas map``: where entanglement-aware scheduling changes what learning receives (issue 11, item 2).

A 2-D grid over the network's regime, with the **paired** accuracy difference between CEAS and the *same defences
under oblivious scheduling* in each cell, with and without the adaptive attack:

* **x, supply / demand** -- a link setting varied per column (default ``network.link.eta0``: the heralding rate of
  single-click links is proportional to it). Each cell reports its supply / demand ratio: the median channel's pairs
  heralded per round (rate·τ) over the pairs one participant needs per round (payload P·S_p plus verification k).
  Any other key can be varied instead, e.g. ``scheduling.payload_copies`` (larger payloads) or
  ``network.topology.length_max_km`` (longer links).
* **y, coherence time / round time** -- every memory gets coherence time T = r·τ (``coherence_min_s =
  coherence_max_s``), for each ratio r. Each cell reports the age bins of the scheduling MDP
  (:class:`ceas.scheduling.mdp.MDPSpec`: ``min(age_bins, ⌊a_cut/τ⌋ + 1)`` per channel), so a reader sees where pairs
  can outlive a round.

Scenarios (defined here, so the map does not depend on ``reproduce``'s list):

===================  =================  ===================================================
scenario             scheduling policy  defences
===================  =================  ===================================================
ceas                 ceas               trimmed mean, fidelity weighting, the rest default
defences-oblivious   oblivious          the same
===================  =================  ===================================================

Attack settings: ``none`` (no Byzantine node) and ``adaptive`` (the configuration's Byzantine fraction, 0.2 in the
paper preset, running the adaptive attack that knows the aggregation rule).

Every run is a grid cell (:func:`~ceas.experiment.grid.run_grid`: reused when finished with the same config, code
and plugins; resumed when killed); the per-round metrics land in ``<out>/dataset``. From it the map writes
``results.json`` (per attack and cell: paired difference mean, 95 % t-interval, worst seed, per-seed values;
utilisation, fidelity at use and accepted replies per scenario; the cell's physics), ``report.md`` and the heatmaps
``accuracy.png`` (paired difference per attack) and ``utilisation.png``.

:func:`storage_probe` measures, for one configuration, whether stored pairs are used across rounds: it runs the
broker with a recording wrapper around the configured policy (decisions unchanged) and returns the ages of the
stored pairs each decision spends.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ceas.config import RunConfig, load_config
from ceas.errors import ConfigError
from ceas.experiment import dataset, store
from ceas.experiment.grid import RETRIES, Cell, GridRun, run_grid
from ceas.experiment.reproduce import _mean_ci
from ceas.experiment.sweep import parse_vary

__all__ = [
    "MAP_ATTACKS",
    "MAP_QUICK",
    "MAP_SCENARIOS",
    "cell_physics",
    "plan_map",
    "regime_map",
    "storage_probe",
    "summarise_map",
]

MAP_SCENARIOS: dict[str, list[str]] = {
    "ceas": [
        'scheduling.policy="ceas"',
        'consensus.aggregator="trimmed-mean"',
        "consensus.fidelity_weighting=true",
    ],
    "defences-oblivious": [
        'scheduling.policy="oblivious"',
        'consensus.aggregator="trimmed-mean"',
        "consensus.fidelity_weighting=true",
    ],
}
"""CEAS, and CEAS's defences with the entanglement-oblivious round-robin policy (the only difference: scheduling)."""

MAP_ATTACKS: dict[str, list[str]] = {
    "none": ["security.byzantine_fraction=0", "security.attacks=[]"],
    "adaptive": ['security.attacks=["adaptive"]'],
}
"""Attack settings of the map: no Byzantine node, or the base's Byzantine fraction running the adaptive attack."""

DEFAULT_X = "network.link.eta0=0.05,0.15,0.5"
"""Supply axis: single-click heralding rate ∝ eta0 (0.5 is the paper's value), payload fixed at P·S_p = 128."""
DEFAULT_Y = (0.5, 5.0, 50.0)
"""Coherence / round axis: T = 0.5 τ (one age bin at F0 = 0.95), 5 τ (two), 50 τ (four, the cap)."""

MAP_QUICK = [
    "run.rounds=40",
    "training.nodes=30",
    "scheduling.participants=6",
    "training.shots=256",
]
"""``--quick``: the small configuration of ``reproduce --quick`` (40 rounds, 30 nodes, 6 participants)."""
QUICK_X = "network.link.eta0=0.05,0.5"
QUICK_Y = (0.5, 50.0)


def _name(scenario: str, attack: str, i: int, j: int, seed: int) -> str:
    return f"{scenario}-{attack}-x{i}-y{j}-s{seed}"


def plan_map(
    base: str,
    *,
    x: str = DEFAULT_X,
    y: tuple[float, ...] | list[float] = DEFAULT_Y,
    attacks: list[str] | None = None,
    seeds: int = 5,
    out: Path,
    quick: bool = False,
    overrides: list[str] | None = None,
) -> tuple[str, list[str], list[Cell]]:
    """Every run of the map as a grid cell; bad axes, attacks or seeds fail before anything runs.

    Returns (x key, x values, cells). Cell parameters: ``scenario``, ``attack``, ``seed``, ``x_index``, ``y_index``,
    the x key (its value; a float when numeric) and ``coherence_over_round``.
    """
    key, values = parse_vary(x)
    attacks = list(attacks or MAP_ATTACKS)
    bad = [a for a in attacks if a not in MAP_ATTACKS]
    if bad:
        raise ConfigError(f"attack setting {bad[0]!r} is unknown; allowed: {', '.join(MAP_ATTACKS)}")
    ratios = [float(r) for r in y]
    if not ratios or any(not (r > 0 and math.isfinite(r)) for r in ratios):
        raise ConfigError(f"coherence ratios {list(y)!r} are not allowed; allowed: numbers > 0")
    if len(set(ratios)) != len(ratios):
        raise ConfigError(f"coherence ratios {list(y)!r}: a value appears twice")
    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}")
    head = (MAP_QUICK if quick else []) + list(overrides or [])
    tau = load_config(base, head).scheduling.round_s
    cells = []
    for i, value in enumerate(values):
        try:
            column: Any = float(value)
        except ValueError:
            column = value
        for j, r in enumerate(ratios):
            physics = [
                f"{key}={value}",
                f"network.memory.coherence_min_s={r * tau!r}",
                f"network.memory.coherence_max_s={r * tau!r}",
            ]
            for attack in attacks:
                for scenario, settings in MAP_SCENARIOS.items():
                    for seed in range(seeds):
                        name = _name(scenario, attack, i, j, seed)
                        extra = head + physics + MAP_ATTACKS[attack] + settings + [
                            f"run.seed={seed}",
                            f"run.name={json.dumps(name)}",
                            f"run.out_dir={json.dumps(str(out))}",
                            "broker.enabled=true",
                        ]  # fmt: skip
                        params = {"scenario": scenario, "attack": attack, "seed": seed,
                                  "x_index": i, "y_index": j, key: column, "coherence_over_round": r}  # fmt: skip
                        cells.append(Cell(load_config(base, extra), params))
    return key, values, cells


def cell_physics(cfg: RunConfig, ctx: Any = None) -> dict[str, Any]:
    """The regime of one configuration: channel rates, supply / demand and the scheduling MDP's age bins.

    Supply / demand = median channel's pairs per round (rate·τ) over one participant's pairs per round (payload
    P·S_p + verification k). Age bins come from :class:`~ceas.scheduling.mdp.MDPSpec` on the run's own channels.
    ``ctx``: the run's :class:`~ceas.broker.setup.BrokerContext` when already built.
    """
    from ceas.broker.setup import build_context
    from ceas.scheduling.mdp import MDPSpec

    ctx = ctx if ctx is not None else build_context(cfg)
    ch = ctx.channels
    tau = cfg.scheduling.round_s
    demand = ctx.payload_pairs + cfg.security.verification_pairs
    f_min = cfg.network.memory.f_min
    n = ch.n
    spec = MDPSpec(
        f0=np.maximum(ch.f0, np.nextafter(f_min, 1.0)),
        t_coh_s=ch.t_coh_s,
        slots=np.full(n, cfg.network.memory.slots),
        arrivals=np.maximum(ch.rate_hz * tau, 1e-9),
        trust=np.ones(n),
        phi=np.ones(n),
        ready_prob=np.ones(n),
        tag_steps=0,
        key_levels=0,
        key_init=0,
        f_min=f_min,
        params=cfg.scheduling,
    )
    per_round = ch.rate_hz * tau
    return {
        "rate_hz_median": float(np.median(ch.rate_hz)),
        "rate_hz_range": [float(ch.rate_hz.min()), float(ch.rate_hz.max())],
        "pairs_per_round_median": float(np.median(per_round)),
        "demand_pairs": int(demand),
        "supply_over_demand": float(np.median(per_round) / demand) if demand else math.inf,
        "cutoff_s_median": float(np.median(ch.cutoff_s)),
        "f0_median": float(np.median(ch.f0)),
        "age_bins_min": int(spec.bins.min()),
        "age_bins_median": float(np.median(spec.bins)),
        "age_bins_max": int(spec.bins.max()),
    }


def _final10(rows: list[dict[str, Any]]) -> float:
    tail = rows[-max(1, len(rows) // 10) :]
    return float(np.nanmean([r["test_accuracy"] for r in tail]))


def _cell_summary(
    runs: dict[tuple[str, int], list[dict[str, Any]]], seeds: list[int]
) -> dict[str, Any]:
    """One (attack, x, y) cell: per-scenario means and the paired CEAS − defences-oblivious difference."""
    out: dict[str, Any] = {"scenarios": {}}
    for s in MAP_SCENARIOS:
        rows = [runs[(s, k)] for k in seeds]
        out["scenarios"][s] = {
            "final10_accuracy": _mean_ci([_final10(r) for r in rows]),
            "utilisation": _mean_ci([r[-1]["utilisation"] for r in rows]),
            "fidelity_at_use": _mean_ci(
                [float(np.nanmean([x["fidelity_at_use"] for x in r])) for r in rows]
            ),
            "accepted": _mean_ci([float(np.mean([x["accepted"] for x in r])) for r in rows]),
            "pairs_held": _mean_ci([float(np.mean([x["pairs_held"] for x in r])) for r in rows]),
        }
    diffs = [_final10(runs[("ceas", k)]) - _final10(runs[("defences-oblivious", k)]) for k in seeds]
    mean, half = _mean_ci(diffs)
    worst = int(np.argmin(diffs))
    out["paired_difference"] = {
        "mean": mean,
        "half_width": half,
        "interval": [mean - half, mean + half],
        "per_seed": diffs,
        "worst_seed": seeds[worst],
        "worst": diffs[worst],
        "beyond_interval": bool(len(diffs) > 1 and abs(mean) > half),
    }
    return out


def summarise_map(
    results: list[dict[str, Any]],
    cells: list[Cell],
    key: str,
    values: list[str],
    ratios: list[float],
) -> dict[str, Any]:
    """The map from the grid's per-round metrics (``results`` in the order of ``cells``)."""
    by: dict[tuple[str, int, int], dict[tuple[str, int], list[dict[str, Any]]]] = {}
    for cell, res in zip(cells, results):
        p = cell.params
        by.setdefault((p["attack"], p["x_index"], p["y_index"]), {})[(p["scenario"], p["seed"])] = (
            res["metrics"]
        )
    physics = {}
    for cell in cells:  # one configuration per (x, y): the physics of seed 0's CEAS run
        p = cell.params
        if (
            p["scenario"] == "ceas"
            and p["seed"] == 0
            and (p["x_index"], p["y_index"]) not in physics
        ):
            physics[(p["x_index"], p["y_index"])] = cell_physics(cell.config)
    attacks = list(dict.fromkeys(c.params["attack"] for c in cells))
    seeds = sorted({c.params["seed"] for c in cells})
    table: dict[str, list[list[dict[str, Any]]]] = {}
    for attack in attacks:
        table[attack] = [
            [
                {**_cell_summary(by[(attack, i, j)], seeds), "physics": physics[(i, j)]}
                for i in range(len(values))
            ]
            for j in range(len(ratios))
        ]
    return {
        "x_key": key,
        "x_values": values,
        "coherence_over_round": ratios,
        "attacks": attacks,
        "scenarios": list(MAP_SCENARIOS),
        "seeds": len(seeds),
        "table": table,
    }


def report(result: dict[str, Any]) -> str:
    """The map as Markdown: per attack, one row per (coherence, supply) cell."""
    key = result["x_key"]
    lines = [f"## Regime map ({result['seeds']} paired seeds, {result['base']} configuration)", ""]
    lines.append(
        "Paired difference = CEAS − the same defences with oblivious scheduling (accuracy, mean over the last 10 % "
        "of rounds, points), mean ± 95 % t-interval; * = the interval excludes 0."
    )
    lines.append("")
    for attack in result["attacks"]:
        lines += [f"**attack: {attack}**", ""]
        lines.append(
            f"| T/τ | {key} | supply/demand | age bins (min–max) | CEAS − oblivious (points) | worst seed | "
            "utilisation ceas / oblivious | fidelity at use ceas / oblivious | accepted ceas / oblivious |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for j, r in enumerate(result["coherence_over_round"]):
            for i, value in enumerate(result["x_values"]):
                c = result["table"][attack][j][i]
                ph, d, sc = c["physics"], c["paired_difference"], c["scenarios"]
                star = "*" if d["beyond_interval"] else ""
                lines.append(
                    f"| {r:g} | {value} | {ph['supply_over_demand']:.2f} | {ph['age_bins_min']}–{ph['age_bins_max']} "
                    f"| {100 * d['mean']:+.1f} ± {100 * d['half_width']:.1f}{star} | {100 * d['worst']:+.1f} "
                    f"(seed {d['worst_seed']}) | {sc['ceas']['utilisation'][0]:.3f} / "
                    f"{sc['defences-oblivious']['utilisation'][0]:.3f} | {sc['ceas']['fidelity_at_use'][0]:.4f} / "
                    f"{sc['defences-oblivious']['fidelity_at_use'][0]:.4f} | {sc['ceas']['accepted'][0]:.2f} / "
                    f"{sc['defences-oblivious']['accepted'][0]:.2f} |"
                )
        lines.append("")
    lines.append(f"Grid time: {result['wall_s']:.0f} s ({result['grid']}).")
    return "\n".join(lines) + "\n"


def _axes_labels(result: dict[str, Any]) -> tuple[list[str], list[str]]:
    row0 = result["table"][result["attacks"][0]]
    xs = [
        f"{v}\n(s/d {row0[0][i]['physics']['supply_over_demand']:.2g})"
        for i, v in enumerate(result["x_values"])
    ]
    ys = [
        f"{r:g}\n({row0[j][0]['physics']['age_bins_min']}-{row0[j][0]['physics']['age_bins_max']} bins)"
        for j, r in enumerate(result["coherence_over_round"])
    ]
    return xs, ys


def plot_map(result: dict[str, Any], accuracy_path: Path, utilisation_path: Path) -> None:
    """Heatmaps: the paired accuracy difference per attack; utilisation per scenario and attack."""
    from ceas.experiment.plots import _figure

    plt = _figure()
    xs, ys = _axes_labels(result)
    attacks, table = result["attacks"], result["table"]

    def panel(ax, grid, text, title, cmap, vmin, vmax):
        im = ax.imshow(grid, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(xs)), xs, fontsize=7)
        ax.set_yticks(range(len(ys)), ys, fontsize=7)
        ax.set_xlabel(f"{result['x_key']} (supply/demand)", fontsize=8)
        if ax.get_subplotspec().colspan.start == 0:
            ax.set_ylabel("coherence / round (MDP age bins)", fontsize=8)
        ax.set_title(title, fontsize=9)
        for j in range(len(ys)):
            for i in range(len(xs)):
                dark = cmap == "viridis" and grid[j][i] < 0.5
                ax.text(i, j, text[j][i], ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")  # fmt: skip
        return im

    diff = {
        a: np.array([[c["paired_difference"]["mean"] * 100 for c in row] for row in table[a]])
        for a in attacks
    }
    lim = max(1.0, max(float(np.nanmax(np.abs(d))) for d in diff.values()))
    fig, axes = plt.subplots(
        1, len(attacks), figsize=(5.2 * len(attacks), 4.2), dpi=120, squeeze=False
    )
    for ax, a in zip(axes[0], attacks):
        text = [
            [
                f"{100 * c['paired_difference']['mean']:+.1f}±{100 * c['paired_difference']['half_width']:.1f}"
                + ("*" if c["paired_difference"]["beyond_interval"] else "")
                for c in row
            ]
            for row in table[a]
        ]
        im = panel(ax, diff[a], text, f"CEAS − oblivious, attack: {a} (points)", "RdBu", -lim, lim)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    fig.savefig(accuracy_path, bbox_inches="tight")
    plt.close(fig)

    scen = result["scenarios"]
    fig, axes = plt.subplots(len(attacks), len(scen), figsize=(5.0 * len(scen), 4.4 * len(attacks)), dpi=110,
                             squeeze=False)  # fmt: skip
    fig.subplots_adjust(hspace=0.45, wspace=0.35)
    for r, a in enumerate(attacks):
        for k, s in enumerate(scen):
            grid = np.array(
                [[c["scenarios"][s]["utilisation"][0] for c in row] for row in table[a]]
            )
            text = [[f"{v:.3f}" for v in row] for row in grid]
            im = panel(
                axes[r][k], grid, text, f"utilisation: {s}, attack: {a}", "viridis", 0.0, 1.0
            )
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8)
    fig.savefig(utilisation_path, bbox_inches="tight")
    plt.close(fig)


def regime_map(
    base: str = "paper",
    *,
    x: str | None = None,
    y: list[float] | None = None,
    attacks: list[str] | None = None,
    seeds: int | None = None,
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
    """Run (or reuse, or resume) the map's grid; write results.json, report.md, accuracy.png and utilisation.png."""
    x = x or (QUICK_X if quick else DEFAULT_X)
    ratios = [float(r) for r in (y or (QUICK_Y if quick else DEFAULT_Y))]
    seeds = seeds if seeds is not None else (2 if quick else 5)
    out = Path(out or ("runs/map-quick" if quick else "runs/map"))
    key, values, cells = plan_map(
        base, x=x, y=ratios, attacks=attacks, seeds=seeds, out=out, quick=quick, overrides=overrides
    )
    t0 = time.perf_counter()
    grid: GridRun = run_grid(
        cells, out=out, backend=backend, address=address, workers=workers, retries=retries,
        progress=progress, fresh=fresh,
    )  # fmt: skip
    results = dataset.read_cells(out / dataset.DATASET, [c.name for c in cells])
    result = summarise_map(results, cells, key, values, ratios)
    result.update(
        base=f"{base}{' (quick)' if quick else ''}",
        overrides=list(overrides or []),
        wall_s=time.perf_counter() - t0,
        grid=grid.line(),
        workers=workers,
    )
    store.write_json_atomic(out / "results.json", result)
    store.write_text_atomic(out / "report.md", report(result))
    plot_map(result, out / "accuracy.png", out / "utilisation.png")
    return {"out": out, "grid": grid, **result}


class _Recorder:
    """Wraps a policy; records the ages of the stored pairs each decision spends (the decision is unchanged)."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.name = getattr(policy, "name", "policy")
        self.stored_ages: list[np.ndarray] = []
        self.payload_ages: list[np.ndarray] = []
        self.fresh_payload = 0

    def __call__(self, inventory, nodes, rng):
        decision = self.policy(inventory, nodes, rng)
        age = dict(zip(inventory.pair_id.tolist(), inventory.pair_age_s.tolist()))
        spent = [decision.payload, decision.verification, decision.key]
        ids = np.concatenate([np.asarray(a, np.int64).ravel() for a in spent])
        self.stored_ages.append(np.array([age[int(i)] for i in ids], float))
        self.payload_ages.append(
            np.array([age[int(i)] for i in np.asarray(decision.payload).ravel()], float)
        )
        self.fresh_payload += int(np.asarray(decision.requests)[:, 0].sum())
        return decision


def storage_probe(cfg: RunConfig) -> dict[str, Any]:
    """Run ``cfg`` through the broker (no run folder) recording what the policy takes from storage.

    Returns the cell's physics (:func:`cell_physics`), the payload pairs taken from storage and requested fresh, the
    share of payload pairs that had waited at least one round (age ≥ τ), the ages of stored pairs spent (median,
    max, seconds), mean fidelity at use and the last-10 % accuracy.
    """
    from ceas.broker.round import BrokerTrainer

    trainer = BrokerTrainer(cfg)
    rec = _Recorder(trainer.ctx.policy)
    trainer.ctx = dataclasses.replace(trainer.ctx, policy=rec)
    trainer.start()
    theta, opt = trainer.initial_parameters(), trainer.make_optimizer()
    rows = []
    for t in range(cfg.run.rounds):
        res = trainer.run_round(t, theta, opt)
        theta = res.theta
        rows.append(res.metrics)
    tau = cfg.scheduling.round_s
    pay = np.concatenate(rec.payload_ages) if rec.payload_ages else np.zeros(0)
    spent = np.concatenate(rec.stored_ages) if rec.stored_ages else np.zeros(0)
    total_payload = pay.size + rec.fresh_payload
    return {
        "physics": cell_physics(cfg, trainer.ctx),
        "rounds": cfg.run.rounds,
        "stored_payload_pairs": int(pay.size),
        "fresh_payload_pairs_requested": int(rec.fresh_payload),
        "payload_share_stored": float(pay.size / total_payload) if total_payload else 0.0,
        "payload_share_aged_one_round": float(np.sum(pay >= tau - 1e-9) / total_payload)
        if total_payload
        else 0.0,
        "stored_pairs_spent": int(spent.size),
        "stored_age_median_s": float(np.median(spent)) if spent.size else 0.0,
        "stored_age_max_s": float(spent.max()) if spent.size else 0.0,
        "fidelity_at_use": float(np.nanmean([r["fidelity_at_use"] for r in rows])),
        "accepted": float(np.mean([r["accepted"] for r in rows])),
        "utilisation": float(rows[-1]["utilisation"]),
        "final10_accuracy": _final10(rows),
    }
