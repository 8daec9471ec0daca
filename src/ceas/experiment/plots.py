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
    """Test accuracy against round for several labelled runs on one axis (e.g. CEAS vs random selection)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for label, rows in runs.items():
        pts = [
            (r["round"] + 1, r["test_accuracy"]) for r in rows if not math.isnan(r["test_accuracy"])
        ]
        if pts:
            ax.plot(*zip(*pts), label=label)
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
