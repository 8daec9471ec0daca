"""Data for the learning layer: scikit-learn's bundled data sets, preprocessed for angle encoding, and partitioned
across nodes.

Pipeline (fit on the training split only, so the held-out test set never leaks into preprocessing):
standardise -> PCA to ``n_features`` -> min-max scale to [0, π] (test features clipped into [0, π]).

Partitions: IID (a random equal split) or Dirichlet(α) label skew (for every class, the share each node receives is
drawn from Dir(α·1_N)), both deterministic given the Generator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ceas.errors import ValidationError

DATASETS = ("breast_cancer", "digits", "iris", "wine", "synthetic")


@dataclass(frozen=True)
class Dataset:
    """A preprocessed classification task.

    Attributes
    ----------
    x_train, x_test : ndarray, shape (n_train, n_features) / (n_test, n_features)
        Angles in [0, π] for RY encoding.
    y_train, y_test : ndarray of int, shape (n_train,) / (n_test,)
        Labels in 0 .. n_classes-1.
    n_classes : int
    name : str
    classes : tuple of int
        The original labels kept, in the order they were remapped to 0 .. n_classes-1.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str
    classes: tuple[int, ...]

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


SYNTHETIC_FEATURES = 8
"""Raw features of the ``synthetic`` task (6 informative, 2 noise) before PCA to one feature per qubit."""


