"""Is a :class:`Decision` executable on the given views? One diagnostic sentence for the first problem found.

The broker runs :func:`validate_decision` on every decision before touching the inventory, and
:func:`~ceas.scheduling.checks.check_policy` runs it on probe views, so a broken policy is caught by name.
"""

from __future__ import annotations

import numpy as np

from ceas.errors import ValidationError
from ceas.scheduling._index import pair_index
from ceas.scheduling.views import PURPOSES, Decision, InventoryView, NodeView

__all__ = ["validate_decision"]

_PAIR_PURPOSES = ("payload", "verification", "key", "convert", "purify")


def validate_decision(
    decision: Decision, inventory: InventoryView, nodes: NodeView, *, max_participants: int
) -> None:
    """Raise :class:`~ceas.errors.ValidationError` naming the first way ``decision`` cannot be executed.

    Checks, in order: array shapes (requests (L, 3), generate (L,)); requests >= 0; participants are nodes,
    distinct, at most ``max_participants`` (m) and ready; every used pair id is live, used once and not past its
    cutoff; purified pairs share a link; payload and verification pairs and requests serve participants only; no
    participant gets more payload or verification pairs (stored + fresh) than it demands.

    Parameters
    ----------
    decision : Decision
        The policy's answer.
    inventory, nodes : InventoryView, NodeView
        The views the policy was given.
    max_participants : int
        The participant budget m.
    """
    _check_shapes(decision, inventory.n_links)
    _check_participants(decision.participants, nodes, max_participants)
    used, label, link = _check_pairs(decision, inventory)
    _check_service(decision, inventory, nodes, used, label, link)


def _check_shapes(decision: Decision, n_links: int) -> None:
    if decision.requests.shape != (n_links, len(PURPOSES)):
        raise ValidationError(
            f"requests must have shape ({n_links}, {len(PURPOSES)}), got {decision.requests.shape}"
        )
    if decision.generate.shape != (n_links,):
        raise ValidationError(
            f"generate must have shape ({n_links},), got {decision.generate.shape}"
        )
    if (decision.requests < 0).any():
        l, c = np.argwhere(decision.requests < 0)[0]
        raise ValidationError(
            f"link {l} requests {decision.requests[l, c]} fresh {PURPOSES[c]} pairs; counts must be >= 0"
        )


def _check_participants(part: np.ndarray, nodes: NodeView, max_participants: int) -> None:
    n_nodes = nodes.n_nodes
    bad = (part < 0) | (part >= n_nodes)
    if bad.any():
        raise ValidationError(f"participant {part[bad][0]} is not a node (valid: 0..{n_nodes - 1})")
    uniq, counts = np.unique(part, return_counts=True)
    if (counts > 1).any():
        raise ValidationError(f"participant {uniq[counts > 1][0]} appears twice")
    if part.shape[0] > max_participants:
        raise ValidationError(
            f"decision picks {part.shape[0]} participants, at most m = {max_participants} allowed"
        )
    not_ready = ~nodes.ready[part]
    if not_ready.any():
        raise ValidationError(f"participant {part[not_ready][0]} is not ready")


def _check_pairs(
    decision: Decision, inventory: InventoryView
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every used pair is live, used once, not past its cutoff; purified pairs share a link.

    Returns the used pair ids, their purpose group (index into the decision's groups) and their links."""
    groups = [
        decision.payload,
        decision.verification,
        decision.key,
        decision.convert,
        decision.purify.ravel(),
    ]
    used = np.concatenate(groups)
    label = np.repeat(np.arange(len(groups)), [g.shape[0] for g in groups])
    idx = pair_index(inventory, used)
    if (idx < 0).any():
        j = int(np.flatnonzero(idx < 0)[0])
        raise ValidationError(
            f"pair {used[j]} ({_PAIR_PURPOSES[label[j]]}) is not in the inventory"
        )
    order = np.argsort(used, kind="stable")
    dup = np.flatnonzero(np.diff(used[order]) == 0)
    if dup.size:
        a, b = order[dup[0]], order[dup[0] + 1]
        raise ValidationError(
            f"pair {used[a]} is used twice ({_PAIR_PURPOSES[label[a]]} and {_PAIR_PURPOSES[label[b]]})"
        )
    link = inventory.pair_link[idx]
    age = inventory.pair_age_s[idx]
    past = age > inventory.cutoff_s[link]
    if past.any():
        j = int(np.flatnonzero(past)[0])
        raise ValidationError(
            f"pair {used[j]} ({_PAIR_PURPOSES[label[j]]}) on link {link[j]} is past its cutoff "
            f"(age {age[j]:.4g} s > cutoff {inventory.cutoff_s[link[j]]:.4g} s)"
        )
    if decision.purify.shape[0]:
        pl = inventory.pair_link[pair_index(inventory, decision.purify)]
        diff = pl[:, 0] != pl[:, 1]
        if diff.any():
            q = int(np.flatnonzero(diff)[0])
            a, b = decision.purify[q]
            raise ValidationError(
                f"purify pairs {a} and {b} are on different links ({pl[q, 0]} and {pl[q, 1]})"
            )
    return used, label, link


def _check_service(
    decision: Decision,
    inventory: InventoryView,
    nodes: NodeView,
    used: np.ndarray,
    label: np.ndarray,
    link: np.ndarray,
) -> None:
    """Payload and verification pairs and requests serve participants only, within their demand."""
    n_links, n_nodes = inventory.n_links, nodes.n_nodes
    part = decision.participants
    is_part = np.zeros(n_nodes, dtype=bool)
    is_part[part] = True
    link_node = inventory.link_node
    link_part = np.zeros(n_links, dtype=bool)
    in_range = link_node < n_nodes
    link_part[in_range] = is_part[link_node[in_range]]
    for g, purpose in ((0, "payload"), (1, "verification")):
        sel = label == g
        off = ~link_part[link[sel]]
        if off.any():
            j = int(np.flatnonzero(off)[0])
            lj = link[sel][j]
            raise ValidationError(
                f"pair {used[sel][j]} ({purpose}) is on link {lj}, whose node {link_node[lj]} is not a participant"
            )
        col = decision.requests[:, g]
        off = (col > 0) & ~link_part
        if off.any():
            lj = int(np.flatnonzero(off)[0])
            raise ValidationError(
                f"link {lj} requests {col[lj]} fresh {purpose} pairs, but its node {link_node[lj]} is not a "
                "participant"
            )
        stored = np.bincount(link_node[link[sel]], minlength=n_nodes)[:n_nodes]
        fresh = np.bincount(link_node[in_range], weights=col[in_range], minlength=n_nodes)[:n_nodes]
        demand = nodes.payload_pairs if g == 0 else nodes.verification_pairs
        over = (stored + fresh) > demand
        if over.any():
            k = int(np.flatnonzero(over)[0])
            raise ValidationError(
                f"node {k} gets {int(stored[k] + fresh[k])} {purpose} pairs ({int(stored[k])} stored + "
                f"{int(fresh[k])} fresh), demand is {demand[k]}"
            )
