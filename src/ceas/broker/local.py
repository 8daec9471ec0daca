"""Round phase 2, local updates: each participant's gradient and fidelity stamp (Definition 1), as sent.

Participants compute gradients on their minibatches (finite shots, their own depolarising noise); every
``model.qfi_refresh_every`` rounds they refresh their QFI summaries on the fixed probe batch. The coordinating
adversary (Definition 4) then replaces the Byzantine participants' updates, knowing every honest update of the round,
and may inflate their stamps' claims. An honest node claims the ledger fidelity of its payload pairs.

The stamp's φ (``consensus.stamp``) is either the paper's product S·F̂_Q·v² or, with ``"mse"``, the inverse of the
node's own prediction of its update's mean-squared error as delivered: the plug-in shot variance and noise bias of
its gradient (:mod:`ceas.qnn.gradient_error`) plus the quantum payload's variance at its scale, its S_p copies and the
visibility it claims (:func:`ceas.broker.payload.payload_variance`).

Every update travels in the protocol's declared range [−G, G] (G = ``broker.clip``): an honest node clips its own
gradient, and the adversary keeps its finite updates inside it too, since the broker rejects a reply with any
component outside (:func:`ceas.broker.transport.check_update`) -- a rational attacker sends the strongest update
that is accepted. A non-finite update (a broken attack) is sent as it is, and rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas.broker.configure import RoundPlan
from ceas.broker.payload import payload_variance
from ceas.broker.setup import BrokerContext, BrokerState
from ceas.broker.split import split_gradients
from ceas.consensus.stamps import FidelityStamp
from ceas.partitions.noise import PlacementNoise
from ceas.network.werner import fidelity_from_werner, stamp_weight, werner_from_fidelity
from ceas.security.attacks import RoundContext, StampClaims


@dataclass(frozen=True, eq=False)
class Replies:
    """What the round's participants send, before the network carries it.

    Attributes
    ----------
    batches : (m, B) int
        The training-sample indices each participant's minibatch holds.
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

    batches: np.ndarray
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
    losses, grads = np.zeros(0), np.zeros((0, ctx.n_params))
    own_error = np.zeros((m, ctx.n_params))
    if ctx.replicas is not None:
        batches, losses, grads, own_error = split_updates(ctx, plan, theta, rng)
    else:
        batches = learner.minibatches(part, rng)
        if m and cfg.consensus.stamp == "mse":
            report = learner.local_gradient_report(theta, part, batches, rng)
            losses, grads, own_error = report.loss, report.grad, report.mse
        elif m:
            losses, grads = learner.local_gradients(theta, part, batches, rng)
    if m and t % cfg.model.qfi_refresh_every == 0:
        thetas = np.broadcast_to(theta, (m, theta.size))
        state.qfi[part] = learner.model.qfi_summary(
            thetas, ctx.x_probe, noise=learner.node_noise(part)
        )
    byz = ctx.is_byzantine[part]
    updates = grads.copy()
    if byz.any() and (~byz).any():
        seated = RoundContext(round=t, byzantine=part[byz], participants=part, own=grads[byz])
        bad = ctx.adversary.updates(grads[~byz], int(byz.sum()), adversary_rng, context=seated)
        if bad is not None:
            updates[byz] = bad
    if ctx.replicas is not None:  # each QPU sends its own block only (the adversary crafts from whole gradients)
        updates = np.where(ctx.replicas.mask(part), updates, 0.0)
    clip = ctx.cfg.broker.clip
    updates = np.where(np.isfinite(updates), np.clip(updates, -clip, clip), updates)
    ledger_fid = np.clip(fidelity_from_werner(np.clip(plan.visibility, 0, 1)), 0.25, 1.0)
    claim_fid, claim_qfi = ledger_fid.copy(), state.qfi[part].copy()
    if byz.any():
        c = ctx.adversary.claims(StampClaims(fidelity=claim_fid[byz], qfi=claim_qfi[byz]))
        claim_fid[byz], claim_qfi[byz] = c.fidelity, c.qfi
    shots = cfg.training.shots or 1
    if cfg.consensus.stamp == "mse":
        # an inflating adversary also claims that its own gradient carries no error at all
        own_error[byz & (claim_fid > ledger_fid)] = 0.0
        phi = predicted_phi(ctx, updates, own_error, werner_from_fidelity(claim_fid))
    else:
        phi = stamp_weight(shots, claim_qfi, werner_from_fidelity(claim_fid))
    stamps = tuple(
        FidelityStamp(
            node=int(k),
            round=t,
            phi=float(phi[i]),
            qfi=float(claim_qfi[i]),
            fidelity=float(claim_fid[i]),
            shots=int(shots),
            nonce=int(state.macs[int(k)].next_seq).to_bytes(8, "big"),
        )
        for i, k in enumerate(part)
    )
    return Replies(
        batches=batches,
        byzantine=byz,
        losses=losses,
        updates=updates,
        stamps=stamps,
        ledger_fidelity=ledger_fid,
    )


