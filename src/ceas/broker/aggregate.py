"""Round phase 4, aggregate: verify the stamps, reduce the accepted updates, move trust.

Stamps are verified against the broker's verification-test estimate of each link and the node's noise bound (SPEC §6,
defence 3); the verified φ weight a robust rule (capped fidelity weighting inside a trimmed mean or median, §3).
Trust moves towards agreement with the aggregate for the replies the rule used; replies rejected by authentication,
stamp verification or the rule cost trust; a reply the network failed to carry (payload short, no key for its tag)
says nothing about the node's honesty and costs none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas.broker.configure import RoundPlan
from ceas.broker.local import Replies
from ceas.broker.payload import payload_scale
from ceas.broker.setup import BrokerContext, BrokerState
from ceas.broker.transport import NETWORK_MISSES, Transport
from ceas.consensus.stamps import tighten_claims, verify_stamps
from ceas.errors import ProtocolError
from ceas.network.werner import werner_from_fidelity
from ceas.scheduling.inclusion import plackett_luce_inclusion


@dataclass(frozen=True, eq=False)
class Aggregate:
    """The round's aggregate.

    Attributes
    ----------
    update : (P,) float or None
        The aggregate gradient; None when no reply survived (no step is taken).
    weights : (m,) float
        Each participant's weight in the aggregate.
    accepted : (m,) bool
        Replies that arrived, authenticated and passed stamp verification.
    """

    update: np.ndarray | None
    weights: np.ndarray
    accepted: np.ndarray


def aggregate(
    ctx: BrokerContext,
    state: BrokerState,
    plan: RoundPlan,
    replies: Replies,
    delivered: Transport,
) -> Aggregate:
    """Phase 4 of the round (module docstring)."""
    part, m = plan.participants, plan.m
    accepted = delivered.accepted.copy()
    if not m:
        return Aggregate(update=None, weights=np.zeros(0), accepted=accepted)
    phi, verified = verified_phi(ctx, state, plan, replies)
    accepted &= verified
    if ctx.replicas is None:
        result = ctx.aggregation.aggregate(
            delivered.received,
            aggregation_weights(ctx, plan, phi),
            accepted=accepted,
            reasons=delivered.reasons,
        )
        if result.update is not None and result.accepted.any():
            ok = result.accepted
            state.trust.update(part[ok], delivered.received[ok], result.update)
    else:
        result = _by_block(ctx, state, plan, delivered, phi, accepted)
    ok = result.accepted
    state.phi[part] = np.where(phi > 0, phi, state.phi[part])
    state.phi_visibility[part] = np.where(
        plan.visibility > 0, np.clip(plan.visibility, 1e-6, 1), state.phi_visibility[part]
    )
    missed = np.array([delivered.reasons.get(i) in NETWORK_MISSES for i in range(m)], bool)
    if (~ok & ~missed).any():
        state.trust.penalize(part[~ok & ~missed])
    return Aggregate(update=result.update, weights=result.weights, accepted=accepted)


def _by_block(
    ctx: BrokerContext,
    state: BrokerState,
    plan: RoundPlan,
    delivered: Transport,
    phi: np.ndarray,
    accepted: np.ndarray,
) -> Aggregate:
    """Layer-wise consensus of a split circuit (:mod:`ceas.broker.replicas`): the replies of QPU i of every running
    replica are reduced by the rule on QPU i's parameters only, and trust moves per block. A block no reply survived
    for is not updated (zero); when no block has an update, no step is taken."""
    part, reps = plan.participants, ctx.replicas
    position = reps.position(part)
    update, any_update = np.zeros(ctx.n_params), False
    weights, ok = np.zeros(part.size), np.zeros(part.size, bool)
    for i in range(reps.k):
        rows, cols = np.flatnonzero(position == i), reps.owned(i)
        if not rows.size or not cols.size:
            continue
        reasons = {j: delivered.reasons[r] for j, r in enumerate(rows) if r in delivered.reasons}
        sub = ctx.aggregation.aggregate(
            delivered.received[np.ix_(rows, cols)], phi[rows], accepted=accepted[rows], reasons=reasons
        )
        weights[rows], ok[rows] = sub.weights, sub.accepted
        if sub.update is not None and sub.accepted.any():
            update[cols], any_update = sub.update, True
            took = rows[sub.accepted]
            state.trust.update(part[took], delivered.received[np.ix_(took, cols)], sub.update)
    return Aggregate(update=update if any_update else None, weights=weights, accepted=ok)


def aggregation_weights(ctx: BrokerContext, plan: RoundPlan, phi: np.ndarray) -> np.ndarray:
    """The weights the aggregation gets, shape (m,): the verified φ, divided by each participant's probability of
    being seated when ``consensus.inclusion_weighting`` is on (φ replaced by 1 without fidelity weighting).

    A zero φ (a rejected stamp) stays zero, so the same replies are rejected either way.
    """
    con = ctx.cfg.consensus
    if not con.inclusion_weighting:
        return phi
    base = phi if con.fidelity_weighting else (phi > 0).astype(float)
    return np.where(phi > 0, base / seat_probability(plan), 0.0)


def seat_probability(plan: RoundPlan) -> np.ndarray:
    """Each participant's probability of having been seated by the round's draw, shape (m,), all > 0."""
    weights = plan.decision.seat_weights
    if weights is None:
        raise ProtocolError(
            "consensus.inclusion_weighting needs the policy's draw weights (Decision.seat_weights); this policy "
            "returned none (set consensus.inclusion_weighting = false, or return seat_weights from the policy)"
        )
    pi = plackett_luce_inclusion(weights, plan.decision.participants.size, nodes=plan.participants)
    pi = pi[plan.participants]
    if not (pi > 0).all():
        raise ProtocolError(
            "a participant was seated with draw weight 0 (Decision.seat_weights must be > 0 on every participant)"
        )
    return pi


def verified_phi(
    ctx: BrokerContext, state: BrokerState, plan: RoundPlan, replies: Replies
) -> tuple[np.ndarray, np.ndarray]:
    """Each participant's verified φ (0 where its stamp was rejected) and whether it passed, shapes (m,), (m,)."""
    part = plan.participants
    measured = state.fid_estimate[part]
    bound = np.maximum(state.fid_upper[part], measured)
    qfi_cap = ctx.qfi_max[part]
    if ctx.cfg.broker.tight_claims:
        measured, bound, qfi_cap = tighten_claims(
            measured,
            bound,
            qfi_cap,
            np.array([s.qfi for s in replies.stamps]),
            ledger_fidelity=replies.ledger_fidelity if ctx.copies else None,
        )
    ver = verify_stamps(
        replies.stamps,
        measured,
        bound,
        qfi_cap,
        assigned_shots=ctx.cfg.training.shots or 1,
        current_round=plan.round,
        **(_mse_checks(ctx, replies.updates, bound) if ctx.cfg.consensus.stamp == "mse" else {}),
    )
    return np.where(ver.accepted, ver.phi, 0.0), np.asarray(ver.accepted, bool)


