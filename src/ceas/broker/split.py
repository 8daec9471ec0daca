"""Local updates of a split circuit (SPEC §7, Fig. 1b-c): each running replica's gradient, and each QPU's share.

A replica (:mod:`ceas.broker.replicas`) trains on minibatches drawn from its lead's shard (the lead hands the inputs
to its members classically). Its K QPUs run the parameter-shifted circuits together through the round's QPU-QPU pairs
(:mod:`ceas.broker.circuit_pairs`: one visibility per pair slot), each QPU under its own depolarising and readout
noise (:class:`ceas.partitions.PlacementNoise`); every expectation is an S-shot binomial estimate. With
``noise.mitigation = "calibrated"`` the estimates are divided by the scheme's noise contraction
(:meth:`contraction`: exact for the data- and unitary-level schemes, a first-order calibration at circuit level).

Each QPU sends the gradient of its own block (zero elsewhere), with its plug-in estimate of that gradient's shot
variance (for the predicted-MSE stamp): Var Ĵ_p = [(1 − Ê₊²) + (1 − Ê₋²)] / (4S) per sample and output, propagated
through the loss derivative at Ê; the noise bias is taken as removed by the calibration (0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas.partitions.noise import PlacementNoise
from ceas.qnn.shots import jacobian_from_shifts, sample_expval


@dataclass(frozen=True, eq=False)
class SplitGradients:
    """One gradient per running replica.

    Attributes
    ----------
    loss : (R,) float
        Minibatch loss at the estimated expectations.
    grad : (R, P) float
        The whole circuit's gradient estimate.
    variance : (R, P) float
        Plug-in shot variance of each component.
    """

    loss: np.ndarray
    grad: np.ndarray
    variance: np.ndarray


def split_gradients(
    scheme,
    model,
    theta: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    werner: np.ndarray,
    noise: PlacementNoise | None,
    shots: int | None,
    rng: np.random.Generator,
    *,
    mitigate: bool = False,
    calibration: PlacementNoise | None = None,
) -> SplitGradients:
    """Loss, gradient and shot variance of R replicas of ``scheme``.

    Parameters
    ----------
    scheme : PartitionScheme
    model : QNNModel
        Supplies the loss (its simulator is not used).
    theta : (R, P) float
        Parameters, radians.
    x : (R, B, n) float
        Inputs; ``y`` (R, B) int labels.
    werner : (R, *scheme.pair_shape) float
        Visibility of each pair slot of a run.
    noise : PlacementNoise or None
        Depolarising and readout noise of each replica's K QPUs.
    shots : int or None
        S shots per expectation (None: exact, no shot variance).
    rng : numpy.random.Generator
        Shot (and trajectory) draws.
    mitigate : bool
        Divide the estimates by ``scheme.contraction`` of the noise the QPUs are calibrated for: ``calibration``
        (default ``noise``; a Byzantine QPU's scrambling is not part of it).
    """
    n_params, n_samples = theta.shape[1], x.shape[1]
    e_all = scheme.shifted_expvals(theta, x, werner, noise=noise, rng=rng)  # (R, 2P+1, B, O)
    if shots is not None:
        e_all = sample_expval(e_all, int(shots), rng)
    e_hat, j_hat = jacobian_from_shifts(e_all)  # (R, B, O), (R, B, O, P)
    var_j = np.zeros_like(j_hat)
    if shots is not None:
        plus, minus = e_all[:, 1 : 1 + n_params], e_all[:, 1 + n_params :]  # (R, P, B, O)
        var = ((1.0 - plus**2) + (1.0 - minus**2)) / (4.0 * shots)
        var_j = np.moveaxis(np.clip(var, 0.0, None), 1, 3)
    calibration = noise if calibration is None else calibration
    if mitigate and calibration is not None:
        c = scheme.contraction(calibration)  # (R, O)
        e_hat, j_hat = e_hat / c[:, None, :], j_hat / c[:, None, :, None]
        var_j = var_j / (c[:, None, :, None] ** 2)
    labels = np.asarray(y, dtype=np.intp)
    loss = model.loss.value(e_hat, labels).mean(axis=1)
    d = model.loss.derivative(e_hat, labels) / n_samples  # (R, B, O)
    grad = np.einsum("rbo,rbop->rp", d, j_hat)
    variance = np.einsum("rbo,rbop->rp", d**2, var_j)
    return SplitGradients(loss=loss, grad=grad, variance=variance)
