"""The policy protocol and the registry that maps config names to policies.

Adding a policy is one file::

    from ceas.scheduling import Decision, register_policy

    @register_policy("my-policy")
    class MyPolicy:
        name = "my-policy"

        def __init__(self, params, **context):
            self.m = params.participants

        def __call__(self, inventory, nodes, rng):
            ...
            return Decision(...)

and ``policy = "my-policy"`` in the ``[scheduling]`` section once the file is imported. Run
:func:`ceas.scheduling.check_policy` on it first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ceas._validate import unknown_name
from ceas.errors import ValidationError
from ceas.registry import Registry

if TYPE_CHECKING:
    from ceas.scheduling.params import SchedulingParams
    from ceas.scheduling.views import Decision, InventoryView, NodeView

__all__ = [
    "POLICIES",
    "ExactPolicy",
    "Policy",
    "make_policy",
    "policy_names",
    "register_policy",
    "unknown_policy_message",
]


@runtime_checkable
class Policy(Protocol):
    """A scheduling policy: maps the round's views (and a Generator) to a :class:`Decision`.

    Policies are stateless between calls (anything that evolves, such as a round-robin pointer, is read from the
    views, e.g. ``nodes.round``), so a run is reproducible from its seed and resumable.
    """

    name: str

    def __call__(
        self, inventory: InventoryView, nodes: NodeView, rng: np.random.Generator
    ) -> Decision: ...


@runtime_checkable
class ExactPolicy(Policy, Protocol):
    """A randomised policy that can list its decisions with their probabilities (for exact policy evaluation)."""

    def decision_distribution(
        self, inventory: InventoryView, nodes: NodeView
    ) -> Sequence[tuple[float, Decision]]: ...


PolicyFactory = Callable[..., Policy]


def _check_policy_class(factory: object) -> None:
    if not callable(factory):
        raise ValidationError(f"a scheduling policy must be a callable factory, got {factory!r}")


POLICIES: Registry = Registry(
    "scheduling policy",
    "scheduling.policy",
    builtins="ceas.scheduling.policies",
    check=_check_policy_class,
)
"""Policy factories by config name (``scheduling.policy``); see :mod:`ceas.registry` for the recipe."""


def register_policy(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    """Class decorator: register a policy factory ``factory(params, **context, **hyperparameters) -> Policy`` under
    ``name``. Hyperparameters are declared by a pydantic ``Params`` class attribute and set in a config as
    ``scheduling.policy_params``; they reach the constructor as keyword arguments after the scheduling section."""

    def decorate(factory: PolicyFactory) -> PolicyFactory:
        return POLICIES.register(factory, name=name)

    return decorate


def policy_names() -> tuple[str, ...]:
    """Sorted names of every registered policy."""
    return POLICIES.names()


def unknown_policy_message(name: str) -> str:
    """One line naming the unknown policy, the closest valid name and all valid names."""
    return str(unknown_name(POLICIES.kind, name, POLICIES.names()))


def make_policy(name: str, params: SchedulingParams | None = None, **context: Any) -> Policy:
    """Build the policy registered as ``name`` from the scheduling section (defaults when None).

    ``context`` carries what a policy needs beyond the config (``value-iteration`` needs ``model=``, the reduced
    :class:`~ceas.scheduling.finite.FiniteMDP` it solves). The policy's own hyperparameters come from
    ``params.policy_params`` when ``name`` is the section's policy.

    Raises
    ------
    UnknownNameError
        If no policy has that name; the message suggests the closest valid one.
    """
    from ceas.scheduling.params import SchedulingParams

    params = params if params is not None else SchedulingParams()
    factory = POLICIES.get_plugin(name)
    values = params.policy_params if name == params.policy else {}
    hyper = POLICIES.params(name, values, "scheduling.policy_params")
    return factory(params, **context, **dict(hyper))
