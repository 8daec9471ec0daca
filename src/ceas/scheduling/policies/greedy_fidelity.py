"""``greedy-fidelity``: the participants that can be served at the highest fidelity, freshest pairs first."""

from __future__ import annotations

import numpy as np

from ceas.scheduling.params import SchedulingParams
from ceas.scheduling.policies._common import (
    build_decision,
    eligible_nodes,
    frame,
    seat,
    serve_in_order,
    take_ranked,
)
from ceas.scheduling.registry import register_policy
from ceas.scheduling.reward import harmonic_mean_v2
from ceas.scheduling.views import Decision, InventoryView, NodeView

__all__ = ["GreedyFidelityPolicy"]


@register_policy("greedy-fidelity")
class GreedyFidelityPolicy:
    """Fidelity-greedy baseline: maximise the visibility each participant is served at, ignore everything else.

    Each ready node's payload would be its freshest stored pairs, then fresh pairs; the m nodes with the highest
    harmonic-mean v² of that payload take part (ties: lower index). Verification and tag key also use the freshest
    remaining pairs. Trust, stamps, latency, key budgets and expiry play no part; every link keeps generating.
    """

    name = "greedy-fidelity"

    def __init__(self, params: SchedulingParams) -> None:
        self.params = params

    def __call__(
        self, inventory: InventoryView, nodes: NodeView, rng: np.random.Generator
    ) -> Decision:
        fr = frame(inventory, nodes, self.params.round_s)
        n = nodes.n_nodes
        ok = eligible_nodes(fr, nodes)
        groups = np.minimum(fr.pair_node, n - 1)
        freshest = inventory.pair_age_s
        stock = fr.usable & ok[groups]
        pay = take_ranked(groups, freshest, stock, nodes.payload_pairs)
        n_stock = np.bincount(groups[pay], minlength=n)[:n]
        inv_v2 = np.bincount(groups[pay], weights=1.0 / fr.pair_v2[pay], minlength=n)[:n]
        n_fresh = np.where(fr.rate > 0, nodes.payload_pairs - n_stock, 0)
        with np.errstate(divide="ignore"):
            inv_v2 = inv_v2 + np.where(
                n_fresh > 0, n_fresh / np.where(fr.v0sq > 0, fr.v0sq, 1.0), 0.0
            )
        score = np.where(ok, harmonic_mean_v2(inv_v2, n_stock + n_fresh), -np.inf)
        ranked = np.lexsort((np.arange(n), -score))
        part = seat(ranked[ok[ranked]], self.params.participants, nodes)
        masks, fresh = serve_in_order(fr, nodes, part, freshest)
        return build_decision(
            inventory, nodes, fr, part, masks, fresh, np.ones(inventory.n_links, bool)
        )
