"""Vectorised building blocks the built-in policies share: per-pair and per-node arrays, ranked selection within
groups, key-deficit distillation and assembling the :class:`~ceas.scheduling.views.Decision`.

No Python loop runs over nodes, links or pairs: every step is a sort, a cumulative sum or a bincount, so a policy
decides for N = 1,000 nodes in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas.network.werner import werner_from_fidelity
from ceas.scheduling._index import group_rank, primary_link
from ceas.scheduling.views import Decision, InventoryView, NodeView


@dataclass(frozen=True)
class Frame:
    """Arrays a policy derives from the views (P pairs, N nodes, L links)."""

    pair_link: np.ndarray  # (P,) link of each pair
    pair_node: np.ndarray  # (P,) node of each pair's link; N for a link serving no listed node
    pair_v2: np.ndarray  # (P,) squared visibility now
    pair_bits: np.ndarray  # (P,) key bits if measured now
    usable: np.ndarray  # (P,) bool: not past its cutoff now, on a link serving a listed node
    expiring: (
        np.ndarray
    )  # (P,) bool: older than its cutoff at the next decision (age + tau > cutoff)
    primary: np.ndarray  # (N,) primary link, -1 if none
    has_link: np.ndarray  # (N,) bool
    v0sq: np.ndarray  # (N,) squared visibility of a fresh pair on the primary link (0 if none)
    rate: np.ndarray  # (N,) heralding rate of the primary link, Hz (0 if none)
    fresh_bits: np.ndarray  # (N,) key bits of a fresh pair on the primary link
    pool: np.ndarray  # (N,) key bits in the primary link's pool
    room: np.ndarray  # (L,) free key-pool capacity, bits


def frame(inventory: InventoryView, nodes: NodeView, round_s: float) -> Frame:
    """Derive the shared arrays; ``round_s`` is the time to the next decision (tau)."""
    n = nodes.n_nodes
    ln = inventory.link_node
    link_node = np.where(ln < n, ln, n)
    primary = primary_link(inventory, n)
    has_link = primary >= 0
    pl = np.where(has_link, primary, 0)

    def per_node(values: np.ndarray) -> np.ndarray:
        return np.where(has_link, values[pl], 0.0) if values.shape[0] else np.zeros(n)

    cut = inventory.cutoff_s[inventory.pair_link]
    return Frame(
        pair_link=inventory.pair_link,
        pair_node=link_node[inventory.pair_link],
        pair_v2=werner_from_fidelity(inventory.pair_fidelity) ** 2,
        pair_bits=inventory.pair_key_bits,
        usable=(inventory.pair_age_s <= cut) & (link_node[inventory.pair_link] < n),
        expiring=inventory.pair_age_s + round_s > cut,
        primary=primary,
        has_link=has_link,
        v0sq=per_node(werner_from_fidelity(inventory.f0) ** 2),
        rate=per_node(inventory.rate_hz),
        fresh_bits=per_node(inventory.fresh_key_bits),
        pool=per_node(inventory.key_bits),
        room=inventory.key_capacity_bits - inventory.key_bits,
    )


def take_ranked(
    groups: np.ndarray, key: np.ndarray, eligible: np.ndarray, quota: np.ndarray
) -> np.ndarray:
    """Boolean mask of the ``quota[g]`` eligible items with the smallest ``key`` in each group g.

    Parameters
    ----------
    groups : (P,) int
        Group of each item, in [0, len(quota)).
    key : (P,) float
        Sort key (ascending = taken first); ties go to the lower index.
    eligible : (P,) bool
        Items that may be taken.
    quota : (G,) int
        Items to take per group.
    """
    chosen = np.zeros(groups.shape[0], dtype=bool)
    idx = np.flatnonzero(eligible)
    if idx.size == 0:
        return chosen
    order, rank = group_rank(groups[idx], key[idx])
    picked = idx[order]
    chosen[picked[rank < quota[groups[picked]]]] = True
    return chosen


def take_until(
    groups: np.ndarray,
    key: np.ndarray,
    amount: np.ndarray,
    eligible: np.ndarray,
    target: np.ndarray,
) -> np.ndarray:
    """Mask of eligible items taken in ``key`` order per group until their ``amount`` sums to ``target[g]``.

    An item is taken while the amount taken before it is still below the target (so the last one may overshoot).
    """
    chosen = np.zeros(groups.shape[0], dtype=bool)
    idx = np.flatnonzero(eligible)
    if idx.size == 0:
        return chosen
    order, rank = group_rank(groups[idx], key[idx])
    picked = idx[order]
    amt = amount[picked]
    cum = np.cumsum(amt)
    start = np.flatnonzero(rank == 0)
    group_base = np.repeat(cum[start] - amt[start], np.diff(np.append(start, picked.shape[0])))
    before = cum - amt - group_base
    chosen[picked[before < target[groups[picked]]]] = True
    return chosen


def distil_for_tags(
    fr: Frame,
    nodes: NodeView,
    participants: np.ndarray,
    free: np.ndarray,
    order_key: np.ndarray,
    extra_bits: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cover each participant's tag deficit on its primary link: stored pairs in ``order_key`` order, then fresh.

    Parameters
    ----------
    participants : (N,) bool
    free : (P,) bool
        Stored pairs not yet assigned.
    order_key : (P,) float
        Which free pairs go first (ascending).
    extra_bits : (N,) float, optional
        Bits the pool gains this round anyway (near-cutoff conversions).

    Returns
    -------
    key_pairs : (P,) bool
        Stored pairs distilled.
    fresh : (N,) int
        Fresh pairs requested for key per node.
    """
    n = nodes.n_nodes
    extra = np.zeros(n) if extra_bits is None else extra_bits
    deficit = np.where(participants, np.maximum(nodes.tag_bits - fr.pool - extra, 0.0), 0.0)
    groups = np.minimum(fr.pair_node, n - 1)
    on_primary = fr.usable & (fr.pair_link == fr.primary[groups])
    eligible = free & on_primary & (fr.pair_bits > 0) & (deficit[groups] > 0)
    key_pairs = take_until(groups, order_key, fr.pair_bits, eligible, deficit)
    got = np.bincount(groups[key_pairs], weights=fr.pair_bits[key_pairs], minlength=n)[:n]
    left = np.maximum(deficit - got, 0.0)
    return key_pairs, fresh_for_bits(left, fr.fresh_bits)


