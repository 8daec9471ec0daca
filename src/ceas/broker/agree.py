r"""Round phase 4b, agree (``consensus.trusted_broker = false``): the participants agree on θ^(t+1)'s digest.

Without a trusted broker nobody applies a step on the broker's word. Every participant holds the round's reply set
(the accepted replies, as the aggregate phase reads them) and computes the robust aggregate and the optimiser step
itself; the computation is deterministic, so every honest participant gets the same θ^(t+1) -- computed here once,
from the same accepted replies the trusted broker would use. The round's leader (participant ``(t + attempt) mod m``
in id order) proposes its digest and the m participants run detectable Byzantine agreement on it
(:class:`ceas.consensus.agreement.DigestAgreement`, Bracha echo/ready broadcast, tolerating f = ⌊(m − 1)/3⌋). An
honest node echoes only the digest of the model it computed itself, so a Byzantine leader can get nothing else
delivered; a failed attempt (detected by every honest node) is retried with the next leader, at most
``consensus.agreement_attempts`` times. θ^(t+1) is applied -- with the optimiser's state -- only when every honest
participant delivered the digest of the model it computed; otherwise the round is recorded as not agreed
(``agreed = 0``) and θ stays.

**Pairwise links.** Agreement messages travel between participants over pairwise links made by entanglement
swapping at the broker node: a key pair of channel i and one of channel j joined by a Bell measurement there
(success ``network.swap_success``), the earlier one decayed in memory until the later one is heralded, then measured
by BBM92 into the pair's own key pool. Each message carries a one-time Wegman–Carter tag (128 key bits) from that
pool (:class:`ceas.security.pairwise.PairwiseAuthenticator`); a message to oneself needs none. A pool is created
with the pre-shared seed key (``security.seed_key_bits``, as every link's), and a dry pool means the message is not
sent (counted in ``agreement_key_dry``), never sent unauthenticated.

**Seating.** The scheduler budgets the key: it sees what every pair's pool pays (:func:`pair_tags`) and seats a
participant only if its pools with those already seated pay one attempt (:func:`seat_tags`), and holds no round it
cannot seat :func:`min_seats` nodes for (:func:`ceas.scheduling.policies._common.seat`). So a round never fails for
want of key in its first attempt; when the pools run short, rounds get smaller or are skipped instead.

**Budget.** Before the policy's decision is executed, each participant pair's pool is topped up towards the tags of
every attempt the round may make (:func:`topup_bits`: ``consensus.agreement_attempts`` ×
:data:`TAGS_PER_PAIR_ATTEMPT` × 128 bits; key-aware seating already guarantees the first attempt's, so this buys key
for retries): its deficit in swapped pairs at the fresh pairs' key yield
becomes fresh key requests on both channels, at most ``consensus.agreement_key_pairs`` per channel
(:func:`agreement_key_demand`), served with the channel's key -- before payloads, so the bound is what agreement may
take from training. Those pairs count in the round's ``key_pairs`` and pairs generated, the bits they yield and the
tags spent in the run's key totals, so utilisation accounts for them.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ceas.broker.setup import TAG_BITS, BrokerContext, BrokerState
from ceas.consensus.agreement import DigestAgreement, make_behaviour, model_digest
from ceas.network.keys import KeyPool
from ceas.network.qkd import bbm92
from ceas.network.swapping import swap_bell
from ceas.network.werner import (
    bbm92_key_fraction,
    bell_decay,
    fidelity_from_werner,
    werner_from_fidelity,
)
from ceas.rng import stream
from ceas.security.mac import KeyExhaustedError, messages_affordable
from ceas.security.pairwise import PairwiseAuthenticator

log = logging.getLogger(__name__)

TAGS_PER_PAIR_ATTEMPT = 5
"""Tags one attempt costs a pair of participants: an echo and a ready each way, and the leader's proposal."""

_SELF_TAG = b"self"


