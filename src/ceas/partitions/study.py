"""How pair fidelity degrades the partitioned circuits: ⟨Z⟩ error and trained test accuracy (docs/partitions.md).

Run ``python -m ceas.partitions.study`` to print the table of the docs. Training is deliberately tiny (a few
seconds per row): exact expectations, parameter-shift gradients through the noisy pairs, Adam, minibatches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas.network.werner import werner_from_fidelity
from ceas.partitions.registry import make_scheme
from ceas.qnn.circuit import CircuitSpec
from ceas.qnn.data import Dataset, load_dataset
from ceas.qnn.losses import make_loss
from ceas.rng import stream

__all__ = ["FidelityRow", "fidelity_sweep", "train"]


@dataclass(frozen=True)
class FidelityRow:
    """One (scheme, pair fidelity) point.

    Attributes
    ----------
    scheme : str
    fidelity : float
        Fidelity F of every pair (Werner, w = (4F−1)/3).
    pairs_per_run : int
    z_error_mean, z_error_max : float
        |⟨Z⟩_noisy − ⟨Z⟩_ideal| over the test set at the parameters trained with perfect pairs.
    accuracy_ideal_model : float
        Test accuracy of the model trained with perfect pairs, evaluated through pairs of fidelity F.
    accuracy_trained : float
        Test accuracy of a model trained and evaluated through pairs of fidelity F.
    """

    scheme: str
    fidelity: float
    pairs_per_run: int
    z_error_mean: float
    z_error_max: float
    accuracy_ideal_model: float
    accuracy_trained: float


def train(
    scheme,
    data: Dataset,
    werner: float,
    *,
    steps: int,
    batch: int,
    lr: float,
    rng: np.random.Generator,
    theta0: np.ndarray,
) -> np.ndarray:
    """Adam on the mean BCE of σ(4⟨Z⟩) through pairs of visibility ``werner``; returns θ (P,), radians."""
    loss = make_loss("bce", data.n_classes, 4.0)
    theta = theta0.copy()
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):  # optimiser steps are sequential
        idx = rng.choice(len(data.y_train), size=batch, replace=False)
        x, y = data.x_train[idx][None], data.y_train[idx][None]
        e, jac = scheme.expval_and_jacobian(theta[None], x, werner)
        grad = np.einsum("kbo,kbop->p", loss.derivative(e, y), jac) / batch
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad**2
        theta -= lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return theta


def _accuracy(scheme, theta, data: Dataset, werner: float) -> float:
    e = scheme.expval(theta[None], data.x_test[None], werner)[0]
    pred = (e[:, 0] >= 0).astype(int) if data.n_classes == 2 else np.argmax(e, axis=1)
    return float(np.mean(pred == data.y_test))


def fidelity_sweep(
    fidelities=(1.0, 0.99, 0.95, 0.9, 0.85, 0.8),
    *,
    schemes: dict[str, dict] | None = None,
    n_qubits: int = 4,
    n_layers: int = 4,
    dataset: str = "breast_cancer",
    steps: int = 40,
    batch: int = 16,
    lr: float = 0.1,
    seed: int = 0,
) -> list[FidelityRow]:
    """⟨Z⟩ error and test accuracy versus pair fidelity for each scheme (every pair of a run equally good).

    Parameters
    ----------
    fidelities : sequence of float
        Pair fidelities in [1/4, 1].
    schemes : dict name -> options, optional
        Default ``{"unitary": {"blocks": 2}, "circuit": {"qubits_per_qpu": 2}}``.
    n_qubits, n_layers : int
        The ring circuit of SPEC §3 (default 4 qubits, 4 layers).
    dataset : str
        A bundled binary data set.
    steps, batch, lr : int, int, float
        Adam steps, minibatch size, learning rate of the tiny training runs.
    seed : int
        Run seed: the data split, θ₀ and the minibatches come from its named streams.

    Returns
    -------
    list of FidelityRow
    """
    schemes = schemes or {"unitary": {"blocks": 2}, "circuit": {"qubits_per_qpu": 2}}
    data = load_dataset(dataset, n_qubits, seed=seed)
    spec = CircuitSpec(n_qubits, n_layers, n_classes=data.n_classes)
    theta0 = stream(seed, "partition-study-init").uniform(0, 2 * np.pi, spec.n_params)
    rows = []
    for name, options in schemes.items():
        scheme = make_scheme(name, spec, **options)
        kw = {"steps": steps, "batch": batch, "lr": lr, "theta0": theta0}
        ideal = train(scheme, data, 1.0, rng=stream(seed, "partition-study-batches"), **kw)
        e_ideal = scheme.expval(ideal[None], data.x_test[None], 1.0)
        for f in fidelities:
            w = float(werner_from_fidelity(f))
            err = np.abs(scheme.expval(ideal[None], data.x_test[None], w) - e_ideal)
            trained = train(scheme, data, w, rng=stream(seed, "partition-study-batches"), **kw)
            rows.append(
                FidelityRow(
                    scheme=name,
                    fidelity=float(f),
                    pairs_per_run=scheme.pairs_per_run,
                    z_error_mean=float(err.mean()),
                    z_error_max=float(err.max()),
                    accuracy_ideal_model=_accuracy(scheme, ideal, data, w),
                    accuracy_trained=_accuracy(scheme, trained, data, w),
                )
            )
    return rows


def main() -> None:  # pragma: no cover - prints the docs table
    import time

    start = time.perf_counter()
    rows = fidelity_sweep()
    print(
        "| scheme | pair F | pairs/run | mean abs ⟨Z⟩ err | max abs ⟨Z⟩ err | acc (θ trained at F=1) | acc (trained at F) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.scheme} | {r.fidelity:.2f} | {r.pairs_per_run} | {r.z_error_mean:.4f} | {r.z_error_max:.4f} | "
            f"{r.accuracy_ideal_model:.3f} | {r.accuracy_trained:.3f} |"
        )
    print(f"\n{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":  # pragma: no cover
    main()