def _mse_checks(ctx: BrokerContext, updates: np.ndarray, bound: np.ndarray) -> dict:
    """What the broker can check of predicted-MSE stamps: the provable cap and each payload's s²/S_p (see
    :func:`ceas.consensus.stamps.verify_stamps`)."""
    if not ctx.copies:
        return {"phi_cap": mse_phi_cap(ctx, updates, bound), "mse_payload": np.zeros(len(updates))}
    cfg = ctx.cfg.broker
    s = payload_scale(updates, cfg.clip, cfg.payload_scale)
    return {"phi_cap": mse_phi_cap(ctx, updates, bound), "mse_payload": s**2 / ctx.copies}


def mse_phi_cap(ctx: BrokerContext, updates: np.ndarray, fidelity_bound: np.ndarray) -> np.ndarray:
    """The largest predicted-MSE φ the broker can grant each reply, shape (m,).

    A quantum payload of scale s (sent in its envelope) through pairs of visibility at most w (from the verified
    fidelity bound) has per-component variance s²(1 − w²z²)/(S_p w²) ≥ s²(1 − w²)/(S_p w²) whatever its components
    z, so no honest prediction of the delivered MSE lies below that floor: φ ≤ S_p w² / (s²(1 − w²)). Classical
    payloads (and perfect pairs) give no floor: the cap is ∞, and only the weight cap bounds a claim.
    """
    m = updates.shape[0]
    if not ctx.copies:
        return np.full(m, np.inf)
    cfg = ctx.cfg.broker
    s = payload_scale(updates, cfg.clip, cfg.payload_scale)
    w2 = werner_from_fidelity(fidelity_bound) ** 2
    floor = s**2 * (1.0 - w2) / (ctx.copies * np.maximum(w2, 1e-300))
    with np.errstate(divide="ignore"):
        return np.where(floor > 0, 1.0 / floor, np.inf)
