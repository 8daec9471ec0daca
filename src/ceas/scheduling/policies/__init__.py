"""The built-in scheduling policies; importing this package registers them (``ceas``, ``random``, ``oblivious``,
``greedy-fidelity``, ``value-iteration``)."""

from ceas.scheduling.policies.ceas_policy import CeasPolicy
from ceas.scheduling.policies.greedy_fidelity import GreedyFidelityPolicy
from ceas.scheduling.policies.oblivious import ObliviousPolicy
from ceas.scheduling.policies.random_policy import RandomPolicy
from ceas.scheduling.policies.value_iteration import ValueIterationPolicy

__all__ = [
    "CeasPolicy",
    "GreedyFidelityPolicy",
    "ObliviousPolicy",
    "RandomPolicy",
    "ValueIterationPolicy",
]
