"""``value-iteration``: the exact optimum of a small binned instance (to show how close ``ceas`` comes).

On the binned MDP itself (:class:`~ceas.scheduling.finite.FiniteMDP`) the policy is exact. Through the broker it acts
on a **reduced instance** of the live network (:func:`reduced_instance`, built once per run) and maps each round's
live state into that instance's binned state space (``live=True``); :func:`exact_size_error` refuses configurations
too large for exact value iteration, naming the bound that fails.
"""

from __future__ import annotations

from math import comb

import numpy as np

from ceas.errors import ConfigError, ValidationError
from ceas.scheduling.params import SchedulingParams
from ceas.scheduling.registry import register_policy
from ceas.scheduling.views import PURPOSES, Decision, InventoryView, NodeView

__all__ = [
    "EXACT_MAX_AGE_BINS",
    "EXACT_MAX_NODES",
    "EXACT_MAX_SLOTS",
    "EXACT_MAX_STATES",
    "ValueIterationPolicy",
    "exact_size_error",
    "reduced_instance",
]

EXACT_MAX_NODES = 4
"""Most nodes (links of the instance) exact value iteration accepts through the broker."""
EXACT_MAX_SLOTS = 4
"""Most memory slots per link."""
EXACT_MAX_AGE_BINS = 4
"""Most age bins (``scheduling.age_bins``)."""
EXACT_MAX_STATES = 100_000
"""Most joint memory states, :math:`\\binom{M + B}{B}^N` for N nodes, M slots and B age bins (an upper bound on the
instance's states: a link whose pairs die sooner has fewer bins)."""

_KEY_MARGIN = 1.5
"""Live mode: fresh key pairs requested cover this many times a tag's missing bits at the mean BBM92 yield."""


def exact_size_error(nodes: int, slots: int, age_bins: int) -> str | None:
    """One config-error line naming the bound a broker run breaks for exact value iteration (None when it fits).

    Checked in order: nodes, slots, age bins, then the joint memory states (:data:`EXACT_MAX_STATES`).
    """
    for name, value, limit in (
        ("training.nodes", nodes, EXACT_MAX_NODES),
        ("network.memory.slots", slots, EXACT_MAX_SLOTS),
        ("scheduling.age_bins", age_bins, EXACT_MAX_AGE_BINS),
    ):
        if value > limit:
            return (
                f"{name}: {value} is not allowed with scheduling.policy = 'value-iteration'; allowed: integer in "
                f"[1, {limit}] (larger instances are too large for exact value iteration)"
            )
    per_node = comb(slots + age_bins, age_bins)
    if per_node**nodes > EXACT_MAX_STATES:
        return (
            f"scheduling.policy: 'value-iteration' is not allowed with {nodes} nodes x {per_node} memory states "
            f"each ({per_node**nodes} joint states); allowed: at most {EXACT_MAX_STATES} joint states for exact "
            "value iteration (fewer training.nodes, network.memory.slots or scheduling.age_bins)"
        )
    return None


def reduced_instance(
    params: SchedulingParams,
    *,
    f0: np.ndarray,
    t_coh_s: np.ndarray,
    rate_hz: np.ndarray,
    slots: int,
    phi: np.ndarray,
    payload_pairs: int,
    verification_pairs: int,
    f_min: float,
):
    """The :class:`~ceas.scheduling.finite.FiniteMDP` of a live network, one link per node (arrays of shape (N,)).

    Per node: fresh fidelity ``f0``, coherence ``t_coh_s`` and heralding rate ``rate_hz`` of its channel to the
    broker, ``slots`` memory slots, φ at visibility 1; trust 1 and readiness 1 (the broker's nodes are always ready);
    ``payload_pairs`` (at least 1: a classical payload is modelled as one pair) and ``verification_pairs`` per
    participant. Approximations, stated:

    * a fresh fidelity at or below ``f_min`` is raised just above it (the binned MDP needs pairs that live);
    * key is not in the instance (no key state, tags free): BBM92 yields a fraction of a bit per pair, so one
      128-bit tag is hundreds of pairs and no small key grid holds it. The live policy tops pools up instead
      (:class:`ValueIterationPolicy`);
    * trust and φ are frozen at these values: the instance is solved once.

    Raises
    ------
    ValidationError
        The instance has more joint states than :data:`EXACT_MAX_STATES`.
    """
    from ceas.scheduling.finite import FiniteMDP
    from ceas.scheduling.mdp import MDPSpec

    n = np.asarray(f0).shape[0]
    spec = MDPSpec(
        f0=np.maximum(f0, np.nextafter(f_min, 1.0)),
        t_coh_s=t_coh_s,
        slots=np.full(n, slots),
        arrivals=np.maximum(np.asarray(rate_hz, float) * params.round_s, 1e-9),
        trust=np.ones(n),
        phi=phi,
        ready_prob=np.ones(n),
        payload_pairs=max(1, int(payload_pairs)),
        verification_pairs=int(verification_pairs),
        tag_steps=0,
        key_levels=0,
        key_init=0,
        f_min=f_min,
        params=params,
    )
    return FiniteMDP(spec, max_states=EXACT_MAX_STATES)


