"""``value-iteration``: the exact optimum of a small binned instance (to show how close ``ceas`` comes)."""

from __future__ import annotations

import numpy as np

from ceas.errors import ConfigError, ValidationError
from ceas.scheduling.params import SchedulingParams
from ceas.scheduling.registry import register_policy
from ceas.scheduling.views import Decision, InventoryView, NodeView

__all__ = ["ValueIterationPolicy"]


@register_policy("value-iteration")
class ValueIterationPolicy:
    """Acts optimally on a reduced instance: solves it by value iteration on first use, then maximises the Bellman
    equation at the state the views describe.

    Parameters
    ----------
    params : SchedulingParams
        Unused beyond the registry signature (the instance carries its own).
    model : FiniteMDP
        The enumerated instance (:class:`ceas.scheduling.finite.FiniteMDP`); the views must come from it.
    """

    name = "value-iteration"

    def __init__(self, params: SchedulingParams, *, model=None) -> None:
        if model is None:
            raise ConfigError(
                "scheduling policy 'value-iteration' needs model=FiniteMDP(...): it is exact only on small reduced "
                "instances"
            )
        self.params = params
        self.model = model

    def _state(self, inventory: InventoryView, nodes: NodeView):
        from ceas.scheduling.mdp import MDPState

        spec = self.model.spec
        tau = spec.params.round_s
        bins = np.rint(inventory.pair_age_s / tau).astype(np.int64)
        if inventory.n_links != spec.n_links or np.any(bins >= spec.width):
            raise ValidationError(
                "value-iteration: the views do not describe a state of its instance"
            )
        counts = np.zeros((spec.n_links, spec.width), dtype=np.int64)
        np.add.at(counts, (inventory.pair_link, bins), 1)
        key = np.rint(inventory.key_bits / spec.key_step_bits).astype(np.int64)
        return MDPState(counts=counts, key=key, ready=nodes.ready.copy(), round=nodes.round), bins

    def __call__(
        self, inventory: InventoryView, nodes: NodeView, rng: np.random.Generator
    ) -> Decision:
        from ceas.scheduling.policies._common import take_ranked

        if self.model.result is None:
            self.model.value_iteration()
        state, bins = self._state(inventory, nodes)
        action = self.model.optimal_action(state)
        width = self.model.spec.width
        cell = inventory.pair_link * width + bins
        free = np.ones(inventory.n_pairs, dtype=bool)
        chosen = {}
        for name in ("payload", "verification", "key"):
            quota = np.asarray(getattr(action, name))[:, :width].ravel()
            pick = take_ranked(cell, inventory.pair_id.astype(float), free, quota)
            chosen[name] = inventory.pair_id[pick]
            free &= ~pick
        b = width
        return Decision(
            participants=np.flatnonzero(action.participate),
            payload=chosen["payload"],
            verification=chosen["verification"],
            key=chosen["key"],
            requests=np.stack(
                [action.payload[:, b], action.verification[:, b], action.key[:, b]], axis=1
            ),
            generate=np.asarray(action.generate, bool),
        )
