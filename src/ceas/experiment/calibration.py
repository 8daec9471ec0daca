"""Do fidelity stamps predict the error of what is delivered? Measured in the running system (SPEC §3, issue 11).

:func:`calibrate` trains a configuration through the broker and, every ``every`` rounds, freezes the round after its
local phase: θ, each honest participant's minibatch, the payload pairs its link delivered and the visibility the broker
rescales by. It then redraws each honest participant's delivered update ``draws`` times -- fresh shots on the same
minibatch under the node's own noise, fresh payload measurements through the same pairs -- and measures the
mean-squared error (per component) about the **noiseless gradient of the same minibatch**, i.e. what an ideal QPU
with a perfect channel would have sent. Beside it stand the two stamps a node could send for that update:

* ``phi_mse``: 1 / the node's own predicted MSE (:mod:`ceas.qnn.gradient_error` + the payload variance) for one
  draw -- the stamp one update carries (``phi_mse_mean``: the harmonic mean over all draws' stamps);
* ``phi_paper``: the paper's S·F̂_Q·v² with the node's QFI summary and the ledger visibility of its pairs.

**Proposition 1 in situ.** From the same draws, per frozen round and draw (each draw weighted by its own stamps, as
a round is): the error of the φ-weighted mean of the honest updates against that of their uniform mean (each about
the same weights applied to the noiseless gradients, so only the noise counts, as in the proposition), beside what
the stamps predict, 1/Σφ against (1/m²)Σ1/φ; and the noise-induced error of the configured robust rule with φ
weights against the same rule with equal weights.

The training run itself is unchanged by the measurement (its random streams are not touched).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ceas.broker.configure import RoundPlan, configure
from ceas.broker.local import Replies, local_updates, predicted_phi
from ceas.broker.payload import deliver
from ceas.broker.round import BrokerTrainer, round_streams
from ceas.broker.setup import BrokerContext, BrokerState
from ceas.config import RunConfig
from ceas.network.werner import stamp_weight, werner_from_fidelity
from ceas.qnn import NodeNoise
from ceas.qnn.gradient_error import gradient_report
from ceas.rng import stream


@dataclass
class Calibration:
    """Node-round records (arrays of equal length) and per-round Proposition 1 records."""

    round: list[int] = field(default_factory=list)
    node: list[int] = field(default_factory=list)
    depolarizing: list[float] = field(default_factory=list)
    measured_mse: list[float] = field(default_factory=list)
    phi_mse: list[float] = field(default_factory=list)
    phi_mse_mean: list[float] = field(default_factory=list)
    phi_paper: list[float] = field(default_factory=list)
    prop1: list[dict] = field(default_factory=list)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            k: np.asarray(getattr(self, k))
            for k in (
                "round",
                "node",
                "depolarizing",
                "measured_mse",
                "phi_mse",
                "phi_mse_mean",
                "phi_paper",
            )
        }


def calibrate(
    cfg: RunConfig, *, every: int = 10, draws: int = 100, seed: int = 0, progress=None
) -> Calibration:
    """Train ``cfg`` (broker enabled) for ``cfg.run.rounds`` rounds and measure every ``every``-th (module docstring).

    ``draws`` repeated deliveries per honest participant; ``seed`` seeds the measurement's own draws (never the run's).
    ``progress`` is called with (round, rounds) after each round, if given.
    """
    trainer = BrokerTrainer(cfg)
    trainer.start()
    ctx, state = trainer.ctx, trainer.state
    optimizer = trainer.make_optimizer()
    theta = trainer.initial_parameters()
    out = Calibration()
    for t in range(cfg.run.rounds):
        if t % every == 0:
            # measure on a copy of the round's state, so that the run's own round is untouched
            shadow = copy.deepcopy(state)
            rng, adversary_rng = round_streams(cfg.run.seed, t)
            plan = configure(ctx, shadow, t, rng)
            replies = local_updates(ctx, shadow, plan, theta, rng, adversary_rng)
            _measure(ctx, shadow, plan, replies, theta, draws, stream(seed, "calibration", t), out)
        theta = trainer.run_round(t, theta, optimizer).theta
        if progress is not None:
            progress(t + 1, cfg.run.rounds)
    return out


def _measure(
    ctx: BrokerContext,
    state: BrokerState,
    plan: RoundPlan,
    replies: Replies,
    theta: np.ndarray,
    draws: int,
    rng: np.random.Generator,
    out: Calibration,
) -> None:
    """Redraw each honest participant's delivered update ``draws`` times; record errors and stamps."""
    learner, cfg = ctx.learner, ctx.cfg
    honest = np.flatnonzero(~replies.byzantine & plan.complete)
    if honest.size == 0:
        return
    nodes = plan.participants[honest]
    batches = replies.batches[honest]  # (h, B)
    h, p = honest.size, ctx.n_params
    x, y = learner.data.x_train[batches], learner.y_train[batches]
    _, ideal = learner.model.loss_and_grad(
        np.broadcast_to(theta, (h, p)).copy(), x, y, noise=None, shots=None, rng=None
    )
    # every draw of every node at once, (h * D) virtual nodes; each draw carries the stamp its node would send
    rep = np.repeat(np.arange(h), draws)
    noise = learner.node_noise(nodes)
    many = NodeNoise(depolarizing=noise.depolarizing[rep], readout_error=noise.readout_error[rep])
    report = gradient_report(
        learner.model,
        np.broadcast_to(theta, (h * draws, p)).copy(),
        x[rep],
        y[rep],
        noise=many,
        shots=cfg.training.shots,
        rng=rng,
        mitigate=learner.mitigate,
    )
    clip = cfg.broker.clip
    sent = np.clip(report.grad, -clip, clip)
    got = sent
    if ctx.copies:
        w = np.stack([plan.payload_werner[i][: ctx.payload_pairs] for i in honest])
        w = w.reshape(h, ctx.copies, p)[rep]
        v_hat = np.maximum(plan.visibility[honest], 1e-9)[rep]
        got = deliver(sent, w, v_hat, clip=clip, rng=rng, scale=cfg.broker.payload_scale)
    errors = (got - ideal[rep]).reshape(h, draws, p)
    visibility = werner_from_fidelity(replies.ledger_fidelity[honest])
    phi = predicted_phi(ctx, sent, report.mse, visibility[rep]).reshape(h, draws)
    out.round += [plan.round] * h
    out.node += nodes.tolist()
    out.depolarizing += learner.depolarizing[nodes].tolist()
    out.measured_mse += (errors**2).mean(axis=(1, 2)).tolist()
    out.phi_mse += phi[:, 0].tolist()  # one stamp: the prediction a node sends with one update
    out.phi_mse_mean += (1.0 / (1.0 / phi).mean(axis=1)).tolist()
    out.phi_paper += stamp_weight(cfg.training.shots or 1, state.qfi[nodes], visibility).tolist()
    if h >= 2:
        out.prop1.append(_proposition1(ctx, plan.round, ideal, errors, phi))


