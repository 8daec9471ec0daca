"""The learning layer of a run (Fig. 1a): data, shards, node noise, the model, local gradients and evaluation.

:class:`Learner` holds everything of the learning layer that is fixed for a run; both training loops use it: the
no-network loop :class:`DataLevelTrainer` (the learning and consensus layers alone) and the broker's round
(:class:`ceas.broker.round.BrokerTrainer`, through the network, the scheduler and authentication).

Each round t of the no-network loop: m of the N nodes take part; each computes the loss gradient of the shared model
θ on a minibatch of its own shard (finite shots or exact, under its own depolarising noise p_k); an aggregator
combines the m gradients; one optimiser step updates θ; the global model is evaluated on the held-out test set.

Every random choice of round t comes from the stream ``("round", t)`` of the run seed, so a round's outcome depends
only on (config, θ, optimiser state) at its start: a resumed run reproduces an uninterrupted one exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ceas.config import RunConfig
from ceas.consensus.params import aggregator_from_params
from ceas.qnn import NodeNoise, QNNModel
from ceas.qnn.data import Dataset, load_dataset, partition
from ceas.qnn.gradient_error import GradientReport, gradient_report
from ceas.qnn.optim import OPTIMIZERS
from ceas.rng import stream


@dataclass(frozen=True)
class RoundResult:
    """What one round produced: the new parameters and its metrics row."""

    theta: np.ndarray
    metrics: dict[str, Any]


class Learner:
    """The learning layer of one run: data set, shards, node noise, model; local gradients and evaluation.

    Parameters
    ----------
    cfg : RunConfig

    Attributes
    ----------
    data : Dataset
        Train and held-out test sets.
    shards : list of (n_k,) int arrays
        Training-sample indices of each node.
    y_train : (n_train,) int
        The labels nodes train on (a broker run may poison the Byzantine shards' labels here).
    depolarizing, readout_error : (N,) float
        Each QPU's noise.
    """

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        seed = cfg.run.seed
        classes = tuple(cfg.data.classes) if cfg.data.classes is not None else None
        self.data: Dataset = load_dataset(
            cfg.data.dataset,
            cfg.model.n_qubits,
            test_fraction=cfg.data.test_fraction,
            classes=classes,
            seed=seed,
            n_samples=cfg.data.n_samples,
        )
        self.shards = partition(
            self.data.y_train,
            cfg.training.nodes,
            stream(seed, "partition"),
            scheme=cfg.data.partition,
            alpha=cfg.data.alpha,
        )
        self.spec = cfg.model.circuit(self.data.n_classes)
        self.model = QNNModel(
            self.spec, loss=cfg.model.loss, output_scale=cfg.model.output_scale, init=cfg.model.init
        )
        noise_rng = stream(seed, "node-noise")
        self.depolarizing = noise_rng.uniform(
            cfg.noise.depolarizing_min, cfg.noise.depolarizing_max, size=cfg.training.nodes
        )
        self.readout_error = np.full(cfg.training.nodes, cfg.noise.readout_error)
        self.y_train = self.data.y_train
        self.mitigate = cfg.noise.mitigation == "calibrated"

    def initial_parameters(self) -> np.ndarray:
        """θ₀, shape (P,), from the run's ``init`` stream."""
        return self.model.init_params(stream(self.cfg.run.seed, "init"))

    def make_optimizer(self):
        return OPTIMIZERS[self.cfg.training.optimizer](self.spec.n_params, lr=self.cfg.training.lr)

    def minibatches(self, participants: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One minibatch of sample indices per participant, shape (m, B), drawn from its own shard (with
        replacement only when the shard is smaller than B)."""
        b = self.cfg.training.batch_size
        if participants.size == 0:
            return np.zeros((0, b), dtype=int)
        return np.stack(
            [
                rng.choice(self.shards[k], size=b, replace=self.shards[k].size < b)
                for k in participants
            ]
        )

    def local_gradients(
        self, theta: np.ndarray, participants: np.ndarray, batches: np.ndarray, rng
    ) -> tuple:
        """Every participant's (loss, gradient) on its minibatch, under its own noise: shapes (m,), (m, P).

        Labels come from ``self.y_train`` (the training labels, poisoned on Byzantine shards where an attack says so).
        """
        m = participants.size
        noise = self.node_noise(participants)
        x = self.data.x_train[batches]  # (m, B, n)
        y = self.y_train[batches]  # (m, B)
        thetas = np.broadcast_to(theta, (m, theta.size)).copy()
        return self.model.loss_and_grad(
            thetas,
            x,
            y,
            noise=noise,
            shots=self.cfg.training.shots,
            rng=rng,
            mitigate=self.mitigate,
        )

    def local_gradient_report(
        self, theta: np.ndarray, participants: np.ndarray, batches: np.ndarray, rng
    ) -> GradientReport:
        """:meth:`local_gradients` (the same gradients, the same draws) with each participant's estimate of its
        gradient's shot variance and noise bias (:func:`ceas.qnn.gradient_error.gradient_report`)."""
        m = participants.size
        thetas = np.broadcast_to(theta, (m, theta.size)).copy()
        return gradient_report(
            self.model,
            thetas,
            self.data.x_train[batches],
            self.y_train[batches],
            noise=self.node_noise(participants),
            shots=self.cfg.training.shots,
            rng=rng,
            mitigate=self.mitigate,
        )

    def full_gradient(self, theta: np.ndarray) -> np.ndarray:
        """The exact, noiseless gradient of the honest full training set at θ, shape (P,)."""
        _, g = self.model.loss_and_grad(
            theta[None, :],
            self.data.x_train[None],
            self.data.y_train[None],
            noise=None,
            shots=None,
            rng=None,
        )
        return g[0]

    def node_noise(self, nodes: np.ndarray) -> NodeNoise:
        """The depolarising and readout noise of ``nodes``."""
        return NodeNoise(
            depolarizing=self.depolarizing[nodes], readout_error=self.readout_error[nodes]
        )

    def evaluate(self, theta: np.ndarray) -> dict[str, float]:
        """Noiseless, exact test accuracy and loss of the global model θ."""
        loss, accuracy = self.model.loss_and_accuracy(theta, self.data.x_test, self.data.y_test)
        return {"test_accuracy": accuracy, "test_loss": loss}

    def evaluate_if_due(self, t: int, theta: np.ndarray) -> dict[str, float]:
        """:meth:`evaluate` on rounds ``training.eval_every`` divides and on the last round; NaN otherwise."""
        if (t + 1) % self.cfg.training.eval_every == 0 or t + 1 == self.cfg.run.rounds:
            return self.evaluate(theta)
        return {"test_accuracy": math.nan, "test_loss": math.nan}


class DataLevelTrainer:
    """Data-level training without the network: random participants, local gradients, one aggregator, one step.

    Parameters
    ----------
    cfg : RunConfig
    """

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.learner = Learner(cfg)
        self.aggregate = aggregator_from_params(cfg.consensus, cfg.security.byzantine_fraction)

    def initial_parameters(self) -> np.ndarray:
        return self.learner.initial_parameters()

    def make_optimizer(self):
        return self.learner.make_optimizer()

    def sample_round(self, t: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
        """Participants (m,) and minibatch indices (m, B) of round ``t``, and the round's Generator for shots."""
        rng = stream(self.cfg.run.seed, "round", t)
        participants = np.sort(
            rng.choice(
                self.cfg.training.nodes, size=self.cfg.scheduling.participants, replace=False
            )
        )
        return participants, self.learner.minibatches(participants, rng), rng

    def run_round(self, t: int, theta: np.ndarray, optimizer) -> RoundResult:
        participants, batches, rng = self.sample_round(t)
        losses, grads = self.learner.local_gradients(theta, participants, batches, rng)
        update = self.aggregate(grads, None)
        new_theta = optimizer.update(theta, update)
        row: dict[str, Any] = {
            "round": t,
            "train_loss": float(np.mean(losses)),
            "grad_norm": float(np.linalg.norm(update)),
            "participants": int(participants.size),
        }
        row.update(self.learner.evaluate_if_due(t, new_theta))
        return RoundResult(theta=new_theta, metrics=row)