@dataclass
class PairKeys:
    """Key pools of the pairwise links between QPUs, keyed by (a, b) with a < b, created on first use with the
    pre-shared seed key (picklable: it is part of the checkpoint)."""

    seed: int
    seed_bits: int
    pools: dict[tuple[int, int], KeyPool] = field(default_factory=dict)

    def __call__(self, a: int, b: int) -> KeyPool:
        key = (min(a, b), max(a, b))
        pool = self.pools.get(key)
        if pool is None:
            pool = KeyPool(stream(self.seed, "pair-key", *key), self.seed_bits)
            self.pools[key] = pool
        return pool


@dataclass
class AgreementState:
    """What agreement keeps across rounds: the pairwise key pools and their MACs."""

    keys: PairKeys
    auth: PairwiseAuthenticator


@dataclass(frozen=True, eq=False)
class Agreed:
    """The outcome of the agree phase.

    Attributes
    ----------
    theta : (P,) float
        The parameters every honest node holds after the round (θ^(t+1) if agreed, else θ^(t)).
    honest_theta : (P,) float or None
        What the trusted broker would have applied from the same accepted replies (None: no update).
    agreed_digest : bytes or None
        The digest every honest participant delivered (None: none, or not all the same).
    delivered : dict participant id -> bytes or None
        Each honest participant's delivered digest in the last attempt.
    metrics : dict
        The round's agreement columns.
    """

    theta: np.ndarray
    honest_theta: np.ndarray | None
    agreed_digest: bytes | None
    delivered: dict[int, bytes | None]
    metrics: dict[str, Any]


def agreement_state(ctx: BrokerContext, state: BrokerState) -> AgreementState:
    """The run's agreement state, created on first use."""
    if state.agreement is None:
        keys = PairKeys(ctx.cfg.run.seed, ctx.cfg.security.seed_key_bits)
        auth = PairwiseAuthenticator(keys, refresh_messages=ctx.cfg.security.mac_refresh_messages)
        state.agreement = AgreementState(keys=keys, auth=auth)
    return state.agreement


def seat_tags() -> int:
    """Tags each pair of seated participants must hold: one agreement attempt's (:data:`TAGS_PER_PAIR_ATTEMPT`)."""
    return TAGS_PER_PAIR_ATTEMPT


def min_seats(ctx: BrokerContext) -> int:
    """Fewest participants a round is held with: 4 = 3f + 1 for f = 1 when Byzantine nodes are expected
    (``security.byzantine_fraction > 0``; a round of 3 or fewer tolerates none), else 1."""
    return 4 if ctx.cfg.security.byzantine_fraction > 0 else 1


def pair_tags(ctx: BrokerContext, state: BrokerState) -> np.ndarray:
    """(N, N) int: the agreement messages each pair of nodes' pairwise pool pays for now (what the scheduler seats
    by; the diagonal is 0). Pairs never used hold the seed key; a pair's first message also draws its hash key."""
    ag = agreement_state(ctx, state)
    n = ctx.cfg.training.nodes
    refresh = ctx.cfg.security.mac_refresh_messages
    fresh = messages_affordable(ctx.cfg.security.seed_key_bits, refresh_messages=refresh)
    tags = np.full((n, n), fresh, np.int64)
    for a, b in ag.keys.pools:
        tags[a, b] = tags[b, a] = ag.auth.mac(a, b).messages_affordable()
    np.fill_diagonal(tags, 0)
    return tags


def topup_bits(ctx: BrokerContext) -> int:
    """Key bits each seated pair's pool is topped up towards: every attempt the round may make
    (``consensus.agreement_attempts``) at one attempt's tags each. Seating already guarantees the first attempt's
    (:func:`seat_tags`), so what swapping adds is key for the retries after a failed attempt."""
    return _attempts(ctx) * TAGS_PER_PAIR_ATTEMPT * TAG_BITS


def pair_key_yield(ctx: BrokerContext, a: int, b: int) -> float:
    """Expected secret bits per pair swapped at the broker node from fresh pairs of channels a and b."""
    f0 = ctx.channels.f0
    w = werner_from_fidelity(f0[a]) * werner_from_fidelity(f0[b]) * ctx.cfg.network.swap_success
    return float(bbm92_key_fraction(fidelity_from_werner(w)))


