"""The QNN classifier a node trains: circuit + loss + noise + finite shots (SPEC §3).

``QNNModel.loss_and_grad`` is what the training loop calls once per round for all participating nodes at
once. With ``shots=None`` it uses exact expectations and one adjoint sweep (the node noise enters
analytically through the contraction (1-p)^L(1-2r)); with ``shots=S`` every expectation is estimated from
S binomial shots and gradients come from the parameter-shift rule, so their variance is ∝ 1/S.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ceas._validate import generator, positive_int, real_array
from ceas.errors import ValidationError
from ceas.qnn.circuit import CircuitSpec
from ceas.qnn.losses import make_loss
from ceas.qnn.noise import NodeNoise, depolarised_qfi
from ceas.qnn.simulator import QNNSimulator

INITS = ("uniform", "small")


class QNNModel:
    """A QNN classifier: the circuit of ``spec`` read out as logits or regression targets.

    Parameters
    ----------
    spec : CircuitSpec
    loss : {"bce", "mse"}
        See :mod:`ceas.qnn.losses` (for C > 2 classes "bce" is the softmax cross-entropy).
    output_scale : float
        a > 0 in σ(a·⟨Z⟩) (cross-entropy only).
    init : {"uniform", "small"}
        θ₀ ~ U[0, 2π) per parameter (default), or N(0, 0.1²) (near the identity layers).
    simulator : QNNSimulator, optional
        Share one simulator (and its worker threads) between models; built from ``spec`` otherwise.
    """

    def __init__(
        self,
        spec: CircuitSpec,
        loss: str = "bce",
        output_scale: float = 4.0,
        *,
        init: Literal["uniform", "small"] = "uniform",
        simulator: QNNSimulator | None = None,
    ):
        if not isinstance(spec, CircuitSpec):
            raise ValidationError(f"spec must be a CircuitSpec, got {type(spec).__name__}")
        scale = float(output_scale) if isinstance(output_scale, (int, float)) else float("nan")
        if not np.isfinite(scale) or scale <= 0:
            raise ValidationError(f"output_scale must be a finite number > 0, got {output_scale!r}")
        if init not in INITS:
            raise ValidationError(f"init must be one of {list(INITS)}, got {init!r}")
        if simulator is not None and simulator.spec != spec:
            raise ValidationError("simulator must be built for the same CircuitSpec as the model")
        self.spec = spec
        self.loss_name = loss
        self.output_scale = scale
        self.init = init
        self.loss = make_loss(loss, spec.n_classes, scale)
        self.simulator = simulator if simulator is not None else QNNSimulator(spec)

    # ---------------------------------------------------------------------------------------------------------
    def init_params(self, rng: np.random.Generator) -> np.ndarray:
        """Initial parameters θ₀, shape (P,), radians."""
        rng = generator("rng", rng)
        if self.init == "uniform":
            return rng.uniform(0.0, 2.0 * np.pi, size=self.spec.n_params)
        return rng.normal(0.0, 0.1, size=self.spec.n_params)

    def _labels(self, y, shape: tuple) -> np.ndarray:
        arr = np.asarray(y)
        if not np.issubdtype(arr.dtype, np.integer):
            if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
                raise ValidationError(f"y must be integer labels, got dtype {arr.dtype}")
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise ValidationError("y must be integer labels, got non-integer values")
        if arr.shape != shape:
            raise ValidationError(
                f"y must have shape {shape} (one label per sample), got {arr.shape}"
            )
        arr = arr.astype(np.intp)
        if arr.size and (arr.min() < 0 or arr.max() >= self.spec.n_classes):
            bad = arr.min() if arr.min() < 0 else arr.max()
            raise ValidationError(
                f"y must be in [0, {self.spec.n_classes - 1}] (n_classes = {self.spec.n_classes}), "
                f"got {bad}"
            )
        return arr

    # ---------------------------------------------------------------------------------------------------------
    def loss_and_grad(
        self,
        theta,
        x,
        y,
        noise: NodeNoise | None = None,
        shots: int | None = None,
        rng: np.random.Generator | None = None,
        *,
        mitigate: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean loss over each node's samples and its gradient.

        Parameters
        ----------
        theta : array_like, shape (N, P)
            One parameter vector per node (radians).
        x : array_like, shape (N, B, n)
            Input angles.
        y : array_like of int, shape (N, B)
            Labels in [0, C-1].
        noise : NodeNoise, optional
            Per-node depolarising / readout noise (N entries).
        shots : int, optional
            None: exact expectations and adjoint gradients. S: S binomial shots per expectation and
            parameter-shift gradients (2P+1 expectations per sample).
        rng : numpy.random.Generator
            Required with ``shots``.
        mitigate : bool
            The node undoes its known noise contraction c = (1-p)^L(1-2r): its estimated expectations and
            Jacobian are divided by c before the loss (with exact expectations: the noiseless loss and gradient).

        Returns
        -------
        loss : ndarray, shape (N,)
        grad : ndarray, shape (N, P)
            Exact for the whole loss (chain rule through σ and the noise contraction) when ``shots`` is None;
            with shots, ∂ℓ/∂E at the estimated Ê times the parameter-shift Jacobian estimate.
        """
        sim = self.simulator
        theta, x = sim._check(theta, x)
        n_nodes, n_samples = x.shape[:2]
        labels = self._labels(y, (n_nodes, n_samples))
        factor = sim._contraction(noise, n_nodes)
        if shots is not None:
            shots = positive_int("shots", shots)
            generator("rng", rng)
            e_hat, j_hat = sim.parameter_shift(theta, x, shots=shots, rng=rng, noise=noise)
            if mitigate:
                e_hat, j_hat = e_hat / factor[:, None, None], j_hat / factor[:, None, None, None]
            loss = self.loss.value(e_hat, labels).mean(axis=1)
            d = self.loss.derivative(e_hat, labels)  # (N, B, O)
            grad = np.einsum("kbo,kbop->kp", d, j_hat) / n_samples
            return loss, grad
        if mitigate:
            factor = np.ones(n_nodes)

        per_sample_loss = np.empty((n_nodes, n_samples))

        def weights(e, nodes, samples):
            c = factor[nodes, None, None]
            e_noisy = c * e
            lab = labels[nodes, samples]
            per_sample_loss[nodes, samples] = self.loss.value(e_noisy, lab)
            return c * self.loss.derivative(e_noisy, lab) / n_samples

        _, grad = sim._fused(theta, x, weights, reduce=True)
        return per_sample_loss.mean(axis=1), grad

    def predict(self, theta, x, noise: NodeNoise | None = None) -> np.ndarray:
        """Predicted labels from exact expectations: label 1 iff ⟨Z⟩ >= 0 (p >= 1/2) for two classes,
        argmax_o ⟨Z_o⟩ otherwise.

        Parameters
        ----------
        theta : array_like, shape (P,)
        x : array_like, shape (B, n)
        noise : NodeNoise with one node, optional
            Scales ⟨Z⟩ by its contraction (which never changes the sign or the argmax, but is accepted so
            that a noisy node's predictions can be computed the same way).

        Returns
        -------
        ndarray of int, shape (B,)
        """
        theta = real_array("theta", theta, 1)
        x = real_array("x", x, 2)
        e = self.simulator.expval(theta[None], x[None])[0]
        e = e * self.simulator._contraction(noise, 1)[0]
        if self.spec.n_classes == 2:
            return (e[:, 0] >= 0).astype(np.intp)
        return np.argmax(e, axis=1).astype(np.intp)

    def loss_and_accuracy(self, theta, x, y) -> tuple[float, float]:
        """Noiseless exact mean loss and accuracy on samples ``x`` (B, n) with labels ``y`` (B,), from one
        forward pass: the values of ``loss_and_grad(theta[None], x[None], y[None])[0][0]`` and
        :meth:`accuracy`, bit for bit, without the backward sweep and the second forward pass."""
        theta = real_array("theta", theta, 1)
        x = real_array("x", x, 2)
        sim = self.simulator
        theta2, x3 = sim._check(theta[None], x[None])
        labels = self._labels(y, (x.shape[0],))
        e = sim._expval(theta2, x3)  # (1, B, O): the forward pass every path here shares
        # loss_and_grad scales E by the (unit) noise factor before the loss; 1.0·E == E bit for bit
        loss = self.loss.value(e, labels[None]).mean(axis=1)[0]
        if self.spec.n_classes == 2:
            pred = (e[0, :, 0] >= 0).astype(np.intp)
        else:
            pred = np.argmax(e[0], axis=1).astype(np.intp)
        return float(loss), float(np.mean(pred == labels))

    def accuracy(self, theta, x, y) -> float:
        """Fraction of samples whose predicted label equals ``y`` (B,)."""
        pred = self.predict(theta, x)
        labels = self._labels(y, pred.shape)
        return float(np.mean(pred == labels))

    def qfi_summary(self, theta, x_probe, noise: NodeNoise | None = None) -> np.ndarray:
        """Node summary F̂_Q,k: mean of the QFI diagonal over probe samples and parameters, shape (N,).

        Parameters
        ----------
        theta : array_like, shape (N, P)
        x_probe : array_like, shape (B, n) (the same probe batch for every node) or (N, B, n)
        noise : NodeNoise, optional
            If given, the depolarised QFI (1-q)²/((1-q)+2q/d)·F_Q(ψ) with q = 1-(1-p)^L per node.
        """
        theta = real_array("theta", theta, 2)
        xp = np.asarray(x_probe)
        if xp.ndim == 2:
            xp = np.broadcast_to(real_array("x_probe", xp, 2), (theta.shape[0], *xp.shape))
        f = self.simulator.qfi_diagonal(theta, xp)
        if noise is not None:
            self.simulator._contraction(noise, f.shape[0])
            q = noise.mixing(self.spec.n_layers)
            f = depolarised_qfi(f, q[:, None, None], self.spec.dim)
        return f.mean(axis=(1, 2))
