r"""What a node can say about the error of its own gradient: the shot variance and the noise bias, from its data.

A node with S shots per expectation and noise contraction :math:`c = (1-p)^L(1-2r)` (its calibration) measures every
expectation of the parameter-shift rule as :math:`\tilde E = c\,E` plus binomial noise, and sends

.. math:: \hat g_p = \frac1B \sum_b \sum_o \ell'_o(\hat E_b)\,\hat J_{bop}.

Its error about the *noiseless* gradient of the same minibatch, :math:`g^*_p = \frac1B\sum_b\sum_o \ell'_o(E_b) J_{bop}`
(what an ideal QPU would send), has two parts a node can estimate from its own measurements:

* **shot variance** (delta method, first order in the shot noise; the circuits and outputs are measured
  independently):

  .. math:: \operatorname{Var}\hat g_p \approx \frac{1}{B^2}\sum_b\Big[\sum_{o'}\Big(\sum_o H_{b,oo'}J_{bop}\Big)^2
            \frac{1-\tilde E_{bo'}^2}{S} + \sum_o \ell'^2_{bo}\,\frac{2-\tilde E_{+,bop}^2-\tilde E_{-,bop}^2}{4S}\Big]

  with :math:`H` the loss Hessian, evaluated at the node's own estimates (plug-in);
* **noise bias** :math:`\mathbb E\hat g - g^*`: the node undoes its calibrated contraction on its estimates
  (:math:`\hat E/c`, :math:`\hat J/c`), recomputes the gradient, and takes the difference. Its square slightly
  over-estimates the squared bias (by the variance of the difference, of the order of the shot variance).

With ``mitigate`` (``noise.mitigation = "calibrated"``) the node sends the recomputed gradient itself: its bias is 0 to
first order and its shot variance is the same formula at the recomputed point with every measurement variance divided
by c². With exact expectations (``shots=None``) the variance is 0 and the bias exact (0 with mitigation). Quantum
payload noise is added by the broker layer (:func:`ceas.broker.payload.payload_variance`), which knows the payload's scale and pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas.qnn.noise import NodeNoise
from ceas.qnn.shots import jacobian_from_shifts, shifted_samples


@dataclass(frozen=True)
class GradientReport:
    """A node's loss and gradient with its own estimate of their error.

    Attributes
    ----------
    loss : (N,) float
    grad : (N, P) float
        Bit-identical to :meth:`QNNModel.loss_and_grad` with the same arguments and generator state.
    variance : (N, P) float
        Plug-in shot variance of each gradient component (0 with exact expectations).
    bias : (N, P) float
        Estimated noise bias of each component, E ĝ − g* (see the module docstring).
    """

    loss: np.ndarray
    grad: np.ndarray
    variance: np.ndarray
    bias: np.ndarray

    @property
    def mse(self) -> np.ndarray:
        """Predicted mean-squared error per component about the noiseless minibatch gradient, shape (N, P)."""
        return self.variance + self.bias**2


def gradient_report(
    model,
    theta,
    x,
    y,
    noise: NodeNoise | None = None,
    shots: int | None = None,
    rng: np.random.Generator | None = None,
    *,
    mitigate: bool = False,
) -> GradientReport:
    """:meth:`QNNModel.loss_and_grad` plus each node's estimate of its gradient's error (module docstring).

    Arguments and shapes as in :meth:`ceas.qnn.QNNModel.loss_and_grad`: θ (N, P), x (N, B, n), y (N, B).
    """
    sim = model.simulator
    if shots is None:
        clean_loss, clean = model.loss_and_grad(theta, x, y, noise=None, shots=None, rng=None)
        if mitigate:
            return GradientReport(clean_loss, clean, np.zeros_like(clean), np.zeros_like(clean))
        loss, grad = model.loss_and_grad(theta, x, y, noise=noise, shots=None, rng=None)
        return GradientReport(loss, grad, np.zeros_like(grad), grad - clean)
    theta_c, x_c = sim._check(theta, x)
    n_nodes, n_samples = x_c.shape[:2]
    labels = model._labels(y, (n_nodes, n_samples))
    e_all = shifted_samples(sim, theta_c, x_c, shots=shots, rng=rng, noise=noise)
    e_hat, j_hat = jacobian_from_shifts(e_all)
    c = sim._contraction(noise, n_nodes)
    e_clean, j_clean = e_hat / c[:, None, None], j_hat / c[:, None, None, None]
    d_clean = model.loss.derivative(e_clean, labels)
    clean = np.einsum("kbo,kbop->kp", d_clean, j_clean) / n_samples
    if mitigate:
        loss = model.loss.value(e_clean, labels).mean(axis=1)
        variance = _shot_variance(model.loss, e_all, e_clean, j_clean, d_clean, labels, shots, c)
        return GradientReport(loss, clean, variance, np.zeros_like(clean))
    loss = model.loss.value(e_hat, labels).mean(axis=1)
    d = model.loss.derivative(e_hat, labels)  # (N, B, O)
    grad = np.einsum("kbo,kbop->kp", d, j_hat) / n_samples
    variance = _shot_variance(model.loss, e_all, e_hat, j_hat, d, labels, shots, np.ones(n_nodes))
    return GradientReport(loss, grad, variance, grad - clean)


def _shot_variance(loss_fn, e_all, e, j, d, labels, shots: int, c: np.ndarray) -> np.ndarray:
    """The delta-method variance of the module docstring, shape (N, P): derivatives at the point (E, J) the gradient
    is computed from, measurement variances from the measured (contracted) values ``e_all`` divided by c² (N,)."""
    n_samples = e.shape[1]
    n_params = j.shape[-1]
    hess = loss_fn.hessian(e, labels)  # (N, B, O, O')
    through_e = np.einsum("kbxo,kbxp->kbop", hess, j)  # Σ_o H_{o o'} J_{o p}: (N, B, O', P)
    e_meas = e_all[:, 0]
    var_e = np.clip(1.0 - e_meas**2, 0.0, None) / shots  # (N, B, O')
    plus, minus = e_all[:, 1 : 1 + n_params], e_all[:, 1 + n_params :]  # (N, P, B, O)
    var_j = np.moveaxis(np.clip(2.0 - plus**2 - minus**2, 0.0, None) / (4.0 * shots), 1, 3)
    total = np.einsum("kbop,kbo->kp", through_e**2, var_e) + np.einsum("kbo,kbop->kp", d**2, var_j)
    return total / n_samples**2 / c[:, None] ** 2
