"""Data pipeline and partitions: ranges, no leakage, determinism, Dirichlet skew."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceas.errors import ValidationError
from ceas.qnn.data import DATASETS, load_dataset, partition
from ceas.rng import stream


@pytest.mark.parametrize("name", DATASETS)
def test_features_are_angles_and_split_is_stratified(name):
    d = load_dataset(name, 4, test_fraction=0.25, seed=3)
    assert d.x_train.shape[1] == d.x_test.shape[1] == 4
    assert d.x_train.min() >= 0 and d.x_train.max() <= np.pi + 1e-12
    assert d.x_test.min() >= 0 and d.x_test.max() <= np.pi + 1e-12
    # min-max fitted on train: every feature spans exactly [0, π] on the training split
    np.testing.assert_allclose(d.x_train.min(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(d.x_train.max(axis=0), np.pi, atol=1e-12)
    share_train = np.bincount(d.y_train) / d.y_train.size
    share_test = np.bincount(d.y_test) / d.y_test.size
    np.testing.assert_allclose(share_train, share_test, atol=0.05)


def test_class_selection_is_remapped_in_given_order():
    from sklearn.datasets import load_digits

    d = load_dataset("digits", 3, classes=(7, 2), seed=0)
    assert d.n_classes == 2 and d.classes == (7, 2)
    raw = load_digits()
    n7 = int((raw.target == 7).sum())
    assert int((d.y_train == 0).sum() + (d.y_test == 0).sum()) == n7  # label 7 -> 0


def test_same_seed_same_data_different_seed_different_split():
    a, b, c = (load_dataset("wine", 4, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)


def test_bad_inputs_name_the_value():
    with pytest.raises(ValidationError, match="n_features must be in \\[1, 4\\] for iris, got 9"):
        load_dataset("iris", 9)
    with pytest.raises(ValidationError, match="got 'mnist'"):
        load_dataset("mnist", 4)
    with pytest.raises(ValidationError, match="Dirichlet alpha must be > 0"):
        partition(np.zeros(10, int), 2, stream(0, "p"), scheme="dirichlet", alpha=0.0)
    with pytest.raises(ValidationError, match="cannot give 20 nodes"):
        partition(np.zeros(10, int), 20, stream(0, "p"))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(20, 300),
    nodes=st.integers(1, 20),
    classes=st.integers(2, 4),
    scheme=st.sampled_from(["iid", "dirichlet"]),
    alpha=st.floats(0.3, 100),
    seed=st.integers(0, 2**32),
)
def test_partition_is_a_partition(n, nodes, classes, scheme, alpha, seed):
    y = np.arange(n) % classes
    parts = partition(y, nodes, stream(seed, "p"), scheme=scheme, alpha=alpha)
    assert len(parts) == nodes
    assert all(p.size >= 1 for p in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n))
    again = partition(y, nodes, stream(seed, "p"), scheme=scheme, alpha=alpha)
    assert all(np.array_equal(p, q) for p, q in zip(parts, again))


def test_dirichlet_skew_grows_as_alpha_shrinks():
    """Mean total-variation distance between a node's label mix and the global mix falls as alpha grows."""
    y = np.arange(2000) % 2

    def skew(alpha):
        parts = partition(y, 20, stream(5, "p"), scheme="dirichlet", alpha=alpha)
        return np.mean([abs(np.mean(y[p]) - 0.5) for p in parts])

    assert skew(0.1) > skew(1.0) > skew(100.0)
    assert skew(100.0) < 0.05


def test_synthetic_task_has_the_asked_size_is_seeded_and_learnable_by_a_linear_rule():
    a = load_dataset("synthetic", 4, seed=3, n_samples=2000)
    b = load_dataset("synthetic", 4, seed=3, n_samples=2000)
    assert a.x_train.shape[0] + a.x_test.shape[0] == 2000 and a.n_classes == 2
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(
        a.x_train, load_dataset("synthetic", 4, seed=4, n_samples=2000).x_train
    )
    assert a.x_train.min() >= 0 and a.x_train.max() <= np.pi
    # the task carries signal after PCA to 4 angles: a linear classifier beats chance clearly
    from sklearn.linear_model import LogisticRegression

    score = LogisticRegression().fit(a.x_train, a.y_train).score(a.x_test, a.y_test)
    assert score > 0.6  # chance is 0.5; 500 test samples give a standard error of 0.022
    with pytest.raises(ValidationError, match="synthetic"):
        load_dataset("iris", 2, n_samples=100)


def test_load_dataset_is_memoised_and_read_only():
    a = load_dataset("iris", 3, seed=5)
    b = load_dataset("iris", 3, seed=5, test_fraction=0.25, classes=None)
    assert a is b  # one preprocessed copy per process, shared by every run of a grid
    for arr in (a.x_train, a.y_train, a.x_test, a.y_test):
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 0
    assert load_dataset("iris", 3, seed=6) is not a
    assert load_dataset("iris", 3, seed=5, classes=(2, 0)).n_classes == 2


def test_config_knows_the_bundled_data_sets_shapes_without_loading_them():
    """ceas.config checks a config against (features, classes) of the bundled sets from a table (no sklearn import at
    validation): the table must match the files."""
    from ceas.config import _BUNDLED_SHAPES
    from ceas.qnn.data import _raw

    assert set(_BUNDLED_SHAPES) == set(DATASETS) - {"synthetic"}
    for name, shape in _BUNDLED_SHAPES.items():
        x, y = _raw(name)
        assert shape == (x.shape[1], len(set(y.tolist())))
