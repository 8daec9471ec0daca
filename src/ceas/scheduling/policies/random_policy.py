"""``random``: random participants, first-in-first-out pairs -- the baseline of Fig. 4 (SPEC §5)."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ceas.errors import ValidationError
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

__all__ = ["RandomPolicy"]


@register_policy("random")
class RandomPolicy:
    """m participants drawn uniformly without replacement from the ready nodes; each is served payload, then
    verification, then tag key from its stored pairs oldest first (FIFO), fresh pairs for the rest. With
    ``generation = "continuous"`` (the Fig. 4 baseline) every link keeps generating and pairs nobody uses expire;
    with ``"on-demand"`` no link generates beyond its requests (the fresh pairs of this round's participants), as
    the network serves a request and stops at its last needed herald.

    Parameters
    ----------
    params : SchedulingParams
        Uses ``participants`` (m) and ``round_s``.
    max_enumeration : int
        Largest number of participant sets :meth:`decision_distribution` lists.
    generation : "continuous" or "on-demand"
        ``scheduling.policy_params.generation``.
    seating : "ready" or "unflagged"
        ``scheduling.policy_params.seating``: draw among every ready node, or -- as the ``ceas`` policy does --
        among the ready nodes the trust test has not flagged (trust 1) whenever at least m of them are ready.
    """

    name = "random"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        generation: Literal["continuous", "on-demand"] = Field(
            "continuous",
            description="random: 'continuous' keeps every link generating all round (the Fig. 4 baseline; pairs "
            "nobody uses expire); 'on-demand' generates only the pairs this round's requests need, which "
            "isolates the utilisation generation control buys from the participant choice (issue 11: 0.899 "
            "measured for random selection with on-demand generation, paper configuration, seed 0).",
        )
        seating: Literal["ready", "unflagged"] = Field(
            "ready",
            description="random: 'ready' draws among every ready node (the Fig. 4 baseline); 'unflagged' draws only "
            "among the ready nodes the trust test has not flagged whenever at least m are ready, as the ceas "
            "policy does -- the ablation that separates trust-filtered seating from the ceas policy's "
            "entanglement-aware choices (docs/results.md, fair headline)",
        )

    def __init__(
        self,
        params: SchedulingParams,
        *,
        max_enumeration: int = 10_000,
        generation: str = "continuous",
        seating: str = "ready",
    ) -> None:
        if generation not in ("continuous", "on-demand"):
            raise ValidationError(
                f"generation: {generation!r} is not allowed; allowed: 'continuous' or 'on-demand'"
            )
        if seating not in ("ready", "unflagged"):
            raise ValidationError(
                f"seating: {seating!r} is not allowed; allowed: 'ready' or 'unflagged'"
            )
        self.params = params
        self.max_enumeration = max_enumeration
        self.generation = generation
        self.seating = seating

    def _decide(
        self,
        inventory: InventoryView,
        nodes: NodeView,
        chosen: np.ndarray,
        pool: np.ndarray | None,
    ) -> Decision:
        """The decision seating ``chosen``; ``pool`` = the nodes a uniform draw chose among (None: not such a draw)."""
        fr = frame(inventory, nodes, self.params.round_s)
        part = np.zeros(nodes.n_nodes, dtype=bool)
        part[chosen] = True
        fifo = -inventory.pair_age_s
        masks, fresh = serve_in_order(fr, nodes, part, fifo)
        generate = np.full(inventory.n_links, self.generation == "continuous")
        decision = build_decision(inventory, nodes, fr, part, masks, fresh, generate)
        if pool is None:
            return decision
        seat_weights = np.zeros(nodes.n_nodes)
        seat_weights[pool] = 1.0  # a uniform draw: Plackett–Luce with equal weights
        return replace(decision, seat_weights=seat_weights)

    def _pool(self, inventory: InventoryView, nodes: NodeView) -> tuple[np.ndarray, int]:
        fr = frame(inventory, nodes, self.params.round_s)
        pool = np.flatnonzero(eligible_nodes(fr, nodes))
        m = self.params.participants
        if self.seating == "unflagged":
            unflagged = pool[nodes.trust[pool] >= 1.0 - 1e-9]  # the ceas policy's rule (ceas_policy._select)
            if unflagged.shape[0] >= m:
                pool = unflagged
        return pool, min(m, pool.shape[0])

    def __call__(
        self, inventory: InventoryView, nodes: NodeView, rng: np.random.Generator
    ) -> Decision:
        pool, k = self._pool(inventory, nodes)
        if nodes.pair_tags is not None and k:
            # participants who agree among themselves: a random order, seated while their pairwise keys allow
            order = rng.permutation(pool)
            return self._decide(inventory, nodes, np.flatnonzero(seat(order, k, nodes)), None)
        chosen = rng.choice(pool, size=k, replace=False) if k else pool[:0]
        return self._decide(inventory, nodes, chosen, pool)

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
            (1.0 / total, self._decide(inventory, nodes, np.array(c, dtype=np.int64), pool))
            for c in itertools.combinations(pool.tolist(), k)
        ]
