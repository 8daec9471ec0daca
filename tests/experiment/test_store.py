"""Atomic writes and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.errors import ResumeError
from ceas.experiment import store
from ceas.experiment.optim import Adam


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "ck.npz"
    meta = {"next_round": 3, "metrics": [{"round": 0, "x": 1.5}]}
    store.save_checkpoint(path, arrays={"theta": np.arange(4.0)}, meta=meta)
    arrays, back = store.load_checkpoint(path)
    np.testing.assert_array_equal(arrays["theta"], np.arange(4.0))
    assert back == meta
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temp files left behind


def test_missing_and_corrupt_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(ResumeError, match="no checkpoint"):
        store.load_checkpoint(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ResumeError, match="unreadable"):
        store.load_checkpoint(bad)


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    store.write_json_atomic(path, {"a": 1})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(store.os, "replace", boom)
    with pytest.raises(OSError):
        store.write_json_atomic(path, {"a": 2})
    assert path.read_text().strip().startswith("{")
    assert '"a": 1' in path.read_text()
    assert len(list(tmp_path.iterdir())) == 1


def test_metrics_parquet_round_trip(tmp_path):
    rows = [
        {"round": i, "test_accuracy": 0.5 + i / 10, "train_loss": 1.0 / (i + 1)} for i in range(5)
    ]
    store.write_metrics(tmp_path / "m.parquet", rows)
    assert store.read_metrics(tmp_path / "m.parquet") == rows


def test_adam_matches_reference_and_resumes_exactly():
    """Adam against a hand-computed first step and a state save/load mid-way."""
    opt = Adam(2, lr=0.1)
    theta = opt.update(np.zeros(2), np.array([1.0, -2.0]))
    # first step: m̂ = g, v̂ = g², so the step is lr * g / (|g| + eps) = lr * sign(g)
    np.testing.assert_allclose(theta, [-0.1, 0.1], rtol=1e-7)
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(6, 2))
    a = Adam(2)
    t_a = np.zeros(2)
    for g in grads:
        t_a = a.update(t_a, g)
    b = Adam(2)
    t_b = np.zeros(2)
    for g in grads[:3]:
        t_b = b.update(t_b, g)
    c = Adam(2)
    c.load_state({k: v.copy() for k, v in b.state().items()})
    for g in grads[3:]:
        t_b = c.update(t_b, g)
    np.testing.assert_array_equal(t_a, t_b)
