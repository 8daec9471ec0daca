"""Shared-prefix parameter-shift expectations equal the naive one-virtual-node-per-shift evaluation to 0 ulp."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.qnn import CircuitSpec, QNNSimulator
from ceas.qnn.shift import _naive, shifted_expval


@pytest.mark.parametrize(
    ("n", "layers", "entangler", "classes", "shared", "chunk_bytes"),
    [
        (4, 4, "ring", 2, True, 2**20),  # the paper circuit: one complex group
        (4, 4, "ring", 2, False, 2**20),  # nodes holding different θ
        (5, 2, "linear", 3, True, 2**20),  # a front group: RZ phases, three outputs
        (7, 3, "ring", 2, False, 2**20),  # two front groups
        (6, 2, "all_to_all", 2, True, 4096),  # chunks of samples and of shifts
        (3, 3, "ring", 3, True, 1024),
        (1, 2, "ring", 2, True, 2**20),
    ],
)
def test_shifted_expval_is_bit_identical_to_naive(
    n, layers, entangler, classes, shared, chunk_bytes
):
    rng = np.random.default_rng(7 * n + layers)
    spec = CircuitSpec(n, layers, entangler, n_classes=classes)
    sim = QNNSimulator(spec, chunk_bytes=chunk_bytes)
    nodes, samples = 5, 33
    theta = rng.uniform(-2 * np.pi, 2 * np.pi, (1 if shared else nodes, spec.n_params))
    theta = np.broadcast_to(theta, (nodes, spec.n_params)).copy()
    x = rng.uniform(0, np.pi, (nodes, samples, n))
    fast = shifted_expval(sim, theta, x)
    naive = _naive(sim, theta, x, np.pi / 2)
    assert fast.shape == (nodes, 2 * spec.n_params + 1, samples, spec.n_outputs)
    np.testing.assert_array_equal(fast.view(np.uint64), naive.view(np.uint64))


def test_shifted_expval_falls_back_where_sharing_would_change_bits():
    # -0.0 + 0.0 = +0.0: a shifted row's untouched angles differ from θ's in sign, so no prefix is shared
    spec = CircuitSpec(2, 2)
    sim = QNNSimulator(spec)
    theta = np.array([[-0.0, 0.3, 1.0, -0.0, 2.0, 0.5, -1.0, 0.0]])
    x = np.full((1, 3, 2), 0.7)
    np.testing.assert_array_equal(shifted_expval(sim, theta, x), _naive(sim, theta, x, np.pi / 2))
    # re-uploading: gates differ per sample
    spec = CircuitSpec(3, 2, reupload=True)
    sim = QNNSimulator(spec)
    theta = np.random.default_rng(0).uniform(0, 6, (2, spec.n_params))
    x = np.random.default_rng(1).uniform(0, 3, (2, 4, 3))
    np.testing.assert_array_equal(shifted_expval(sim, theta, x), _naive(sim, theta, x, np.pi / 2))


def test_shifted_expval_matches_single_thread_and_many_threads():
    spec = CircuitSpec(4, 3)
    rng = np.random.default_rng(3)
    theta = np.broadcast_to(rng.uniform(0, 6, spec.n_params), (6, spec.n_params)).copy()
    x = rng.uniform(0, 3, (6, 10, 4))
    one = shifted_expval(QNNSimulator(spec, threads=1), theta, x)
    three = shifted_expval(QNNSimulator(spec, threads=3, chunk_bytes=2048), theta, x)
    np.testing.assert_array_equal(one, three)


def test_qfi_diagonal_of_identical_rows_is_computed_once_and_bit_identical():
    spec = CircuitSpec(5, 3)
    sim = QNNSimulator(spec)
    rng = np.random.default_rng(11)
    theta = rng.uniform(0, 6, spec.n_params)
    other = rng.uniform(0, 6, spec.n_params)
    probe = rng.uniform(0, 3, (16, 5))
    same = sim.qfi_diagonal(
        np.broadcast_to(theta, (6, spec.n_params)), np.broadcast_to(probe, (6, 16, 5))
    )
    mixed = sim.qfi_diagonal(np.stack([theta, other, theta]), np.broadcast_to(probe, (3, 16, 5)))
    assert same.shape == (6, 16, spec.n_params)
    for k in range(6):
        np.testing.assert_array_equal(same[k], mixed[0])
        np.testing.assert_array_equal(same[k], mixed[2])


def test_default_threads_change_no_number():
    from ceas.qnn.simulator import set_default_threads

    spec = CircuitSpec(5, 2)
    rng = np.random.default_rng(5)
    theta = np.broadcast_to(rng.uniform(0, 6, spec.n_params), (4, spec.n_params)).copy()
    x = rng.uniform(0, 3, (4, 9, 5))
    sim = QNNSimulator(spec)
    before = shifted_expval(sim, theta, x)
    try:
        set_default_threads(1)
        assert sim._workers() == 1
        np.testing.assert_array_equal(shifted_expval(sim, theta, x), before)
    finally:
        set_default_threads(None)
    assert QNNSimulator(spec, threads=3)._workers() == 3
