"""``random``: random participants, first-in-first-out pairs -- the baseline of Fig. 4 (SPEC §5)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from ceas.errors import ValidationError
from ceas.scheduling.params import SchedulingParams
from ceas.scheduling.policies._common import (
    build_decision,
    eligible_nodes,
    frame,
    serve_in_order,
)
from ceas.scheduling.registry import register_policy
from ceas.scheduling.views import Decision, InventoryView, NodeView

__all__ = ["RandomPolicy"]


@register_policy("random")
class RandomPolicy:
    """m participants drawn uniformly without replacement from the ready nodes; each is served payload, then
    verification, then tag key from its stored pairs oldest first (FIFO), fresh pairs for the rest. Every link keeps
    generating; pairs nobody uses expire.

    Parameters
    ----------
    params : SchedulingParams
        Uses ``participants`` (m) and ``round_s``.
    max_enumeration : int
        Largest number of participant sets :meth:`decision_distribution` lists.
    """

    name = "random"

    def __init__(self, params: SchedulingParams, *, max_enumeration: int = 10_000) -> None:
        self.params = params
        self.max_enumeration = max_enumeration

    def _decide(self, inventory: InventoryView, nodes: NodeView, chosen: np.ndarray) -> Decision:
        fr = frame(inventory, nodes, self.params.round_s)
        part = np.zeros(nodes.n_nodes, dtype=bool)
        part[chosen] = True
        fifo = -inventory.pair_age_s
        masks, fresh = serve_in_order(fr, nodes, part, fifo)
        return build_decision(
            inventory, nodes, fr, part, masks, fresh, np.ones(inventory.n_links, bool)
        )

    def _pool(self, inventory: InventoryView, nodes: NodeView) -> tuple[np.ndarray, int]:
        fr = frame(inventory, nodes, self.params.round_s)
        pool = np.flatnonzero(eligible_nodes(fr, nodes))
        return pool, min(self.params.participants, pool.shape[0])

    def __call__(
        self, inventory: InventoryView, nodes: NodeView, rng: np.random.Generator
    ) -> Decision:
        pool, k = self._pool(inventory, nodes)
        chosen = rng.choice(pool, size=k, replace=False) if k else pool[:0]
        return self._decide(inventory, nodes, chosen)

    def decision_distribution(
        self, inventory: InventoryView, nodes: NodeView
    ) -> list[tuple[float, Decision]]:
        """Every participant set with its probability 1 / C(n_ready, m) (for exact policy evaluation)."""
        pool, k = self._pool(inventory, nodes)
        total = math.comb(pool.shape[0], k)
        if total > self.max_enumeration:
            raise ValidationError(
                f"random policy: {total} participant sets exceed max_enumeration = {self.max_enumeration}"
            )
        return [
            (1.0 / total, self._decide(inventory, nodes, np.array(c, dtype=np.int64)))
            for c in itertools.combinations(pool.tolist(), k)
        ]