def split_updates(
    ctx: BrokerContext, plan: RoundPlan, theta: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A split circuit's round (:mod:`ceas.broker.split`): per participant its replica's minibatch (the lead's), loss
    and whole gradient, and its own block's predicted squared error (zero outside the block); shapes (m, B), (m,),
    (m, P), (m, P)."""
    learner, reps, cfg = ctx.learner, ctx.replicas, ctx.cfg
    part = plan.participants
    if not plan.replicas.size:
        empty = np.zeros((0, ctx.n_params))
        return np.zeros((0, cfg.training.batch_size), int), np.zeros(0), empty, empty
    members = reps.members[plan.replicas]  # (R, K)
    lead_batches = learner.minibatches(members[:, 0], rng)  # (R, B)
    thetas = np.broadcast_to(theta, (members.shape[0], theta.size)).copy()
    calibrated = PlacementNoise(
        depolarizing=learner.depolarizing[members], readout_error=learner.readout_error[members]
    )
    noise, byz = calibrated, ctx.is_byzantine[members]
    if byz.any():  # a Byzantine QPU may scramble the state it holds and forwards (surface "state")
        depolarizing = learner.depolarizing[members]
        depolarizing[byz] = ctx.adversary.depolarise(depolarizing[byz])
        noise = PlacementNoise(depolarizing=depolarizing, readout_error=calibrated.readout_error)
    result = split_gradients(
        ctx.scheme,
        learner.model,
        thetas,
        learner.data.x_train[lead_batches],
        learner.y_train[lead_batches],
        plan.circuit.werner,
        noise,
        cfg.training.shots,
        rng,
        mitigate=learner.mitigate,
        calibration=calibrated,
    )
    row = np.searchsorted(plan.replicas, reps.replica(part))  # participant -> running replica
    own_error = np.where(reps.mask(part), result.variance[row], 0.0)
    return lead_batches[row], result.loss[row], result.grad[row], own_error


MIN_MSE = 1e-12
"""Floor of a predicted mean-squared error (an exact, noiseless, classical reply would predict 0, i.e. φ = ∞)."""


def predicted_phi(
    ctx: BrokerContext, updates: np.ndarray, own_error: np.ndarray, visibility: np.ndarray
) -> np.ndarray:
    """φ = 1 / predicted MSE per component of each update as delivered, shape (m,).

    ``own_error`` (m, P) is the sender's predicted squared error of its gradient (shot variance + squared noise
    bias); a quantum payload adds :func:`ceas.broker.payload.payload_variance` at the claimed ``visibility`` (m,).
    A payload at visibility 0 carries nothing: φ = 0.
    """
    total = own_error.copy()
    if ctx.copies:
        w = np.asarray(visibility, float)
        ok = w > 0
        total[~ok] = np.inf
        if ok.any():
            cfg = ctx.cfg.broker
            total[ok] += payload_variance(
                updates[ok], w[ok, None], ctx.copies, cfg.clip, scale=cfg.payload_scale
            )
    mse = total.mean(axis=1) if total.size else np.zeros(updates.shape[0])
    with np.errstate(divide="ignore"):
        return np.where(np.isfinite(mse), 1.0 / np.maximum(mse, MIN_MSE), 0.0)
