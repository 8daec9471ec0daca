"""Round phase 5, account: the round's metrics row and the run's Bell-pair accounting (SPEC §5, §8).

Bell-pair utilisation U = pairs consumed by work whose result was used / pairs generated, over the run so far: a
payload pair counts when its payload was accepted, a verification pair when its test was evaluated, a key pair in
the share of distilled key bits that tags have spent. Pairs are link pairs: an end-to-end pair of a multi-hop channel
used by such work counts all its hop pairs (:mod:`ceas.broker.channels`); the metrics ``payload_pairs`` and
``verification_pairs`` count end-to-end pairs. With multi-hop channels the row also has the round's ``swapped``,
``swap_failures``, ``cutoff_failures`` and ``unmatched_hop_pairs`` (absent in the star, whose rows stay as they were).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ceas.broker.aggregate import Aggregate
from ceas.broker.configure import RoundPlan
from ceas.broker.local import Replies
from ceas.broker.setup import TAG_BITS, BrokerContext, BrokerState
from ceas.broker.transport import Transport
from ceas.network.werner import fidelity_from_werner


def account(
    ctx: BrokerContext,
    state: BrokerState,
    plan: RoundPlan,
    replies: Replies,
    delivered: Transport,
    agg: Aggregate,
    theta: np.ndarray,
) -> dict[str, Any]:
    """Phase 5 of round ``plan.round``: update the run's totals; return the metrics row (θ: parameters at its start)."""
    part, m = plan.participants, plan.m
    supply, byz, update = plan.supply, replies.byzantine, agg.update
    pay_all = int(sum(w.size for w in plan.payload_werner))
    ver_used = int(sum(supply.verification[k].size for k in part))
    utilisation = _utilisation(ctx, state, plan, agg.accepted, delivered.sent)
    honest = ~byz
    # gradient variance (SPEC §8): squared distance of the aggregate from the honest full-batch gradient
    g_full = ctx.learner.full_gradient(theta)
    row = {
        "round": plan.round,
        "train_loss": float(np.mean(replies.losses[honest])) if honest.any() else math.nan,
        "grad_norm": float(np.linalg.norm(update)) if update is not None else 0.0,
        "aggregate_mse": float(np.mean((update - g_full) ** 2)) if update is not None else math.nan,
        "participants": int(m),
        "byzantine_participants": int(byz.sum()),
        "accepted": int(agg.accepted.sum()),
        "byzantine_weight": float(agg.weights[byz].sum()) if m else 0.0,
        "rejected_injected": int(delivered.injected - delivered.injected_accepted),
        "pairs_generated": supply.generated,
        "pairs_expired": supply.expired,
        "pairs_evicted": supply.evicted,
        "payload_pairs": pay_all,
        "verification_pairs": ver_used,
        "key_pairs": supply.key_pairs,
        "key_bits": supply.key_bits,
        "fidelity_at_use": float(np.mean(fidelity_from_werner(np.concatenate(plan.payload_werner))))
        if pay_all
        else math.nan,
        "latency_s": float(np.mean(supply.arrival_s[part])) if m else 0.0,
        "utilisation": float(utilisation),
        "pairs_held": int(state.network.view().held.sum()),
    }
    if plan.circuit is not None:
        row.update(_circuit_metrics(ctx, state, plan))
    if ctx.channels.multi.any():
        swap = supply.swap
        row.update(
            swapped=swap.swapped,
            swap_failures=swap.swap_failures,
            cutoff_failures=swap.cutoff_failures,
            unmatched_hop_pairs=swap.unmatched,
        )
    return row


def _utilisation(
    ctx: BrokerContext,
    state: BrokerState,
    plan: RoundPlan,
    accepted: np.ndarray,
    tags_sent: int,
) -> float:
    """Add the round to the run's totals; return the run's utilisation so far (module docstring)."""
    n_need, hops = ctx.payload_pairs, ctx.channels.n_hops[plan.participants]
    pay_used = (
        int(
            sum(
                min(plan.payload_werner[i].size, n_need) * int(hops[i])
                for i in np.flatnonzero(accepted)
            )
        )
        if ctx.copies
        else 0
    )
    ver_used = int(
        sum(plan.supply.verification[k].size * int(h) for k, h in zip(plan.participants, hops))
    )
    tot, supply = state.totals, plan.supply
    tot["generated"] += supply.generated
    tot["expired"] += supply.expired
    tot["evicted"] += supply.evicted
    tot["key_bits_in"] += supply.key_bits
    tot["key_bits_out"] += TAG_BITS * tags_sent
    key_share = min(1.0, tot["key_bits_out"] / tot["key_bits_in"]) if tot["key_bits_in"] else 0.0
    tot["used"] += pay_used + ver_used
    tot["key_pairs"] += supply.key_pairs
    if not tot["generated"]:
        return 0.0
    return (tot["used"] + key_share * tot["key_pairs"]) / tot["generated"]


def _circuit_metrics(ctx: BrokerContext, state: BrokerState, plan: RoundPlan) -> dict[str, Any]:
    """A split circuit's round (:mod:`ceas.broker.circuit_pairs`): QPU-QPU pairs used and their mean fidelity, link
    pairs heralded for them, the replicas that ran and the round's duration (τ or the slowest replica's circuit runs,
    whichever is longer); the run's totals grow by the same counts."""
    c, tot = plan.circuit, state.totals
    pairs = int(c.pairs.sum())
    tot["circuit_pairs"] += pairs
    tot["circuit_generated"] += c.generated
    tot["circuit_runs"] += c.runs * int(plan.replicas.size)
    circuit_s = float(c.time_s.max()) if c.time_s.size else 0.0
    return {
        "replicas": int(plan.replicas.size),
        "circuit_runs": int(c.runs * plan.replicas.size),
        "circuit_pairs": pairs,
        "circuit_pairs_generated": int(c.generated),
        "circuit_fidelity": c.fidelity_sum / pairs if pairs else math.nan,
        "circuit_time_s": circuit_s,
        "round_time_s": max(float(ctx.cfg.scheduling.round_s), circuit_s),
    }
