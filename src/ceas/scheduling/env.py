"""The CEAS scheduling MDP as a ``gymnasium.Env`` (extra ``rl``: ``pip install ceas[rl]``).

The env simulates :class:`~ceas.scheduling.mdp.SchedulingMDP`. Both spaces are fixed in ``__init__``:

* observation ``Dict``: ``pairs`` (L, B) stored pairs per link and age bin, ``key`` (L,) key-pool level in steps,
  ``ready`` (L,) readiness;
* action ``Dict``: ``participate`` (L,) 0/1, ``payload`` / ``verification`` / ``key`` (L, B+1) pairs per age bin
  (last column: fresh on-demand pairs), ``generate`` (L,) 0/1.

Any action in the space is accepted: infeasible parts are clipped (:meth:`SchedulingMDP.clip`: participants must be
ready and at most m, pairs taken only where they exist, payload and verification only for participants and at most
their demand) and ``info["clipped"]`` says whether anything was. Episodes never terminate (the MDP is continuing);
they are truncated after ``horizon`` rounds.

A registered policy plays the env through the views it was written for::

    env = SchedulingEnv()
    obs, info = env.reset(seed=0)
    policy = make_policy("ceas", env.instance.params)
    inventory, nodes = env.views()
    obs, reward, terminated, truncated, info = env.step(env.encode(policy(inventory, nodes, rng)))

(see ``examples/gym_policy_eval.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

try:
    import gymnasium as gym
    from gymnasium import spaces
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ceas.scheduling.env needs gymnasium, the 'rl' extra: pip install 'ceas[rl]'"
    ) from exc

from ceas.errors import ValidationError
from ceas.scheduling.mdp import MDPAction, MDPSpec, MDPState, SchedulingMDP, example_spec
from ceas.scheduling.views import Decision, InventoryView, NodeView

__all__ = ["ENV_ID", "SchedulingEnv"]

ENV_ID = "ceas/Scheduling-v0"


class SchedulingEnv(gym.Env):
    """Gymnasium env of the binned CEAS scheduling MDP.

    Parameters
    ----------
    instance : MDPSpec, optional
        The instance to simulate; default :func:`~ceas.scheduling.mdp.example_spec` (4 nodes).
    horizon : int
        Rounds per episode before truncation (>= 1).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, instance: MDPSpec | None = None, *, horizon: int = 100) -> None:
        if int(horizon) != horizon or horizon < 1:
            raise ValidationError(f"horizon must be an integer >= 1, got {horizon!r}")
        self.instance = example_spec() if instance is None else instance
        self.horizon = int(horizon)
        self.model = SchedulingMDP(self.instance)
        s = self.instance
        n, b = s.n_links, s.width
        bins_nvec = np.repeat((s.slots + 1)[:, None], b, axis=1)

        def with_fresh(cap: np.ndarray) -> np.ndarray:
            return np.concatenate([bins_nvec, (cap + 1)[:, None]], axis=1).astype(np.int64)

        self.observation_space = spaces.Dict(
            {
                "pairs": spaces.MultiDiscrete(bins_nvec.astype(np.int64)),
                "key": spaces.MultiDiscrete(np.full(n, s.key_levels + 1, dtype=np.int64)),
                "ready": spaces.MultiBinary(n),
            }
        )
        self.action_space = spaces.Dict(
            {
                "participate": spaces.MultiBinary(n),
                "payload": spaces.MultiDiscrete(with_fresh(np.full(n, s.payload_pairs))),
                "verification": spaces.MultiDiscrete(with_fresh(np.full(n, s.verification_pairs))),
                "key": spaces.MultiDiscrete(with_fresh(s.max_key_requests)),
                "generate": spaces.MultiBinary(n),
            }
        )
        self.state: MDPState | None = None

    # --------------------------------------------------------------------------------------------- gymnasium API
    def _obs(self) -> dict[str, np.ndarray]:
        st = self.state
        return {
            "pairs": st.counts.astype(np.int64),
            "key": st.key.astype(np.int64),
            "ready": st.ready.astype(np.int8),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode: empty memories, pools at ``key_init``, readiness drawn. ``options`` is unused."""
        super().reset(seed=seed)
        self.state = self.model.initial_state(self.np_random)
        return self._obs(), {"round": 0}

    def step(self, action: dict[str, np.ndarray]):
        """Play one round; returns ``(obs, reward, terminated, truncated, info)``.

        ``info`` holds the round's ``utility``, ``latency_s``, and per-link ``served``, ``expired``, ``evicted``,
        ``wasted``, ``consumed`` (L, 3), ``utilised`` (consumed with a result: payload and verification of served
        participants, key bits that entered a pool) and ``generated``, plus ``clipped``.
        """
        if self.state is None:
            raise ValidationError("call reset() before step()")
        raw = MDPAction(
            participate=np.asarray(action["participate"]).astype(bool),
            payload=np.asarray(action["payload"], dtype=np.int64),
            verification=np.asarray(action["verification"], dtype=np.int64),
            key=np.asarray(action["key"], dtype=np.int64),
            generate=np.asarray(action["generate"]).astype(bool),
        )
        act = self.model.clip(self.state, raw)
        clipped = not all(
            np.array_equal(getattr(act, f), getattr(raw, f))
            for f in ("participate", "payload", "verification", "key", "generate")
        )
        self.state, out = self.model.step(self.state, act, self.np_random)
        info = {
            "round": self.state.round,
            "utility": out.utility,
            "latency_s": out.latency_s,
            "served": out.served,
            "expired": out.expired,
            "evicted": out.evicted,
            "wasted": out.wasted,
            "consumed": out.consumed,
            "utilised": out.consumed.sum(axis=1) - out.wasted,
            "generated": out.generated,
            "clipped": clipped,
        }
        truncated = self.state.round >= self.horizon
        return self._obs(), float(out.reward), False, truncated, info

    # --------------------------------------------------------------------------------------------- policy bridge
    def views(self) -> tuple[InventoryView, NodeView]:
        """The current state as the broker's views, for a :class:`~ceas.scheduling.registry.Policy`."""
        if self.state is None:
            raise ValidationError("call reset() before views()")
        return self.model.views(self.state)

    def encode(self, decision: Decision) -> dict[str, np.ndarray]:
        """The env action of a policy's ``decision`` on :meth:`views` (validated; see ``SchedulingMDP.decode``)."""
        if self.state is None:
            raise ValidationError("call reset() before encode()")
        act = self.model.decode(self.state, decision)
        return {
            "participate": act.participate.astype(np.int8),
            "payload": act.payload,
            "verification": act.verification,
            "key": act.key,
            "generate": act.generate.astype(np.int8),
        }


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="ceas.scheduling.env:SchedulingEnv")
