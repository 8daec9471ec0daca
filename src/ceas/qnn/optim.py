"""First-order optimisers over a flat parameter vector, with state that can be checkpointed exactly."""

from __future__ import annotations

import numpy as np


class Adam:
    """Adam (Kingma & Ba 2015): m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²; θ ← θ − lr·m̂/(√v̂ + ε).

    State (``m``, ``v``, ``step``) lives in :meth:`state`/:meth:`load_state` so a resumed run continues bit-exactly.
    """

    def __init__(
        self,
        n_params: int,
        lr: float = 0.05,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m_ = np.zeros(n_params)
        self.v_ = np.zeros(n_params)
        self.step_ = 0

    def update(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """Return the new parameters (shape (P,)) after one step along ``grad`` (shape (P,))."""
        self.step_ += 1
        self.m_ = self.beta1 * self.m_ + (1 - self.beta1) * grad
        self.v_ = self.beta2 * self.v_ + (1 - self.beta2) * grad * grad
        m_hat = self.m_ / (1 - self.beta1**self.step_)
        v_hat = self.v_ / (1 - self.beta2**self.step_)
        return theta - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def state(self) -> dict[str, np.ndarray]:
        return {"adam_m": self.m_, "adam_v": self.v_, "adam_step": np.array(self.step_)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.m_, self.v_, self.step_ = (
            state["adam_m"].copy(),
            state["adam_v"].copy(),
            int(state["adam_step"]),
        )


class SGD:
    """Plain gradient descent θ ← θ − lr·g (stateless)."""

    def __init__(self, n_params: int, lr: float = 0.05):
        self.lr = lr

    def update(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return theta - self.lr * grad

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        return None


OPTIMIZERS = {"adam": Adam, "sgd": SGD}
