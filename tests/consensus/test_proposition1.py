"""Proposition 1 (variance reduction) as a measured property, not a formula.

If honest gradients are unbiased with covariance σ_k² I, the fidelity-weighted aggregate with w_k ∝ φ_k = 1/σ_k² has
covariance I / Σφ_k, at most the uniform mean's Σσ_k²/n² I. Each test draws ≥ 10^4 rounds with a fixed seed, runs
the library's aggregators on every draw, and compares the empirical covariance with the closed forms (5 % tolerance;
the standard error of a variance from N = 20 000 draws is √(2/N) ≈ 1 %, so 5 % is 5 standard errors).

Run this file as a script to redraw ``docs/proposition1.png``::

    .venv/bin/python tests/consensus/test_proposition1.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ceas.consensus.aggregators import Mean, WeightedMean
from ceas.consensus.robust import FidelityWeightedAggregation
from ceas.consensus.stamps import cap_weights, stamp_weight
from ceas.network.werner import werner_from_fidelity as visibility

N_DRAWS = 20_000
TOL = 0.05


def aggregate_draws(rule, draws: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Run ``rule`` on every draw: (N, n, d) -> (N, d)."""
    return np.stack([rule(g, weights) for g in draws])


def gaussian_draws(
    sigmas: np.ndarray, n_draws: int, dim: int, seed: int, mean: float = 0.3
) -> np.ndarray:
    """Unbiased honest gradients g_k = μ + σ_k ε_k, ε_k ~ N(0, I_d): shape (N, n, d)."""
    rng = np.random.default_rng(seed)
    return mean + sigmas[None, :, None] * rng.standard_normal((n_draws, sigmas.size, dim))


def measure(
    sigmas: np.ndarray, n_draws: int = N_DRAWS, dim: int = 3, seed: int = 0
) -> dict[str, float]:
    """Predicted and empirical per-coordinate variance of the weighted and uniform aggregates."""
    draws = gaussian_draws(sigmas, n_draws, dim, seed)
    phi = 1.0 / sigmas**2
    weighted = aggregate_draws(WeightedMean(), draws, phi)
    uniform = aggregate_draws(Mean(), draws, None)
    return {
        "ratio": float(sigmas.max() / sigmas.min()),
        "pred_weighted": float(1.0 / phi.sum()),
        "emp_weighted": float(weighted.var(axis=0, ddof=1).mean()),
        "pred_uniform": float(np.sum(sigmas**2) / sigmas.size**2),
        "emp_uniform": float(uniform.var(axis=0, ddof=1).mean()),
    }


def test_weighted_aggregate_covariance_is_inverse_total_phi():
    sigmas = np.geomspace(0.5, 4.0, 10)  # heterogeneous: variances span a factor of 64
    phi = 1.0 / sigmas**2
    draws = gaussian_draws(sigmas, N_DRAWS, dim=3, seed=1)
    weighted = aggregate_draws(WeightedMean(), draws, phi)
    uniform = aggregate_draws(Mean(), draws, None)
    pred_w, pred_u = 1.0 / phi.sum(), np.sum(sigmas**2) / sigmas.size**2

    cov_w = np.cov(weighted, rowvar=False)
    cov_u = np.cov(uniform, rowvar=False)
    np.testing.assert_allclose(np.diag(cov_w), pred_w, rtol=TOL)
    np.testing.assert_allclose(np.diag(cov_u), pred_u, rtol=TOL)
    off = ~np.eye(3, dtype=bool)
    assert np.abs(cov_w[off]).max() < TOL * pred_w  # covariance ∝ I
    assert np.abs(weighted.mean(axis=0) - 0.3).max() < 5 * np.sqrt(pred_w / N_DRAWS)  # unbiased
    assert np.diag(cov_w).max() < np.diag(cov_u).min()
    assert pred_u / pred_w > 3  # the case is heterogeneous enough for the gap to matter