def _raw(name: str, n_samples: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    if name == "synthetic":
        # a binary task of any size, for runs with more nodes than a bundled set has samples (N up to 1,000+)
        x, y = datasets.make_classification(
            n_samples=4000 if n_samples is None else n_samples,
            n_features=SYNTHETIC_FEATURES,
            n_informative=6,
            n_redundant=0,
            n_classes=2,
            class_sep=1.0,
            random_state=seed,
        )
        return np.asarray(x, dtype=float), np.asarray(y, dtype=int)
    if n_samples is not None:
        raise ValidationError(f"n_samples applies to the synthetic data set only, not to {name!r}")
    loader = {
        "breast_cancer": datasets.load_breast_cancer,
        "digits": datasets.load_digits,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
    }
    if name not in loader:
        raise ValidationError(
            f"dataset must be one of {sorted([*loader, 'synthetic'])}, got {name!r}"
        )
    bunch = loader[name]()
    return np.asarray(bunch.data, dtype=float), np.asarray(bunch.target, dtype=int)


def load_dataset(
    name: str,
    n_features: int,
    *,
    test_fraction: float = 0.25,
    classes: tuple[int, ...] | None = None,
    seed: int = 0,
    n_samples: int | None = None,
) -> Dataset:
    """Load, split and preprocess a bundled data set (or generate the synthetic one); memoised.

    The result is cached per process on its arguments, and its arrays are read-only, so every run of a grid
    (and every cell a worker process runs) shares one copy; ``copy()`` an array to change it.

    Parameters
    ----------
    name : {"breast_cancer", "digits", "iris", "wine", "synthetic"}
    n_features : int
        Number of PCA components kept; one per qubit.
    test_fraction : float in (0, 1)
        Share of samples held out (stratified).
    classes : tuple of int, optional
        Original labels to keep (e.g. ``(0, 1)`` of digits); remapped to 0..C-1 in this order. All by default.
    seed : int
        Seed of the stratified split (and of the synthetic task's generator).
    n_samples : int, optional
        Size of the ``synthetic`` task (default 4,000); not allowed for the bundled sets.
    """
    key = (
        name,
        n_features,
        float(test_fraction),
        None if classes is None else tuple(int(c) for c in classes),
        int(seed),
        n_samples,
    )
    try:
        hash(key)
    except TypeError:  # an unhashable argument: let the loader report it
        return _load_dataset(*key)
    return _load_cached(*key)


@functools.lru_cache(maxsize=32)
def _load_cached(*key) -> Dataset:
    data = _load_dataset(*key)
    for arr in (data.x_train, data.y_train, data.x_test, data.y_test):
        arr.setflags(write=False)
    return data


def _load_dataset(
    name: str,
    n_features: int,
    test_fraction: float = 0.25,
    classes: tuple[int, ...] | None = None,
    seed: int = 0,
    n_samples: int | None = None,
) -> Dataset:
    """:func:`load_dataset` without the cache (positional arguments in its order)."""
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = _raw(name, n_samples, seed)
    present = tuple(int(c) for c in np.unique(y))
    if classes is None:
        classes = present
    classes = tuple(int(c) for c in classes)
    missing = sorted(set(classes) - set(present))
    if missing or len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValidationError(
            f"data.classes must be at least two distinct labels of {name} {list(present)}, got {list(classes)}"
        )
    if not 1 <= n_features <= x.shape[1]:
        raise ValidationError(
            f"n_features must be in [1, {x.shape[1]}] for {name}, got {n_features}"
        )
    if not 0.0 < test_fraction < 1.0:
        raise ValidationError(f"test_fraction must be in (0, 1), got {test_fraction}")
    keep = np.isin(y, classes)
    x = x[keep]
    lookup = np.full(int(y.max()) + 1, -1)
    lookup[list(classes)] = np.arange(len(classes))
    y = lookup[y[keep]]
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(x_tr)
    pca = PCA(n_components=n_features, random_state=seed).fit(scaler.transform(x_tr))
    z_tr = pca.transform(scaler.transform(x_tr))
    z_te = pca.transform(scaler.transform(x_te))
    lo, hi = z_tr.min(axis=0), z_tr.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    a_tr = np.pi * (z_tr - lo) / span
    a_te = np.clip(np.pi * (z_te - lo) / span, 0.0, np.pi)
    return Dataset(
        x_train=a_tr,
        y_train=y_tr.astype(int),
        x_test=a_te,
        y_test=y_te.astype(int),
        n_classes=len(classes),
        name=name,
        classes=classes,
    )


def partition(
    y: np.ndarray,
    n_nodes: int,
    rng: np.random.Generator,
    *,
    scheme: str = "iid",
    alpha: float = 0.5,
    min_size: int = 1,
) -> list[np.ndarray]:
    """Split sample indices across nodes.

    Parameters
    ----------
    y : ndarray of int, shape (n,)
        Labels of the samples to split.
    n_nodes : int
    rng : Generator
    scheme : {"iid", "dirichlet"}
    alpha : float > 0
        Dirichlet concentration (smaller = more label skew); used by ``"dirichlet"``.
    min_size : int
        Every node gets at least this many samples (an under-filled node is topped up from the largest one).

    Returns
    -------
    list of ndarray of int
        ``n_nodes`` disjoint index arrays whose union is ``arange(n)``.
    """
    y = np.asarray(y)
    n = y.shape[0]
    if n_nodes < 1:
        raise ValidationError(f"n_nodes must be >= 1, got {n_nodes}")
    if n < n_nodes * min_size:
        raise ValidationError(
            f"cannot give {n_nodes} nodes {min_size} sample(s) each from {n} samples; use fewer nodes"
        )
    if scheme == "iid":
        return [np.sort(part) for part in np.array_split(rng.permutation(n), n_nodes)]
    if scheme != "dirichlet":
        raise ValidationError(
            f"partition scheme must be one of ['dirichlet', 'iid'], got {scheme!r}"
        )
    if not alpha > 0:
        raise ValidationError(f"Dirichlet alpha must be > 0, got {alpha}")
    owners = np.empty(n, dtype=int)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        shares = rng.dirichlet(np.full(n_nodes, alpha))
        cuts = (np.cumsum(shares)[:-1] * idx.size).astype(int)
        for node, chunk in enumerate(np.split(idx, cuts)):
            owners[chunk] = node
    # Small alpha can leave nodes empty; top each one up with random samples of the currently largest node.
    sizes = np.bincount(owners, minlength=n_nodes)
    for node in np.flatnonzero(sizes < min_size):
        for _ in range(min_size - sizes[node]):
            donor = int(np.argmax(sizes))
            moved = rng.choice(np.flatnonzero(owners == donor))
            owners[moved] = node
            sizes[donor] -= 1
            sizes[node] += 1
    return [np.flatnonzero(owners == k) for k in range(n_nodes)]
