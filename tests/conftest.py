"""Shared fixtures."""

from __future__ import annotations

import os

from hypothesis import settings

# Property tests draw the same examples on every run (a CI run must not pass or fail by chance); set
# HYPOTHESIS_PROFILE=explore to draw fresh random examples while hunting for counterexamples.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Plots in tests must never try to open a window.
os.environ.setdefault("MPLBACKEND", "Agg")
