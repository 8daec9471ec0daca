"""Shared fixtures."""

from __future__ import annotations

import os

# Plots in tests must never try to open a window.
os.environ.setdefault("MPLBACKEND", "Agg")