def test_inverse_variance_weights_beat_perturbed_weights_on_the_same_draws():
    """'Minimised by w ∝ 1/σ²': any other normalised weights give a larger empirical variance (common draws)."""
    sigmas = np.geomspace(0.5, 4.0, 10)
    phi = 1.0 / sigmas**2
    draws = gaussian_draws(sigmas, N_DRAWS, dim=2, seed=2)
    best = aggregate_draws(WeightedMean(), draws, phi).var(axis=0).mean()
    rng = np.random.default_rng(3)
    for _ in range(5):
        other = phi * rng.uniform(0.6, 1.4, size=phi.size)
        w = other / other.sum()
        var = aggregate_draws(WeightedMean(), draws, other).var(axis=0).mean()
        assert var > best
        assert var == pytest.approx(np.sum(w**2 * sigmas**2), rel=TOL)


def test_shot_noise_through_noisy_pairs_matches_stamp_phi():
    """Physical version: node k estimates ⟨Z⟩ = 0 from S_k shots of a qubit teleported through pairs of fidelity
    F_k (visibility v_k) and rescales by 1/v_k, so its variance is exactly 1/(S_k v_k²) = 1/φ_k with φ from
    ``stamp_weight`` (QFI 1). The fidelity-weighted aggregate then has variance 1/Σφ; with the weight cap c = 2 it
    has Σ w_k²/φ_k, still below the uniform mean's."""
    shots = np.array([64, 128, 128, 256, 256, 512, 512, 1024, 1024, 2048])
    fidelity = np.array([0.8, 0.97, 0.85, 0.9, 0.82, 0.95, 0.8, 0.88, 0.98, 0.83])
    v = visibility(fidelity)
    phi = stamp_weight(shots, 1.0, v)
    rng = np.random.default_rng(4)
    dim = 2
    counts = rng.binomial(
        shots[None, :, None], 0.5, size=(N_DRAWS, shots.size, dim)
    )  # P(+1) = (1 + v·0)/2
    estimates = (2.0 * counts / shots[None, :, None] - 1.0) / v[None, :, None]

    uncapped = FidelityWeightedAggregation(WeightedMean(), cap_c=1e6)
    capped = FidelityWeightedAggregation(WeightedMean(), cap_c=2.0)
    var_uncapped = np.stack([uncapped.aggregate(e, phi).update for e in estimates]).var(
        axis=0, ddof=1
    )
    var_capped = np.stack([capped.aggregate(e, phi).update for e in estimates]).var(axis=0, ddof=1)
    var_uniform = estimates.mean(axis=1).var(axis=0, ddof=1)

    w = cap_weights(phi, 2.0)
    assert w.max() == pytest.approx(0.2)  # the cap binds for the 2048-shot nodes
    np.testing.assert_allclose(var_uncapped, 1.0 / phi.sum(), rtol=TOL)
    np.testing.assert_allclose(var_capped, np.sum(w**2 / phi), rtol=TOL)
    np.testing.assert_allclose(var_uniform, np.sum(1.0 / phi) / phi.size**2, rtol=TOL)
    assert var_uncapped.max() < var_capped.min() and var_capped.max() < var_uniform.min()