def fresh_for_bits(bits: np.ndarray, fresh_bits: np.ndarray) -> np.ndarray:
    """Fresh pairs needed to distil ``bits`` at ``fresh_bits`` per pair (0 where none are needed or none help)."""
    ok = (bits > 0) & (fresh_bits > 0)
    return np.where(ok, np.ceil(bits / np.where(ok, fresh_bits, 1.0) - 1e-9), 0).astype(np.int64)


def build_decision(
    inventory: InventoryView,
    nodes: NodeView,
    fr: Frame,
    participants: np.ndarray,
    masks: dict[str, np.ndarray],
    fresh: dict[str, np.ndarray],
    generate: np.ndarray,
    background_key: np.ndarray | None = None,
) -> Decision:
    """Assemble a :class:`Decision` from per-pair masks and per-node fresh counts (placed on primary links).

    ``fresh`` counts apply to participants only; ``background_key`` (N,) adds fresh key pairs for non-participants.
    """
    requests = np.zeros((inventory.n_links, 3), dtype=np.int64)
    for col, name in enumerate(("payload", "verification", "key")):
        counts = np.where(participants, fresh.get(name, 0), 0).astype(np.int64)
        if name == "key" and background_key is not None:
            counts = np.where(participants, counts, background_key).astype(np.int64)
        has = (counts > 0) & fr.has_link
        np.add.at(requests[:, col], fr.primary[has], counts[has])
    ids = inventory.pair_id
    return Decision(
        participants=np.flatnonzero(participants),
        payload=ids[masks.get("payload", np.zeros(ids.shape[0], bool))],
        verification=ids[masks.get("verification", np.zeros(ids.shape[0], bool))],
        key=ids[masks.get("key", np.zeros(ids.shape[0], bool))],
        convert=ids[masks.get("convert", np.zeros(ids.shape[0], bool))],
        requests=requests,
        generate=generate,
    )


def serve_in_order(
    fr: Frame, nodes: NodeView, participants: np.ndarray, order_key: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The baselines' service: payload, then verification, then tag key, each from the participant's stored pairs
    in ``order_key`` order (ascending) and fresh pairs for the rest. Pairs on non-participants' links stay put."""
    n = nodes.n_nodes
    groups = np.minimum(fr.pair_node, n - 1)
    mine = fr.usable & participants[groups]
    pay = take_ranked(groups, order_key, mine, np.where(participants, nodes.payload_pairs, 0))
    ver = take_ranked(
        groups, order_key, mine & ~pay, np.where(participants, nodes.verification_pairs, 0)
    )
    n_pay = np.bincount(groups[pay], minlength=n)[:n]
    n_ver = np.bincount(groups[ver], minlength=n)[:n]
    key, fresh_key = distil_for_tags(fr, nodes, participants, ~(pay | ver), order_key)
    can_fresh = fr.rate > 0
    fresh = {
        "payload": np.where(can_fresh, nodes.payload_pairs - n_pay, 0),
        "verification": np.where(can_fresh, nodes.verification_pairs - n_ver, 0),
        "key": np.where(can_fresh, fresh_key, 0),
    }
    return {"payload": pay, "verification": ver, "key": key}, fresh


def seat(ranked: np.ndarray, m: int, nodes: NodeView) -> np.ndarray:
    """The participant mask (N,): the first ``m`` nodes of ``ranked`` (node ids, most wanted first) that can sit
    together.

    Without ``nodes.pair_tags`` (a trusted broker) that is simply ``ranked[:m]``. With it (the participants agree
    on the model among themselves, :mod:`ceas.broker.agree`), a node is seated only if its pairwise key pool with
    every node seated before it pays ``nodes.seat_tags`` tags -- one agreement attempt -- and is passed over
    otherwise, so no round is configured that cannot agree for want of key. Fewer than ``m`` are seated when the
    candidates run out: a smaller round that agrees rather than a full one that cannot -- but none when fewer than
    ``nodes.min_seats`` can sit together (a round of 3 tolerates no Byzantine node: n > 3f). The candidates and
    their order are the policy's own (flagged nodes stay excluded as the policy decides); the constraint only skips.
    O(len(ranked) · m).
    """
    part = np.zeros(nodes.n_nodes, dtype=bool)
    if nodes.pair_tags is None:
        part[ranked[:m]] = True
        return part
    seated: list[int] = []
    for k in ranked.tolist():
        if len(seated) == m:
            break
        if not seated or bool(np.all(nodes.pair_tags[k, seated] >= nodes.seat_tags)):
            seated.append(k)
    if len(seated) >= min(nodes.min_seats, m):
        part[seated] = True
    return part


def eligible_nodes(fr: Frame, nodes: NodeView) -> np.ndarray:
    """Nodes that can take part at all: ready and reachable (they have a link)."""
    return nodes.ready & fr.has_link