def agreement_key_demand(
    ctx: BrokerContext, state: BrokerState, participants: np.ndarray
) -> np.ndarray:
    """Fresh key pairs per channel (C,) for the participants' pairwise agreement keys (module docstring)."""
    ag = agreement_state(ctx, state)
    target = topup_bits(ctx)
    demand = np.zeros(ctx.channels.n, np.int64)
    for x, a in enumerate(participants):
        for b in participants[x + 1 :]:
            deficit = target - ag.keys(int(a), int(b)).available_bits
            y = pair_key_yield(ctx, int(a), int(b))
            if deficit > 0 and y > 0:
                n = int(np.ceil(deficit / y))
                demand[a] += n
                demand[b] += n
    return np.minimum(demand, ctx.cfg.consensus.agreement_key_pairs)


def swap_for_keys(
    ctx: BrokerContext, ag: AgreementState, plan, rng: np.random.Generator
) -> dict[str, int]:
    """Swap the set-aside key pairs of participant channels pairwise at the broker node and distil their key.

    Pairs go to the participant pairs with the lowest pools first; a pair of one channel left without a partner
    is wasted (``agreement_unmatched``). Returns the counts for the metrics row.
    """
    aside = {c: [b, t, 0] for c, (b, t) in plan.supply.agreement.items()}
    out = {"agreement_swapped": 0, "agreement_key_bits_in": 0, "agreement_unmatched": 0}
    if not aside:
        return out
    part = [int(k) for k in plan.participants]
    pairs = sorted(
        ((a, b) for i, a in enumerate(part) for b in part[i + 1 :]),
        key=lambda p: (ag.keys(*p).available_bits, p),
    )
    target = topup_bits(ctx)
    ch, p_s = ctx.channels, ctx.cfg.network.swap_success
    for a, b in pairs:
        if a not in aside or b not in aside:
            continue
        y = pair_key_yield(ctx, a, b)
        want = target - ag.keys(a, b).available_bits
        if want <= 0 or y <= 0:
            continue
        ba, ta, ia = aside[a]
        bb, tb, ib = aside[b]
        k = min(int(np.ceil(want / y)), ta.size - ia, tb.size - ib)
        if k <= 0:
            continue
        xa, xb = ba[ia : ia + k], bb[ib : ib + k]
        sa, sb = ta[ia : ia + k], tb[ib : ib + k]
        t_swap = np.maximum(sa, sb)
        xa = bell_decay(xa, t_swap - sa, ch.t_coh_s[a])
        xb = bell_decay(xb, t_swap - sb, ch.t_coh_s[b])
        joined = swap_bell(xa, xb)
        if p_s < 1.0:
            joined = joined[rng.random(k) < p_s]
        aside[a][2] += k
        aside[b][2] += k
        out["agreement_swapped"] += int(joined.shape[0])
        if joined.shape[0]:
            got = bbm92(joined, rng)
            ag.keys(a, b).deposit(got.secret_bits)
            out["agreement_key_bits_in"] += int(got.secret_bits)
    out["agreement_unmatched"] = int(sum(t.size - i for _, t, i in aside.values()))
    return out


class _Links:
    """sign/verify over the pairwise MACs for one round's agreement (participant ids mapped to node ids)."""

    def __init__(self, auth: PairwiseAuthenticator, nodes: np.ndarray):
        self.auth, self.nodes = auth, [int(k) for k in nodes]
        self.tags = self.dry = 0

    def sign(self, sender: int, receiver: int, body: bytes) -> bytes:
        if sender == receiver:
            return _SELF_TAG
        try:
            tag = self.auth.sign(self.nodes[sender], self.nodes[receiver], body)
        except KeyExhaustedError:
            self.dry += 1
            return b""  # not sent: the receiver never gets an authentic message
        self.tags += 1
        return tag

    def verify(self, sender: int, receiver: int, body: bytes, tag: bytes) -> bool:
        if sender == receiver:
            return tag == _SELF_TAG
        if not 0 <= sender < len(self.nodes) or not 0 <= receiver < len(self.nodes):
            return False
        return self.auth.verify(self.nodes[sender], self.nodes[receiver], body, tag)


