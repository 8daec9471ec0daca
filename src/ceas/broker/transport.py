"""Round phase 3, transport: verification tests, authenticated replies, channel injections, quantum payloads.

1. Entanglement verification (SPEC §6, defence 2): the pairs a participant's link delivered as tests are measured;
   the broker's estimate of each tested link's fidelity and its upper confidence bound are updated.
2. Every reply is tagged with a one-time Wegman–Carter MAC paid from its link's key pool (a dry pool means the reply
   is not sent) and verified on arrival; a payload whose pairs did not all arrive within the round is dropped; an
   authentic reply that is not a gradient in the protocol's range (a non-finite component, or one outside [−G, G]) is
   rejected with that reason, never clipped into the aggregate.
3. The channel adversary may inject forged or replayed messages; each is verified like any reply. Without
   authentication (``security.authentication = false``, an ablation) the verifier checks no tag, and an injected
   message that names a node seated this round replaces that node's reply (:func:`take_injected`).
4. Gradients travel as quantum payloads through the pairs delivered (:func:`ceas.broker.payload.deliver`: variance
   ∝ 1/v²); the broker rescales by the ledger visibility of those pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ceas.broker.configure import RoundPlan
from ceas.broker.local import Replies
from ceas.broker.payload import deliver
from ceas.broker.setup import BrokerContext, BrokerState
from ceas.security.attacks import ChannelView
from ceas.security.mac import KeyExhaustedError
from ceas.security.messages import Reason, Signer
from ceas.security.verification import estimate_fidelity, honest_test_errors

INCOMPLETE, KEY_DRY = "payload incomplete", "key pool dry"
NETWORK_MISSES = (INCOMPLETE, KEY_DRY)
"""Reasons for which a reply is lost to the network, not rejected for what it said."""
NON_FINITE, OUT_OF_RANGE = "non-finite update", "update out of range"


def check_update(update: np.ndarray, clip: float) -> str | None:
    """Why ``update`` (shape (P,)) is not a gradient the protocol carries: :data:`NON_FINITE` if a component is NaN
    or infinite, :data:`OUT_OF_RANGE` if one lies outside [−G, G] (G = ``clip``); None if it is one."""
    if not np.all(np.isfinite(update)):
        return NON_FINITE
    if np.any(np.abs(update) > clip):
        return OUT_OF_RANGE
    return None


@dataclass(frozen=True, eq=False)
class Transport:
    """What reached the broker.

    Attributes
    ----------
    received : (m, P) float
        The updates as the broker reads them (payloads measured and rescaled; classical payloads as sent).
    accepted : (m,) bool
        Replies that arrived whole and authenticated.
    reasons : Mapping[int, str]
        Why each other reply (by participant index) was lost or rejected.
    sent : int
        Tagged replies sent (each paid one tag's key bits).
    injected, injected_accepted : int
        Messages the channel adversary injected, and how many of them the verifier accepted.
    injected_used : int
        Injected messages whose payload took a seated participant's place (only without authentication).
    """

    received: np.ndarray
    accepted: np.ndarray
    reasons: Mapping[int, str]
    sent: int
    injected: int
    injected_accepted: int
    injected_used: int = 0


def transport(
    ctx: BrokerContext,
    state: BrokerState,
    plan: RoundPlan,
    replies: Replies,
    rng: np.random.Generator,
    adversary_rng: np.random.Generator,
) -> Transport:
    """Phase 3 of the round (module docstring)."""
    verification_tests(ctx, state, plan, rng)
    accepted, reasons, observed = authenticate(state, plan, replies, ctx.cfg.broker.clip)
    injected = ctx.adversary.inject(
        ChannelView(
            round=plan.round,
            observed=tuple(observed),
            history=tuple(state.history[-200:]),
            honest_nodes=tuple(np.flatnonzero(~ctx.is_byzantine).tolist()),
            byzantine_nodes=tuple(int(b) for b in ctx.byzantine),
        ),
        adversary_rng,
    )
    verdicts = [state.verifier.verify(w, round=plan.round) for w in injected]
    state.history.extend(observed)
    received = receive_payloads(ctx, plan, replies.updates, accepted, rng)
    used = 0
    if not ctx.cfg.security.authentication:
        used = take_injected(ctx, plan, replies, verdicts, accepted, reasons, received)
    return Transport(
        received=received,
        accepted=accepted,
        reasons=reasons,
        sent=len(observed),
        injected=len(injected),
        injected_accepted=sum(v.reason is Reason.ACCEPTED for v in verdicts),
        injected_used=used,
    )


def forged_update(ctx: BrokerContext, replies: Replies) -> np.ndarray:
    """What a forger sends in an honest node's name: the update its gradient attack crafted this round (that of
    the first Byzantine participant) when one is composed and seated, else the sign-flipped honest mean."""
    byz = replies.byzantine
    if ctx.adversary.on("gradient") and byz.any() and (~byz).any():
        return replies.updates[np.flatnonzero(byz)[0]].copy()
    honest = replies.updates[~byz] if (~byz).any() else replies.updates
    return -honest.mean(axis=0)


def take_injected(
    ctx: BrokerContext,
    plan: RoundPlan,
    replies: Replies,
    verdicts: list,
    accepted: np.ndarray,
    reasons: dict[int, str],
    received: np.ndarray,
) -> int:
    """Without authentication: every accepted injection that names a node seated this round replaces that node's
    reply (the broker keeps one reply per seat, the last to arrive; it reads no node it did not seat). Its payload
    is the one this round's replies carried under its digest (an impersonation re-addresses a Byzantine reply), or,
    for a digest no reply carried, :func:`forged_update`. The range check still applies. Updates ``accepted``,
    ``reasons`` and ``received`` in place; returns how many injections took a seat."""
    from ceas.security.messages import payload_digest

    seat = {int(k): i for i, k in enumerate(plan.participants)}
    sent = {payload_digest(replies.updates[i]): i for i in range(plan.m)}
    used = 0
    for verdict in verdicts:
        if verdict.reason is not Reason.ACCEPTED or verdict.envelope is None:
            continue
        i = seat.get(int(verdict.envelope.node))
        if i is None:
            continue
        j = sent.get(verdict.envelope.payload_digest)
        payload = replies.updates[j].copy() if j is not None else forged_update(ctx, replies)
        received[i] = payload
        why = check_update(payload, ctx.cfg.broker.clip)
        accepted[i] = why is None
        if why is None:
            reasons.pop(i, None)
        else:
            reasons[i] = why
        used += 1
    return used


def verification_tests(
    ctx: BrokerContext, state: BrokerState, plan: RoundPlan, rng: np.random.Generator
) -> None:
    """Measure each participant's delivered test pairs; update the broker's fidelity estimates of those links
    (confidence and interval from ``security.verification_confidence`` and ``security.verification_bound``)."""
    tested, errors, sizes = [], [], []
    for k in plan.participants:
        wv = plan.supply.verification[k]
        if wv.size:
            tested.append(k)
            errors.append(honest_test_errors(float(wv.mean()), int(wv.size), rng))
            sizes.append(int(wv.size))
    if tested:  # one vectorised interval computation for every tested link
        est = estimate_fidelity(
            np.array(errors),
            np.array(sizes),
            confidence=ctx.cfg.security.verification_confidence,
            bound=ctx.cfg.security.verification_bound,
        )
        state.fid_estimate[tested] = est.estimate
        state.fid_upper[tested] = est.upper


def authenticate(
    state: BrokerState, plan: RoundPlan, replies: Replies, clip: float
) -> tuple[np.ndarray, dict[int, str], list[bytes]]:
    """Tag, send and verify every complete reply, and check that it carries a gradient in [−``clip``, ``clip``];
    return (accepted (m,), reasons, wire messages sent)."""
    t = plan.round
    accepted = plan.complete.copy()
    reasons: dict[int, str] = {i: INCOMPLETE for i in np.flatnonzero(~plan.complete)}
    observed: list[bytes] = []
    for i, k in enumerate(plan.participants):
        if not plan.complete[i]:
            continue
        mac = state.macs[int(k)]
        try:
            wire = Signer(int(k), mac).sign(t, replies.stamps[i].to_bytes(), replies.updates[i])
        except KeyExhaustedError as err:
            state.verifier.record_unsent(int(k), t, err)
            accepted[i] = False
            reasons[i] = KEY_DRY
            continue
        observed.append(wire)
        verdict = state.verifier.verify(wire, round=t, payload=replies.updates[i])
        why = (
            verdict.reason.value
            if verdict.reason is not Reason.ACCEPTED
            else check_update(replies.updates[i], clip)
        )
        if why is not None:
            accepted[i] = False
            reasons[i] = why
    return accepted, reasons, observed


def receive_payloads(
    ctx: BrokerContext,
    plan: RoundPlan,
    updates: np.ndarray,
    accepted: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """The accepted updates as measured from their quantum payloads, shape (m, P); classical payloads as sent.

    Each accepted payload uses its first P·S_p delivered pairs, copy-major (pair j carries component j mod P), and is
    rescaled by the ledger visibility of all its delivered pairs.
    """
    received = updates.copy()
    ok = np.flatnonzero(accepted)
    if not ctx.copies or ok.size == 0:
        return received
    n_need, p = ctx.payload_pairs, ctx.n_params
    w = np.stack([plan.payload_werner[i][:n_need] for i in ok]).reshape(ok.size, ctx.copies, p)
    received[ok] = deliver(
        updates[ok],
        w,
        np.maximum(plan.visibility[ok], 1e-9),
        clip=ctx.cfg.broker.clip,
        rng=rng,
        scale=ctx.cfg.broker.payload_scale,
    )
    return received