def _proposition1(
    ctx: BrokerContext, t: int, ideal: np.ndarray, errors: np.ndarray, phi: np.ndarray
) -> dict:
    """Noise-only error of the φ-weighted vs uniform mean, and of the robust rule with φ vs equal weights, summed
    over the draws (each draw weighted by its own stamps, as in a round); beside what the stamps predict."""
    h, draws, _ = errors.shape
    w = phi / phi.sum(axis=0)
    weighted = np.einsum("hd,hdp->dp", w, errors)
    uniform = errors.mean(axis=0)
    rule, equal = ctx.aggregation, np.ones(h)

    def rule_error(weights_of) -> float:
        total = 0.0
        for d in range(draws):
            base = rule.aggregate(ideal, weights_of(d)).update
            total += np.mean(
                (rule.aggregate(ideal + errors[:, d], weights_of(d)).update - base) ** 2
            )
        return total

    return {
        "round": int(t),
        "participants": int(h),
        "draws": int(draws),
        "weighted_mse": float(np.sum(np.mean(weighted**2, axis=1))),
        "uniform_mse": float(np.sum(np.mean(uniform**2, axis=1))),
        "predicted_weighted_mse": float(np.sum(1.0 / phi.sum(axis=0))),
        "predicted_uniform_mse": float(np.sum((1.0 / phi).sum(axis=0) / h**2)),
        "rule_weighted_mse": rule_error(lambda d: phi[:, d]),
        "rule_equal_mse": rule_error(lambda d: equal),
    }


def summarise(cal: Calibration) -> dict:
    """Spearman correlation and median ratio of each stamp against measured 1/MSE; pooled Proposition 1 ratios."""
    from scipy.stats import spearmanr

    a = cal.arrays()
    inv = 1.0 / a["measured_mse"]
    res = {"node_rounds": int(inv.size)}
    for name in ("phi_mse", "phi_mse_mean", "phi_paper"):
        res[name] = {
            "spearman": float(spearmanr(a[name], inv).statistic),
            "median_ratio": float(np.median(a[name] / inv)),
        }
    if cal.prop1:

        def total(key: str) -> float:
            return sum(r[key] for r in cal.prop1)

        res["proposition1"] = {
            "rounds": len(cal.prop1),
            "measured_ratio": total("weighted_mse") / total("uniform_mse"),
            "predicted_ratio": total("predicted_weighted_mse") / total("predicted_uniform_mse"),
            "rounds_weighted_not_worse": int(
                sum(r["weighted_mse"] <= r["uniform_mse"] for r in cal.prop1)
            ),
            "rule_measured_ratio": total("rule_weighted_mse") / total("rule_equal_mse"),
        }
    return res