def agree(
    ctx: BrokerContext,
    state: BrokerState,
    plan,
    replies,
    agg,
    theta: np.ndarray,
    optimizer,
) -> Agreed:
    """Phase 4b of the round (module docstring): refill pairwise keys, agree on θ^(t+1), apply it or record why not.

    ``optimizer`` is advanced only when the round is agreed.
    """
    t, m = plan.round, plan.m
    rng = stream(ctx.cfg.run.seed, "agreement", t)
    ag = agreement_state(ctx, state)
    row: dict[str, Any] = swap_for_keys(ctx, ag, plan, rng)
    part = [int(k) for k in plan.participants]
    row["agreement_seat_short"] = sum(
        ag.auth.mac(a, b).messages_affordable() < seat_tags()
        for i, a in enumerate(part)
        for b in part[i + 1 :]
    )
    f_tol = max((m - 1) // 3, 0)
    byz = np.flatnonzero(replies.byzantine)
    bound_ok = byz.size <= f_tol
    if not bound_ok:
        log.warning(
            "round %d: %d Byzantine of %d agreeing nodes breaks n > 3f (m = %d tolerates f <= %d); "
            "agreement is outside its guarantees",
            t, byz.size, m, m, f_tol,
        )  # fmt: skip
    row.update(
        agreed=0,
        agreement_attempts=0,
        agreement_failed=0,
        agreement_detected=0,
        agreement_evidence=0,
        agreement_consistent=1,
        agreement_bound_ok=int(bound_ok),
        agreement_messages=0,
        agreement_key_bits=0,
        agreement_key_dry=0,
        agreement_rejected=0,
    )
    if agg.update is None or m == 0:
        _totals(state, row)
        return Agreed(theta, None, None, {}, row)
    candidate = copy.deepcopy(optimizer)
    honest_theta = candidate.update(theta, agg.update)
    digest = model_digest(honest_theta)
    links = _Links(ag.auth, plan.participants)
    protocol = DigestAgreement(m, f_tol, links.sign, links.verify, max_attempts=_attempts(ctx))
    attacks = ctx.adversary.on("agreement") if byz.size else ()
    behaviour = None
    if attacks:
        # the adversary pushes the model a step the other way
        behaviour = make_behaviour(attacks[0].behaviour, model_digest(2 * theta - honest_theta))
    result = protocol.agree(
        t,
        digest,
        byzantine=byz if attacks else (),
        behaviour=behaviour,
        validate=lambda node, d: d == digest,
    )
    last = result.attempts[-1]
    delivered = dict(last.delivered)
    consistent = len(set(delivered.values())) <= 1
    ok = result.succeeded and result.digest == digest and consistent
    row.update(
        agreed=int(ok),
        agreement_attempts=len(result.attempts),
        agreement_failed=sum(a.digest is None for a in result.attempts),
        agreement_detected=sum(bool(a.detected) for a in result.attempts),
        agreement_evidence=sum(len(a.leader_evidence) for a in result.attempts),
        agreement_consistent=int(consistent),
        agreement_messages=links.tags,
        agreement_key_bits=TAG_BITS * links.tags,
        agreement_key_dry=links.dry,
        agreement_rejected=sum(sum(a.rejected.values()) for a in result.attempts),
    )
    _totals(state, row)
    if not ok:
        log.warning(
            "round %d: no agreement on the new model after %d attempts; not applied",
            t,
            len(result.attempts),
        )
        return Agreed(theta, honest_theta, None, delivered, row)
    for name, value in vars(candidate).items():
        setattr(optimizer, name, value)
    return Agreed(honest_theta, honest_theta, result.digest, delivered, row)


def _attempts(ctx: BrokerContext) -> int:
    return ctx.cfg.consensus.agreement_attempts


def _totals(state: BrokerState, row: dict[str, Any]) -> None:
    """Agreement's key in the run's key totals (utilisation): bits distilled in, tag bits spent."""
    state.totals["key_bits_in"] += row["agreement_key_bits_in"]
    state.totals["key_bits_out"] += row["agreement_key_bits"]
