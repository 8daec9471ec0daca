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

import difflib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ceas.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from ceas.scheduling.params import SchedulingParams
    from ceas.scheduling.views import Decision, InventoryView, NodeView

__all__ = [
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
_REGISTRY: dict[str, PolicyFactory] = {}


def register_policy(name: str) -> Callable[[PolicyFactory], PolicyFactory]:
    """Class decorator: register a policy factory ``factory(params, **context) -> Policy`` under ``name``."""

    def decorate(factory: PolicyFactory) -> PolicyFactory:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ConfigError(f"scheduling policy {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def _load_builtins() -> None:
    import ceas.scheduling.policies  # noqa: F401  (registers the built-in policies)


def policy_names() -> tuple[str, ...]:
    """Sorted names of every registered policy."""
    _load_builtins()
    return tuple(sorted(_REGISTRY))


def unknown_policy_message(name: str) -> str:
    """One line naming the unknown policy, the closest valid name and all valid names."""
    names = policy_names()
    close = (
        difflib.get_close_matches(name, names, n=1) or [n for n in names if n.startswith(name)][:1]
    )
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown scheduling policy {name!r}{hint} (valid: {', '.join(names)})"


def make_policy(name: str, params: SchedulingParams | None = None, **context: Any) -> Policy:
    """Build the policy registered as ``name`` from the scheduling section (defaults when None).

    ``context`` carries what a policy needs beyond the config (``value-iteration`` needs ``model=``, the reduced
    :class:`~ceas.scheduling.finite.FiniteMDP` it solves).

    Raises
    ------
    UnknownNameError
        If no policy has that name; the message suggests the closest valid one.
    """
    from ceas.scheduling.params import SchedulingParams

    _load_builtins()
    if name not in _REGISTRY:
        raise UnknownNameError(unknown_policy_message(name))
    return _REGISTRY[name](params if params is not None else SchedulingParams(), **context)
