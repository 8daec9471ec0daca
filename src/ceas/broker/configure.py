"""Round phase 1, configure: the policy's decision, executed by the network, as a frozen :class:`RoundPlan`.

1. The learning layer states its demand: per node, payload pairs P·S_p, verification pairs k and the key bits its
   tagged reply will cost (Byzantine nodes may inflate their demand: pair hoarding).
2. The scheduling policy (Definition 3) sees the inventory and the nodes (trust, last verified φ) and decides:
   participants, which stored pairs serve which purpose, fresh pairs per link and purpose, generation on/off,
   purification, pairs converted to key before they expire.
3. The network executes it: stored pairs chosen by the policy are purified or consumed at the start of the round;
   the round's τ seconds are then simulated in one network step in which each link serves its fresh requests in
   priority order (key, payload, verification), every pair the moment it is heralded. A link generates all round
   where the decision says so, elsewhere only until its requests are served.

The policy decides per channel (:mod:`ceas.broker.channels`): node k's end-to-end connection to the broker, one link
in the star (channel k is link k), a swapped path of links in other topologies. Row k of every view and decision is
channel k; pairs, supply and key pools are per channel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ceas.broker.channels import serve
from ceas.broker.circuit_pairs import CircuitSupply, supply_circuit_pairs
from ceas.broker.replicas import expand_decision
from ceas.broker.setup import TAG_BITS, BrokerContext, BrokerState
from ceas.network.qkd import bbm92
from ceas.scheduling.views import PURPOSES, Decision, InventoryView, NodeView


@dataclass(frozen=True)
class SwapCounts:
    """End-to-end pairs of multi-hop channels in one round (all zero in the star; see :mod:`ceas.broker.channels`).

    Attributes
    ----------
    swapped : int
        End-to-end pairs made.
    cutoff_failures, swap_failures : int
        Lost because a hop pair waited past its cutoff, or because a Bell measurement failed.
    unmatched : int
        Hop pairs consumed without partners on the other hops.
    """

    swapped: int = 0
    cutoff_failures: int = 0
    swap_failures: int = 0
    unmatched: int = 0


@dataclass(frozen=True, eq=False)
class PairSupply:
    """What the network delivered in one round.

    Attributes
    ----------
    payload, verification : tuple of C arrays
        Werner parameters at use of the end-to-end pairs each channel delivered for the purpose, in delivery order.
    arrival_s : (C,) float
        Seconds after the round's start at which each channel's last payload pair was ready (0 if none).
    generated, expired, evicted : int
        Link pairs generated, expired (cutoff) and evicted (memory full) during the round, all links.
    key_pairs, key_bits : int
        Link pairs measured for key (an end-to-end pair counts its hops) and the secret bits they yielded (deposited
        in the channels' key pools).
    swap : SwapCounts
        Multi-hop channels' swaps.
    agreement : mapping channel -> (bell (n, 4), time_s (n,))
        Key pairs set aside for agreement keys (only with ``consensus.trusted_broker = false``): not measured into
        the channel's pool but swapped at the broker node with another participant's (:mod:`ceas.broker.agree`);
        counted in ``key_pairs``.
    """

    payload: tuple[np.ndarray, ...]
    verification: tuple[np.ndarray, ...]
    arrival_s: np.ndarray
    generated: int
    expired: int
    evicted: int
    key_pairs: int
    key_bits: int
    swap: SwapCounts = SwapCounts()
    agreement: Mapping[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class RoundPlan:
    """The configured round: who takes part and which pairs their payloads travel on.

    Attributes
    ----------
    round : int
    decision : Decision
        The policy's action, as executed.
    participants : (m,) int
        The participant set, sorted.
    supply : PairSupply
    payload_werner : tuple of m arrays
        Werner parameters of the payload pairs each participant's link delivered.
    visibility : (m,) float
        Mean Werner parameter of each participant's payload pairs (0 if none; 1 with classical payloads): the
        ledger visibility the broker rescales a payload by.
    complete : (m,) bool
        Whether each participant's payload pairs cover its whole payload (always true for classical payloads).
    circuit : CircuitSupply or None
        With a split-circuit scheme: the QPU-QPU pairs of the running replicas (:mod:`ceas.broker.circuit_pairs`),
        in the order of :attr:`replicas`; None for the data-level scheme.
    replicas : (R,) int
        The running replicas, sorted (empty for the data-level scheme).
    """

    round: int
    decision: Decision
    participants: np.ndarray
    supply: PairSupply
    payload_werner: tuple[np.ndarray, ...]
    visibility: np.ndarray
    complete: np.ndarray
    circuit: CircuitSupply | None = None
    replicas: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def m(self) -> int:
        return int(self.participants.size)


def configure(
    ctx: BrokerContext, state: BrokerState, t: int, rng: np.random.Generator
) -> RoundPlan:
    """Phase 1 of round ``t``: views, the policy's decision, the network's execution of it (module docstring)."""
    inventory, nodes = views(ctx, state, t)
    decision = ctx.policy(inventory, nodes, rng)
    if ctx.replicas is not None:
        decision = expand_decision(decision, ctx.replicas)
    aside = None
    if not ctx.cfg.consensus.trusted_broker:
        decision, aside = _with_agreement_key(ctx, state, decision)
    supply = execute(ctx, state, decision, ctx.cfg.scheduling.round_s, rng, aside=aside)
    participants = np.sort(decision.participants)
    werner = tuple(supply.payload[k] for k in participants)
    if ctx.copies:
        complete = np.array([w.size >= ctx.payload_pairs for w in werner], bool)
        visibility = np.array([w.mean() if w.size else 0.0 for w in werner])
    else:
        complete, visibility = np.ones(participants.size, bool), np.ones(participants.size)
    circuit, running = None, np.zeros(0, np.int64)
    if ctx.replicas is not None:
        running = np.unique(ctx.replicas.replica(participants))
        circuit = supply_circuit_pairs(
            ctx.scheme, ctx.channels, ctx.replicas.members[running], ctx.replicas.runs, rng
        )
    return RoundPlan(
        round=t,
        decision=decision,
        participants=participants,
        supply=supply,
        payload_werner=werner,
        visibility=visibility,
        complete=complete,
        circuit=circuit,
        replicas=running,
    )


def _with_agreement_key(
    ctx: BrokerContext, state: BrokerState, decision: Decision
) -> tuple[Decision, np.ndarray]:
    """The decision with the agreement's fresh key pairs added to its participants' channels, and those counts (C,)
    (:func:`ceas.broker.agree.agreement_key_demand`; served with the policy's key requests, before payloads)."""
    from ceas.broker.agree import agreement_key_demand

    extra = agreement_key_demand(ctx, state, np.sort(decision.participants))
    if not extra.any():
        return decision, extra
    requests = decision.requests.copy()
    requests[: extra.size, PURPOSES.index("key")] += extra
    return dataclasses.replace(decision, requests=requests), extra


def views(ctx: BrokerContext, state: BrokerState, t: int) -> tuple[InventoryView, NodeView]:
    """What the policy sees in round ``t``: the inventory (Definition 2) per channel and the nodes' state and demand.

    Row k is channel k (node k's connection to the broker) with its effective physics; stored pairs are shown for
    single-hop channels only (a multi-hop channel swaps at herald, so it holds no end-to-end pairs).
    """
    cfg, net, ch = ctx.cfg, state.network, ctx.channels
    n = cfg.training.nodes
    v = net.view()
    occ = v.occupied
    channel = ch.link_channel[np.nonzero(occ)[0]]
    shown = channel >= 0
    inventory = InventoryView(
        link_node=np.arange(ch.n, dtype=np.int64),
        f0=ch.f0,
        t_coh_s=ch.t_coh_s,
        cutoff_s=ch.cutoff_s,
        rate_hz=ch.rate_hz,
        slots=np.full(ch.n, net.capacity),
        key_bits=np.array([pool.available_bits for pool in state.key_pools], float),
        pair_id=v.pair_id[occ][shown],
        pair_link=channel[shown],
        pair_age_s=v.age_s[occ][shown],
        pair_fidelity=np.clip(v.fidelity[occ][shown], 0.25, 1.0),
        time_s=net.now,
    )
    payload = np.full(n, ctx.payload_pairs, dtype=np.int64)
    payload[ctx.byzantine] = ctx.adversary.demand(payload[ctx.byzantine])
    nodes = NodeView(
        ready=np.ones(n, bool) if ctx.replicas is None else ctx.replicas.leads(),
        trust=np.clip(state.trust.snapshot(t).scores, 0.0, 1.0),
        phi=state.phi,
        phi_visibility=np.clip(state.phi_visibility, 1e-6, 1.0),
        payload_pairs=payload,
        verification_pairs=np.full(n, cfg.security.verification_pairs, dtype=np.int64),
        tag_bits=np.full(n, float(TAG_BITS)),
        round=t,
        work_s=None if ctx.replicas is None else ctx.replicas.work_s,
        **_agreement_seating(ctx, state),
    )
    return inventory, nodes


def _agreement_seating(ctx: BrokerContext, state: BrokerState) -> dict:
    """Without a trusted broker the participants agree among themselves, paying every message from their pairwise
    key pools: the policy sees what each pair's pool pays and seats only pairs that can pay one attempt
    (:func:`ceas.scheduling.policies._common.seat`). Nothing with a trusted broker."""
    if ctx.cfg.consensus.trusted_broker:
        return {}
    from ceas.broker.agree import min_seats, pair_tags, seat_tags

    return {"pair_tags": pair_tags(ctx, state), "seat_tags": seat_tags(), "min_seats": min_seats(ctx)}


def execute(
    ctx: BrokerContext,
    state: BrokerState,
    decision: Decision,
    round_s: float,
    rng: np.random.Generator,
    aside: np.ndarray | None = None,
) -> PairSupply:
    """Run the network for one round of ``round_s`` seconds under ``decision``; draws key sifting (and, on
    multi-hop channels, swap outcomes) from ``rng``. ``aside`` (C,): of each channel's fresh key pairs, those
    beyond the rest of its request (up to ``aside[c]``) are set aside for agreement keys, not measured."""
    net, ch = state.network, ctx.channels
    got: dict[str, list[list[np.ndarray]]] = {
        p: [[] for _ in range(ch.n)] for p in ("payload", "verification")
    }
    key_pairs = key_bits = 0
    _purify(state, decision, rng)
    # stored pairs chosen by the policy (on single-hop channels' links), used at the start of the round
    for purpose in ("payload", "verification"):
        for link, ids in _by_link(state, getattr(decision, purpose)):
            delivery = net.consume(link, ids, purpose=purpose)
            got[purpose][ch.link_channel[link]].append(delivery.werner)
    for stored in (decision.key, decision.convert):
        for link, ids in _by_link(state, stored):
            y = net.distill_key(link, ids, rng=rng)  # into the link's pool: its channel's pool
            key_bits += y.secret_bits
            key_pairs += int(y.pairs)
    # The round's tau seconds in one network step (channels.serve). Each link serves its fresh requests in priority
    # order -- key, payload, verification -- with stored pairs first and then every pair the moment it is heralded
    # (a verification test or a BBM92 measurement needs no storage either), so no requested pair waits in memory
    # (on a multi-hop channel it waits only for its partners on the other hops). Key goes first: a reply whose tag
    # cannot be paid is never sent, which wastes its payload pairs, while key bits distilled for a reply that then
    # misses the round stay in the pool for the next one.
    start = net.now
    stream = serve(net, ch, decision.requests, decision.generate, round_s, rng)
    payload, verification = stream.delivered["payload"], stream.delivered["verification"]
    arrival = np.zeros(ch.n)
    for c in range(ch.n):
        if payload.time_s[c].size:
            arrival[c] = np.max(payload.time_s[c] - start)
        for purpose, d in (("payload", payload), ("verification", verification)):
            if d.time_s[c].size:
                got[purpose][c].append(d.werner(c))
    key = stream.delivered["key"]
    agreement: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for c in range(ch.n):
        if aside is not None and aside[c] and key.time_s[c].size:
            own = max(int(decision.requests[c, PURPOSES.index("key")] - aside[c]), 0)
            if key.time_s[c].size > own:
                agreement[c] = (key.bell[c][own:], key.time_s[c][own:])
                key_pairs += int(key.time_s[c].size - own) * int(ch.n_hops[c])
            if own == 0:
                continue
            y = bbm92(key.bell[c][:own], rng)
            state.key_pools[c].deposit(y.secret_bits)
            key_bits += y.secret_bits
            key_pairs += int(y.pairs) * int(ch.n_hops[c])
        elif key.time_s[c].size:
            y = bbm92(key.bell[c], rng)
            state.key_pools[c].deposit(y.secret_bits)
            key_bits += y.secret_bits
            key_pairs += int(y.pairs) * int(ch.n_hops[c])
    return PairSupply(
        payload=tuple(np.concatenate(x) if x else np.zeros(0) for x in got["payload"]),
        verification=tuple(np.concatenate(x) if x else np.zeros(0) for x in got["verification"]),
        arrival_s=arrival,
        generated=stream.generated,
        expired=stream.expired,
        evicted=stream.evicted,
        key_pairs=key_pairs,
        key_bits=int(key_bits),
        swap=SwapCounts(
            swapped=stream.swapped,
            cutoff_failures=stream.cutoff_failures,
            swap_failures=stream.swap_failures,
            unmatched=stream.unmatched,
        ),
        agreement=agreement,
    )


def _by_link(state: BrokerState, ids: np.ndarray):
    """Yield (link, ids on that link) for stored pair ``ids``, links in increasing order."""
    if ids.size == 0:
        return
    v = state.network.view()
    lookup = dict(zip(v.pair_id[v.occupied].tolist(), np.nonzero(v.occupied)[0].tolist()))
    links = np.array([lookup[int(i)] for i in ids], dtype=np.int64)
    for link in np.unique(links):
        yield int(link), ids[links == link]


def _purify(state: BrokerState, decision: Decision, rng: np.random.Generator) -> None:
    """One BBPSSW round on each (kept, sacrificed) pair of stored pairs the decision names."""
    for kept, sacrificed in decision.purify:
        ((link, _),) = _by_link(state, np.array([kept]))
        state.network.purify(link, method="bbpssw", pair_ids=(kept, sacrificed), rng=rng)