def write_figure(path: Path) -> list[dict[str, float]]:
    """Empirical vs predicted variance as the σ heterogeneity grows; returns the measured rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        measure(np.geomspace(1.0, r, 10), seed=10 + i) for i, r in enumerate([1, 2, 4, 8, 16, 32])
    ]
    x = [r["ratio"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot(
        x,
        [r["pred_uniform"] for r in rows],
        "-",
        color="C0",
        label="uniform mean: Σσ²/n² (predicted)",
    )
    ax.plot(x, [r["emp_uniform"] for r in rows], "o", color="C0", label="uniform mean (measured)")
    ax.plot(
        x,
        [r["pred_weighted"] for r in rows],
        "-",
        color="C3",
        label="fidelity-weighted: 1/Σφ (predicted)",
    )
    ax.plot(
        x, [r["emp_weighted"] for r in rows], "s", color="C3", label="fidelity-weighted (measured)"
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("heterogeneity σ_max / σ_min  (n = 10, σ_k geometric from 1)")
    ax.set_ylabel("variance of the aggregate (per coordinate)")
    ax.set_title(f"Proposition 1: {N_DRAWS:,} draws per point")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return rows


def test_figure_writer_measures_what_it_plots(tmp_path):
    rows = write_figure(tmp_path / "p1.png")
    assert (tmp_path / "p1.png").stat().st_size > 10_000
    for r in rows:
        assert r["emp_weighted"] == pytest.approx(r["pred_weighted"], rel=TOL)
        assert r["emp_uniform"] == pytest.approx(r["pred_uniform"], rel=TOL)
    assert rows[0]["pred_weighted"] == pytest.approx(rows[0]["pred_uniform"])  # equal σ: no gain
    gains = [r["pred_uniform"] / r["pred_weighted"] for r in rows]
    assert all(np.diff(gains) > 0)  # the gain grows with heterogeneity


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[2] / "docs" / "proposition1.png"
    table = write_figure(out)
    print(f"wrote {out}")
    print("| σ_max/σ_min | 1/Σφ | measured (weighted) | Σσ²/n² | measured (uniform) | gain |")
    print("|---|---|---|---|---|---|")
    for r in table:
        print(
            f"| {r['ratio']:g} | {r['pred_weighted']:.4g} | {r['emp_weighted']:.4g} | {r['pred_uniform']:.4g} | "
            f"{r['emp_uniform']:.4g} | {r['pred_uniform'] / r['pred_weighted']:.2f}× |"
        )


def test_proposition1_holds_for_simulated_qpus_whose_noise_and_qfi_differ():
    """Not only the visibility: nodes differ in depolarising strength p_k (so in their QFI factor and contraction)
    and in readout error; each estimates its gradient with shots and undoes its calibrated contraction, and its φ is
    the inverse of its own predicted error (:mod:`ceas.qnn.gradient_error`, one draw). Over 4,000 draws of all nodes
    at a fixed θ and minibatch, the φ-weighted mean's variance is 1/Σφ (10 %) and below the uniform mean's."""
    from ceas.qnn import NodeNoise, QNNModel
    from ceas.qnn.circuit import CircuitSpec
    from ceas.qnn.gradient_error import gradient_report
    from ceas.qnn.noise import depolarised_qfi

    rng = np.random.default_rng(3)
    spec = CircuitSpec(n_qubits=3, n_layers=2)
    model = QNNModel(spec)
    p = np.array([0.0, 0.05, 0.12, 0.25])
    noise = NodeNoise(depolarizing=p, readout_error=np.array([0.0, 0.01, 0.02, 0.05]))
    q = noise.mixing(spec.n_layers)
    qfi_factor = depolarised_qfi(np.ones(4), q, spec.dim)
    assert np.ptp(qfi_factor) > 0.3  # the nodes' QFI factors really differ
    n, draws = p.size, 4000
    theta = np.broadcast_to(model.init_params(rng), (n, spec.n_params)).copy()
    x = np.broadcast_to(rng.uniform(0, np.pi, size=(1, 8, 3)), (n, 8, 3)).copy()
    y = np.broadcast_to(rng.integers(0, 2, size=(1, 8)), (n, 8)).copy()
    one = gradient_report(model, theta, x, y, noise=noise, shots=512, rng=rng, mitigate=True)
    phi = 1.0 / one.mse.mean(axis=1)
    reps = np.repeat(np.arange(n), draws)
    many = NodeNoise(depolarizing=p[reps], readout_error=noise.readout_error[reps])
    grads = model.loss_and_grad(
        theta[reps], x[reps], y[reps], noise=many, shots=512, rng=rng, mitigate=True
    )[1].reshape(n, draws, -1)
    weighted = np.einsum("k,kdp->dp", phi / phi.sum(), grads)
    uniform = grads.mean(axis=0)
    emp_w = weighted.var(axis=0, ddof=1).mean()
    emp_u = uniform.var(axis=0, ddof=1).mean()
    assert emp_w == pytest.approx(1.0 / phi.sum(), rel=0.10)
    assert emp_w < emp_u
