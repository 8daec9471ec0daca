"""``oblivious``: round-robin participants, pairs used in ledger order regardless of age (SPEC §5 baseline)."""

from __future__ import annotations

import numpy as np

from ceas.scheduling.params import SchedulingParams
from ceas.scheduling.policies._common import (
    build_decision,
    eligible_nodes,
    frame,
    seat,
    serve_in_order,
)
from ceas.scheduling.registry import register_policy
from ceas.scheduling.views import Decision, InventoryView, NodeView

__all__ = ["ObliviousPolicy"]


@register_policy("oblivious")
class ObliviousPolicy:
    """Entanglement-oblivious baseline.

    Round t starts at node ``(t * m) mod N`` and takes the next m ready nodes cyclically (the pointer lives in
    ``nodes.round``, so the policy itself is stateless). Each participant is served payload, verification and tag key
    from its stored pairs in the order the inventory lists them -- age and fidelity are never looked at -- and fresh
    pairs for the rest. Every link keeps generating; pairs nobody uses expire.
    """

    name = "oblivious"

    def __init__(self, params: SchedulingParams) -> None:
        self.params = params

    def __call__(
        self, inventory: InventoryView, nodes: NodeView, rng: np.random.Generator
    ) -> Decision:
        fr = frame(inventory, nodes, self.params.round_s)
        n = nodes.n_nodes
        start = (nodes.round * self.params.participants) % max(n, 1)
        distance = (np.arange(n) - start) % max(n, 1)
        ok = eligible_nodes(fr, nodes)
        order = np.flatnonzero(ok)[np.argsort(distance[ok], kind="stable")]
        part = seat(order, self.params.participants, nodes)
        ledger = np.arange(inventory.n_pairs, dtype=float)
        masks, fresh = serve_in_order(fr, nodes, part, ledger)
        return build_decision(
            inventory, nodes, fr, part, masks, fresh, np.ones(inventory.n_links, bool)
        )
