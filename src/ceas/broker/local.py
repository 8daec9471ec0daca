"""Round phase 2, local updates: each participant's gradient and fidelity stamp (Definition 1), as sent.

Participants compute gradients on their minibatches (finite shots, their own depolarising noise); every
``model.qfi_refresh_every`` rounds they refresh their QFI summaries on the fixed probe batch. The coordinating
adversary (Definition 4) then replaces the Byzantine participants' updates, knowing every honest update of the round,
and may inflate their stamps' claims. An honest node claims the ledger fidelity of its payload pairs.

Every update travels in the protocol's declared range [−G, G] (G = ``broker.clip``): an honest node clips its own
gradient, and the adversary keeps its finite updates inside it too, since the broker rejects a reply with any
component outside (:func:`ceas.broker.transport.check_update`) -- a rational attacker sends the strongest update
that is accepted. A non-finite update (a broken attack) is sent as it is, and rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas.broker.configure import RoundPlan
from ceas.broker.setup import BrokerContext, BrokerState
from ceas.consensus.stamps import FidelityStamp
from ceas.network.werner import fidelity_from_werner, stamp_weight, werner_from_fidelity
from ceas.security.attacks import StampClaims


@dataclass(frozen=True, eq=False)
class Replies:
    """What the round's participants send, before the network carries it.

    Attributes
    ----------
    byzantine : (m,) bool
        Which participants the adversary controls.
    losses : (m,) float
        Each participant's minibatch loss (honest computation).
    updates : (m, P) float
        The updates as sent (the adversary's for Byzantine participants).
    stamps : tuple of m FidelityStamp
        The stamps as sent (claims inflated by stamp attacks).
    ledger_fidelity : (m,) float
        What an honest node claims: the ledger fidelity of its payload pairs (1 with classical payloads).
    """

    byzantine: np.ndarray
    losses: np.ndarray
    updates: np.ndarray
    stamps: tuple[FidelityStamp, ...]
    ledger_fidelity: np.ndarray


def local_updates(
    ctx: BrokerContext,
    state: BrokerState,
    plan: RoundPlan,
    theta: np.ndarray,
    rng: np.random.Generator,
    adversary_rng: np.random.Generator,
) -> Replies:
    """Phase 2 of the round: gradients, QFI refresh, the adversary's updates, stamps (module docstring)."""
    cfg, learner = ctx.cfg, ctx.learner
    part, t = plan.participants, plan.round
    m = part.size
    batches = learner.minibatches(part, rng)
    losses, grads = np.zeros(0), np.zeros((0, ctx.n_params))
    if m:
        losses, grads = learner.local_gradients(theta, part, batches, rng)
        if t % cfg.model.qfi_refresh_every == 0:
            thetas = np.broadcast_to(theta, (m, theta.size))
            state.qfi[part] = learner.model.qfi_summary(
                thetas, ctx.x_probe, noise=learner.node_noise(part)
            )
    byz = ctx.is_byzantine[part]
    updates = grads.copy()
    if byz.any() and (~byz).any():
        bad = ctx.adversary.updates(grads[~byz], int(byz.sum()), adversary_rng)
        if bad is not None:
            updates[byz] = bad
    clip = ctx.cfg.broker.clip
    updates = np.where(np.isfinite(updates), np.clip(updates, -clip, clip), updates)
    ledger_fid = np.clip(fidelity_from_werner(np.clip(plan.visibility, 0, 1)), 0.25, 1.0)
    claim_fid, claim_qfi = ledger_fid.copy(), state.qfi[part].copy()
    if byz.any():
        c = ctx.adversary.claims(StampClaims(fidelity=claim_fid[byz], qfi=claim_qfi[byz]))
        claim_fid[byz], claim_qfi[byz] = c.fidelity, c.qfi
    shots = cfg.training.shots or 1
    stamps = tuple(
        FidelityStamp(
            node=int(k),
            round=t,
            phi=float(stamp_weight(shots, claim_qfi[i], werner_from_fidelity(claim_fid[i]))),
            qfi=float(claim_qfi[i]),
            fidelity=float(claim_fid[i]),
            shots=int(shots),
            nonce=int(state.macs[int(k)].next_seq).to_bytes(8, "big"),
        )
        for i, k in enumerate(part)
    )
    return Replies(
        byzantine=byz, losses=losses, updates=updates, stamps=stamps, ledger_fidelity=ledger_fid
    )
