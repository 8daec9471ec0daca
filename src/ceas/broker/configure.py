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

Links are the end-to-end channels between each node and the broker: link k serves node k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas.broker.setup import TAG_BITS, BrokerContext, BrokerState
from ceas.network.network import StreamDemand
from ceas.network.qkd import bbm92
from ceas.scheduling.views import PURPOSES, Decision, InventoryView, NodeView

PRIORITY = ("key", "payload", "verification")
"""Order in which a link serves fresh requests (see :func:`execute`)."""


@dataclass(frozen=True, eq=False)
class PairSupply:
    """What the network delivered in one round.

    Attributes
    ----------
    payload, verification : tuple of L arrays
        Werner parameters at use of the pairs each link delivered for the purpose, in delivery order.
    arrival_s : (L,) float
        Seconds after the round's start at which each link's last payload pair was heralded (0 if none).
    generated, expired, evicted : int
        Pairs generated, expired (cutoff) and evicted (memory full) during the round, all links.
    key_pairs, key_bits : int
        Pairs measured for key and the secret bits they yielded (deposited in the links' key pools).
    """

    payload: tuple[np.ndarray, ...]
    verification: tuple[np.ndarray, ...]
    arrival_s: np.ndarray
    generated: int
    expired: int
    evicted: int
    key_pairs: int
    key_bits: int


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
    """

    round: int
    decision: Decision
    participants: np.ndarray
    supply: PairSupply
    payload_werner: tuple[np.ndarray, ...]
    visibility: np.ndarray
    complete: np.ndarray

    @property
    def m(self) -> int:
        return int(self.participants.size)


def configure(
    ctx: BrokerContext, state: BrokerState, t: int, rng: np.random.Generator
) -> RoundPlan:
    """Phase 1 of round ``t``: views, the policy's decision, the network's execution of it (module docstring)."""
    inventory, nodes = views(ctx, state, t)
    decision = ctx.policy(inventory, nodes, rng)
    supply = execute(state, decision, ctx.cfg.scheduling.round_s, rng)
    participants = np.sort(decision.participants)
    werner = tuple(supply.payload[k] for k in participants)
    if ctx.copies:
        complete = np.array([w.size >= ctx.payload_pairs for w in werner], bool)
        visibility = np.array([w.mean() if w.size else 0.0 for w in werner])
    else:
        complete, visibility = np.ones(participants.size, bool), np.ones(participants.size)
    return RoundPlan(
        round=t,
        decision=decision,
        participants=participants,
        supply=supply,
        payload_werner=werner,
        visibility=visibility,
        complete=complete,
    )


def views(ctx: BrokerContext, state: BrokerState, t: int) -> tuple[InventoryView, NodeView]:
    """What the policy sees in round ``t``: the inventory (Definition 2) and the nodes' state and demand."""
    cfg, net = ctx.cfg, state.network
    n = cfg.training.nodes
    v = net.view()
    occ = v.occupied
    table = net.table
    inventory = InventoryView(
        link_node=np.array([min(a, b) for a, b in table.edges], dtype=np.int64),
        f0=table.f0,
        t_coh_s=table.t_coh_s,
        cutoff_s=table.cutoff_s,
        rate_hz=table.rate_hz,
        slots=np.full(net.n_links, net.capacity),
        key_bits=np.array([pool.available_bits for pool in net.key_pools], float),
        pair_id=v.pair_id[occ],
        pair_link=np.nonzero(occ)[0],
        pair_age_s=v.age_s[occ],
        pair_fidelity=np.clip(v.fidelity[occ], 0.25, 1.0),
        time_s=net.now,
    )
    payload = np.full(n, ctx.payload_pairs, dtype=np.int64)
    payload[ctx.byzantine] = ctx.adversary.demand(payload[ctx.byzantine])
    nodes = NodeView(
        ready=np.ones(n, bool),
        trust=np.clip(state.trust.snapshot(t).scores, 0.0, 1.0),
        phi=state.phi,
        phi_visibility=np.clip(state.phi_visibility, 1e-6, 1.0),
        payload_pairs=payload,
        verification_pairs=np.full(n, cfg.security.verification_pairs, dtype=np.int64),
        tag_bits=np.full(n, float(TAG_BITS)),
        round=t,
    )
    return inventory, nodes


def execute(
    state: BrokerState, decision: Decision, round_s: float, rng: np.random.Generator
) -> PairSupply:
    """Run the network for one round of ``round_s`` seconds under ``decision``; draws key sifting from ``rng``."""
    net = state.network
    L = net.n_links
    got: dict[str, list[list[np.ndarray]]] = {
        p: [[] for _ in range(L)] for p in ("payload", "verification")
    }
    key_pairs = key_bits = 0
    _purify(state, decision, rng)
    # stored pairs chosen by the policy, used at the start of the round
    for purpose in ("payload", "verification"):
        for link, ids in _by_link(state, getattr(decision, purpose)):
            got[purpose][link].append(net.consume(link, ids, purpose=purpose).werner)
    for stored in (decision.key, decision.convert):
        for link, ids in _by_link(state, stored):
            y = net.distill_key(link, ids, rng=rng)
            key_bits += y.secret_bits
            key_pairs += int(y.pairs)
    # The round's tau seconds in one network step. Each link serves its fresh requests in priority order --
    # key, payload, verification -- with stored pairs first and then every pair the moment it is heralded (a
    # verification test or a BBM92 measurement needs no storage either), so no requested pair waits in memory.
    # Key goes first: a reply whose tag cannot be paid is never sent, which wastes its payload pairs, while key
    # bits distilled for a reply that then misses the round stay in the pool for the next one.
    # A link generates for the whole round where the decision says so; elsewhere only until its requests are
    # served (a link stops attempting at its last needed herald).
    need = decision.requests
    on = decision.generate | (need.sum(axis=1) > 0)
    if on.any():
        net.set_generation(on, True)
    if (~on).any():
        net.set_generation(~on, False)
    start = net.now
    rep = net.advance(
        round_s,
        [StreamDemand(pairs=need[:, PURPOSES.index(p)].copy(), purpose=p) for p in PRIORITY],
        stop_when_served=~decision.generate,
    )
    key, payload, verification = rep.deliveries
    for purpose, d in (("payload", payload), ("verification", verification)):
        for link in np.unique(d.link):
            got[purpose][link].append(d.werner[d.link == link])
    arrival = np.zeros(L)
    if payload.n:
        np.maximum.at(arrival, payload.link, payload.time_s - start)
    for link in np.unique(key.link):
        y = bbm92(key.bell[key.link == link], rng)
        net.key_pool(int(link)).deposit(y.secret_bits)
        key_bits += y.secret_bits
        key_pairs += int(y.pairs)
    return PairSupply(
        payload=tuple(np.concatenate(x) if x else np.zeros(0) for x in got["payload"]),
        verification=tuple(np.concatenate(x) if x else np.zeros(0) for x in got["verification"]),
        arrival_s=arrival,
        generated=int(rep.generated.sum()),
        expired=int(rep.expired.sum()),
        evicted=int(rep.evicted.sum()),
        key_pairs=key_pairs,
        key_bits=int(key_bits),
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
