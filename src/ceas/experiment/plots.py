"""Plots of run results (PNG, written atomically)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from ceas.experiment.store import write_bytes_atomic


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy(rows: list[dict[str, Any]], path: Path, *, title: str = "") -> None:
    """Test accuracy (left axis) and mean training loss (right axis) against the round."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    pts = [(r["round"] + 1, r["test_accuracy"]) for r in rows if not math.isnan(r["test_accuracy"])]
    if pts:
        ax.plot(*zip(*pts), color="tab:blue", label="test accuracy")
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy", color="tab:blue")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(
        [r["round"] + 1 for r in rows],
        [r["train_loss"] for r in rows],
        color="tab:orange",
        alpha=0.7,
        label="train loss",
    )
    ax2.set_ylabel("mean train loss", color="tab:orange")
    ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(Path(path), buf.getvalue())


def plot_runs(runs: dict[str, list[dict[str, Any]]], path: Path, *, title: str = "") -> None:
    """Test accuracy against round for several labelled runs on one axis (e.g. CEAS vs random selection); rows that
    carry ``test_accuracy_low`` and ``test_accuracy_high`` (an interval over seeds) are drawn with a shaded band."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for label, rows in runs.items():
        pts = [
            (r["round"] + 1, r["test_accuracy"]) for r in rows if not math.isnan(r["test_accuracy"])
        ]
        if pts:
            (line,) = ax.plot(*zip(*pts), label=label)
            band = [
                (r["round"] + 1, r["test_accuracy_low"], r["test_accuracy_high"])
                for r in rows
                if "test_accuracy_low" in r and not math.isnan(r["test_accuracy_low"])
            ]
            if band:
                x, lo, hi = zip(*band)
                ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.18, linewidth=0)
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(Path(path), buf.getvalue())


def plot_network(rows: list[dict[str, Any]], path: Path, *, title: str = "") -> None:
    """Per-round network metrics of a broker run, next to accuracy: utilisation, fidelity at use, pair fates,
    latency and accepted/Byzantine participants (a 2x2 panel)."""
    plt = _figure()
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), dpi=110, sharex=True)
    r = [row["round"] + 1 for row in rows]
    ax = axes[0, 0]
    ax.plot(r, [row["test_accuracy"] for row in rows], label="test accuracy")
    ax.plot(r, [row["utilisation"] for row in rows], label="Bell-pair utilisation (cumulative)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    ax.plot(r, [row["fidelity_at_use"] for row in rows], color="tab:green")
    ax.set_ylabel("mean fidelity at use")
    ax = axes[1, 0]
    for key in ("pairs_generated", "payload_pairs", "pairs_expired", "pairs_evicted"):
        ax.plot(r, [row[key] for row in rows], label=key.replace("_", " "))
    ax.set_yscale("symlog")
    ax.set_ylabel("pairs per round")
    ax.set_xlabel("round")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    ax.plot(r, [row["accepted"] for row in rows], label="accepted replies")
    ax.plot(r, [row["byzantine_participants"] for row in rows], label="Byzantine participants")
    ax.plot(r, [10 * row["latency_s"] for row in rows], label="latency (0.1 s)")
    ax.set_xlabel("round")
    ax.legend(fontsize=8)
    for a in axes.ravel():
        a.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(Path(path), buf.getvalue())