@register_policy("value-iteration")
class ValueIterationPolicy:
    """Acts optimally on a reduced instance: solves it by value iteration on first use, then maximises the Bellman
    equation at the state the views describe.

    Parameters
    ----------
    params : SchedulingParams
        Unused beyond the registry signature (the instance carries its own).
    model : FiniteMDP
        The enumerated instance (:class:`ceas.scheduling.finite.FiniteMDP`).
    live : bool
        False: the views must describe a state of the instance (they come from its MDP). True (the broker): the
        views are a live network's, mapped into the instance's state space with clipping -- a pair's age bin is
        :math:`\\lfloor a/\\tau \\rfloor`, capped at its link's last bin; pairs beyond the slots count from the
        youngest; key pools above the instance's grid read as full. The optimal action then acts on the live
        network: its stored pairs by bin (oldest ids first), the rest of each participant's payload and test
        demand (``nodes``, hoarders included) as fresh pairs, and fresh key pairs for every node whose pool holds
        less than two tags (:data:`_KEY_MARGIN` times the missing bits at the fresh pairs' mean yield), because
        the reduced instance leaves key out (:func:`reduced_instance`).
    """

    name = "value-iteration"

    def __init__(self, params: SchedulingParams, *, model=None, live: bool = False) -> None:
        if model is None:
            raise ConfigError(
                "scheduling policy 'value-iteration' needs model=FiniteMDP(...): it is exact only on small reduced "
                "instances"
            )
        self.params = params
        self.model = model
        self.live = live

    def _state(self, inventory: InventoryView, nodes: NodeView):
        from ceas.scheduling.mdp import MDPState

        spec = self.model.spec
        tau = spec.params.round_s
        if inventory.n_links != spec.n_links:
            raise ValidationError(
                f"value-iteration: the views have {inventory.n_links} links, its instance {spec.n_links}"
            )
        if self.live:
            bins = np.floor(inventory.pair_age_s / tau + 1e-9).astype(np.int64)
            bins = np.minimum(bins, spec.bins[inventory.pair_link] - 1)
        else:
            bins = np.rint(inventory.pair_age_s / tau).astype(np.int64)
            if np.any(bins >= spec.width):
                raise ValidationError(
                    "value-iteration: the views do not describe a state of its instance"
                )
        counts = np.zeros((spec.n_links, spec.width), dtype=np.int64)
        np.add.at(counts, (inventory.pair_link, bins), 1)
        key = np.rint(inventory.key_bits / spec.key_step_bits).astype(np.int64)
        if self.live:
            before = np.cumsum(counts, axis=1) - counts  # youngest first
            counts = np.clip(spec.slots[:, None] - before, 0, counts)
            key = np.clip(key, 0, spec.key_levels)
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
        requests = np.stack(
            [action.payload[:, b], action.verification[:, b], action.key[:, b]], axis=1
        )
        if self.live:
            requests = self._live_requests(inventory, nodes, action, chosen)
        return Decision(
            participants=np.flatnonzero(action.participate),
            payload=chosen["payload"],
            verification=chosen["verification"],
            key=chosen["key"],
            requests=requests,
            generate=np.asarray(action.generate, bool),
        )

    def _live_requests(self, inventory, nodes, action, chosen) -> np.ndarray:
        """Fresh pairs per link and purpose on the live network (class docstring), shape (L, 3)."""
        node = inventory.link_node
        part = np.asarray(action.participate, bool)
        requests = np.zeros((inventory.n_links, len(PURPOSES)), np.int64)
        for col, (purpose, demand) in enumerate(
            (("payload", nodes.payload_pairs), ("verification", nodes.verification_pairs))
        ):
            used = np.isin(inventory.pair_id, chosen[purpose])
            stored = np.bincount(inventory.pair_link[used], minlength=inventory.n_links)
            requests[:, col] = np.where(part, np.maximum(demand[node] - stored, 0), 0)
        missing = np.maximum(2.0 * nodes.tag_bits[node] - inventory.key_bits, 0.0)
        per_pair = inventory.fresh_key_bits
        with np.errstate(divide="ignore", invalid="ignore"):
            fresh_key = np.where(per_pair > 0, np.ceil(_KEY_MARGIN * missing / per_pair), 0)
        requests[:, PURPOSES.index("key")] = fresh_key.astype(np.int64)
        return requests
