"""Entanglement scheduling layer of ceas: the CEAS scheduling MDP (Definition 3, SPEC §5) and its policies.

* :mod:`~ceas.scheduling.views` -- what a policy sees (:class:`InventoryView`, :class:`NodeView`) and returns
  (:class:`Decision`);
* :mod:`~ceas.scheduling.registry` -- the policy protocol and the registry (:func:`make_policy`);
* :mod:`~ceas.scheduling.policies` -- ``ceas``, ``random``, ``oblivious``, ``greedy-fidelity``, ``value-iteration``;
* :mod:`~ceas.scheduling.mdp` -- the binned MDP (state, action, transition, reward);
* :mod:`~ceas.scheduling.finite` -- exact value iteration and policy evaluation on small instances;
* :mod:`~ceas.scheduling.env` -- the MDP as a ``gymnasium.Env`` (extra ``rl``; imported on demand).
"""

from typing import TYPE_CHECKING

from ceas._lazy import lazy_exports

if TYPE_CHECKING:
    # the names below are imported on first use (PEP 562): `import ceas.scheduling.params` and the like (what checking a
    # config needs) then no longer import every module of the layer
    from ceas.scheduling.checks import PolicyCheckError, check_policy, probe_views
    from ceas.scheduling.finite import FiniteMDP, PolicyValue, ValueIterationResult
    from ceas.scheduling.mdp import MDPAction, MDPSpec, MDPState, RoundOutcome, SchedulingMDP
    from ceas.scheduling.params import SchedulingParams
    from ceas.scheduling.registry import (
        ExactPolicy,
        Policy,
        make_policy,
        policy_names,
        register_policy,
    )
    from ceas.scheduling.reward import learning_utility, round_reward, utility_scale
    from ceas.scheduling.validate import validate_decision
    from ceas.scheduling.views import PURPOSES, Decision, InventoryView, NodeView

_EXPORTS = {
    "PolicyCheckError": "ceas.scheduling.checks",
    "check_policy": "ceas.scheduling.checks",
    "probe_views": "ceas.scheduling.checks",
    "FiniteMDP": "ceas.scheduling.finite",
    "PolicyValue": "ceas.scheduling.finite",
    "ValueIterationResult": "ceas.scheduling.finite",
    "MDPAction": "ceas.scheduling.mdp",
    "MDPSpec": "ceas.scheduling.mdp",
    "MDPState": "ceas.scheduling.mdp",
    "RoundOutcome": "ceas.scheduling.mdp",
    "SchedulingMDP": "ceas.scheduling.mdp",
    "SchedulingParams": "ceas.scheduling.params",
    "ExactPolicy": "ceas.scheduling.registry",
    "Policy": "ceas.scheduling.registry",
    "make_policy": "ceas.scheduling.registry",
    "policy_names": "ceas.scheduling.registry",
    "register_policy": "ceas.scheduling.registry",
    "learning_utility": "ceas.scheduling.reward",
    "round_reward": "ceas.scheduling.reward",
    "utility_scale": "ceas.scheduling.reward",
    "validate_decision": "ceas.scheduling.validate",
    "PURPOSES": "ceas.scheduling.views",
    "Decision": "ceas.scheduling.views",
    "InventoryView": "ceas.scheduling.views",
    "NodeView": "ceas.scheduling.views",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "PURPOSES",
    "Decision",
    "ExactPolicy",
    "FiniteMDP",
    "InventoryView",
    "MDPAction",
    "MDPSpec",
    "MDPState",
    "NodeView",
    "Policy",
    "PolicyCheckError",
    "PolicyValue",
    "RoundOutcome",
    "SchedulingMDP",
    "SchedulingParams",
    "ValueIterationResult",
    "check_policy",
    "learning_utility",
    "make_policy",
    "policy_names",
    "probe_views",
    "register_policy",
    "round_reward",
    "utility_scale",
    "validate_decision",
]
