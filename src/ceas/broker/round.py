"""The cross-layer broker (SPEC §2, Fig. 2–3): one training round runs the layers in order, in five phases.

1. :func:`~ceas.broker.configure.configure` -- the scheduling policy decides (participants, pairs per purpose,
   generation, purification, key) and the network executes the round's τ seconds: a frozen round plan.
2. :func:`~ceas.broker.local.local_updates` -- participants' gradients and fidelity stamps; the adversary's updates.
3. :func:`~ceas.broker.transport.transport` -- verification tests, MAC-tagged replies, channel injections, quantum
   payloads teleported and measured.
4. :func:`~ceas.broker.aggregate.aggregate` -- stamp verification, robust fidelity-weighted aggregation, trust.
   Without a trusted broker (``consensus.trusted_broker = false``) :func:`~ceas.broker.agree.agree` follows: the
   participants agree on θ^(t+1)'s digest, and a round they cannot agree on is recorded and not applied.
5. :func:`~ceas.broker.account.account` -- the round's metrics and the run's Bell-pair accounting.

Every random draw of round t comes from ``stream(seed, "round", t)`` (the adversary's from ``("adversary", t)``, so
an attack never shifts the honest randomness of a round); the network and key pools carry their own generators,
saved with the checkpoint, so a resumed run is identical to an uninterrupted one.
"""

from __future__ import annotations

import pickle

import numpy as np

from ceas.broker.account import account
from ceas.broker.aggregate import aggregate
from ceas.broker.agree import agree
from ceas.broker.configure import configure
from ceas.broker.learning import RoundResult
from ceas.broker.local import local_updates
from ceas.broker.setup import BrokerState, build_context, initial_state
from ceas.broker.transport import transport
from ceas.config import RunConfig
from ceas.rng import stream


def round_streams(seed: int, t: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The generators of round ``t``: the round's own and the adversary's (so an attack never shifts the honest
    randomness of a round)."""
    return stream(seed, "round", t), stream(seed, "adversary", t)


class BrokerTrainer:
    """Data-level training through the network, the scheduler, authentication and robust consensus.

    Parameters
    ----------
    cfg : RunConfig
        A configuration with ``broker.enabled = true``.
    """

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.ctx = build_context(cfg)
        self.state: BrokerState | None = None

    def start(self) -> None:
        """Build the network, key pools, MACs and trust for round 0."""
        self.state = initial_state(self.ctx)

    def initial_parameters(self) -> np.ndarray:
        return self.ctx.learner.initial_parameters()

    def make_optimizer(self):
        return self.ctx.learner.make_optimizer()

    def extra_state(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)

    def load_extra_state(self, blob: bytes) -> None:
        self.state = pickle.loads(blob)

    def run_round(self, t: int, theta: np.ndarray, optimizer) -> RoundResult:
        """Round ``t`` from parameters θ (shape (P,)): the five phases, one optimiser step, the metrics row."""
        if self.state is None:
            self.start()
        ctx, state = self.ctx, self.state
        rng, adversary_rng = round_streams(self.cfg.run.seed, t)
        plan = configure(ctx, state, t, rng)
        replies = local_updates(ctx, state, plan, theta, rng, adversary_rng)
        delivered = transport(ctx, state, plan, replies, rng, adversary_rng)
        agg = aggregate(ctx, state, plan, replies, delivered)
        agreed = None
        if ctx.cfg.consensus.trusted_broker:
            new_theta = theta if agg.update is None else optimizer.update(theta, agg.update)
        else:
            agreed = agree(ctx, state, plan, replies, agg, theta, optimizer)
            new_theta = agreed.theta
        row = account(ctx, state, plan, replies, delivered, agg, theta)
        if agreed is not None:
            row.update(agreed.metrics)
        row.update(ctx.learner.evaluate_if_due(t, new_theta))
        return RoundResult(theta=new_theta, metrics=row)
