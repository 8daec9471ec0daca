"""Losses on the readout expectations, with their exact derivatives (SPEC §3).

Sign convention (shared by every loss and by :meth:`QNNModel.predict`): label 1 ↔ ⟨Z⟩ ≥ 0, i.e. the
readout qubit mostly in |0⟩. For a binary task the model's probability of label 1 is p = σ(a·⟨Z⟩).

* ``"bce"``: binary cross-entropy -[y log p + (1-y) log(1-p)] with p = σ(a⟨Z⟩); for C > 2 classes the
  softmax cross-entropy of the logits a·⟨Z_o⟩ (one readout qubit per class).
* ``"mse"``: squared error to targets ±1: (⟨Z⟩ - t)² with t = 2y - 1; for C > 2 classes the mean over
  outputs of (⟨Z_o⟩ - t_o)² with t_o = +1 for the true class and -1 otherwise.

A loss is a small object with ``value(E, y)``, ``derivative(E, y)`` and ``hessian(E, y)`` (the last is what a node
needs to predict the shot noise of its gradient, :mod:`ceas.qnn.gradient_error`); register new ones in ``LOSSES``.
"""

from __future__ import annotations

import difflib
from typing import Protocol

import numpy as np

from ceas.errors import UnknownNameError


class Loss(Protocol):
    """Per-sample loss ℓ(E, y) of expectations E (..., O) and integer labels y (...)."""

    def value(self, e: np.ndarray, y: np.ndarray) -> np.ndarray:
        """ℓ per sample, shape (...)."""

    def derivative(self, e: np.ndarray, y: np.ndarray) -> np.ndarray:
        """∂ℓ/∂E per sample, shape (..., O)."""

    def hessian(self, e: np.ndarray, y: np.ndarray) -> np.ndarray:
        """∂²ℓ/∂E_o∂E_o' per sample, shape (..., O, O)."""


def _softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + e^z) without overflow."""
    return np.logaddexp(0.0, z)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class CrossEntropy:
    """BCE on σ(a⟨Z⟩) for two classes, softmax cross-entropy on a·⟨Z_o⟩ for more."""

    def __init__(self, n_classes: int, output_scale: float):
        self.n_classes = n_classes
        self.scale = output_scale

    def value(self, e, y):
        if self.n_classes == 2:
            z = self.scale * e[..., 0]
            return _softplus(z) - y * z  # = -[y log σ(z) + (1-y) log(1-σ(z))]
        z = self.scale * e
        picked = np.take_along_axis(z, y[..., None], axis=-1)[..., 0]
        return np.logaddexp.reduce(z, axis=-1) - picked

    def derivative(self, e, y):
        if self.n_classes == 2:
            z = self.scale * e[..., 0]
            return (self.scale * (_sigmoid(z) - y))[..., None]
        z = self.scale * e
        soft = np.exp(z - np.logaddexp.reduce(z, axis=-1, keepdims=True))
        onehot = np.zeros_like(soft)
        np.put_along_axis(onehot, y[..., None], 1.0, axis=-1)
        return self.scale * (soft - onehot)

    def hessian(self, e, y):
        a = self.scale
        if self.n_classes == 2:
            sig = _sigmoid(a * e[..., 0])
            return (a * a * sig * (1.0 - sig))[..., None, None]
        z = a * e
        soft = np.exp(z - np.logaddexp.reduce(z, axis=-1, keepdims=True))
        return (
            a
            * a
            * (soft[..., :, None] * np.eye(e.shape[-1]) - soft[..., :, None] * soft[..., None, :])
        )


class SquaredError:
    """(⟨Z⟩ - t)² with t = ±1 (mean over outputs for C > 2 classes); ``output_scale`` is not used."""

    def __init__(self, n_classes: int, output_scale: float):
        self.n_classes = n_classes

    def _targets(self, e, y):
        if self.n_classes == 2:
            return (2.0 * y - 1.0)[..., None]
        t = -np.ones_like(e)
        np.put_along_axis(t, y[..., None], 1.0, axis=-1)
        return t

    def value(self, e, y):
        return np.mean((e - self._targets(e, y)) ** 2, axis=-1)

    def derivative(self, e, y):
        return 2.0 * (e - self._targets(e, y)) / e.shape[-1]

    def hessian(self, e, y):
        o = e.shape[-1]
        return np.broadcast_to(2.0 / o * np.eye(o), (*e.shape, o)).copy()


LOSSES: dict[str, type] = {"bce": CrossEntropy, "mse": SquaredError}


def make_loss(name: str, n_classes: int, output_scale: float) -> Loss:
    """The loss registered as ``name``; an unknown name suggests the closest valid one."""
    try:
        cls = LOSSES[name]
    except (KeyError, TypeError):
        valid = sorted(LOSSES)
        close = difflib.get_close_matches(str(name), valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(f"loss must be one of {valid}, got {name!r}{hint}") from None
    return cls(n_classes, output_scale)
