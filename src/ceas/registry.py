"""One registry recipe for every pluggable kind: aggregators, attacks, policies, topologies, entanglers, partition
schemes.

A plugin is a class (or an object) with a ``name`` and, if it has hyperparameters, a ``Params`` class attribute: a
frozen pydantic model whose fields carry their bounds, defaults and reasons, exactly like a config section. Register
it with the kind's decorator and it is usable from a config file by its name; its hyperparameters are set in the
config table that sits beside the field choosing it (``consensus.aggregator_params``, ``scheduling.policy_params``,
``network.topology.kind_params``, ``security.attack_params.<name>``), validated against its ``Params`` with the same
one-line messages as every other field. Nothing central is edited::

    from pydantic import BaseModel, Field
    from ceas.consensus import register_aggregator

    @register_aggregator
    class Midrange:
        name = "midrange"

        class Params(BaseModel):
            shrink: float = Field(1.0, gt=0, le=1, description="why this default")

        def __init__(self, shrink=1.0): ...
        def __call__(self, updates, weights=None): ...

A registry is a ``dict`` from name to plugin, so ``name in REGISTRY`` and iteration work as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict

from ceas._validate import format_error, unknown_name
from ceas.errors import ConfigError, ValidationError

__all__ = ["NoParams", "RegistrationError", "Registry", "params_error"]


class RegistrationError(ConfigError, ValidationError):
    """A plugin cannot be registered (no usable name, a name taken, hyperparameters that are not a model)."""


T = TypeVar("T")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class NoParams(BaseModel):
    """The hyperparameters of a plugin that declares none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Registry(dict):
    """Plugins of one kind by config name.

    Parameters
    ----------
    kind : str
        What the plugins are, as messages say it ("aggregator", "scheduling policy", ...).
    field : str
        The config field that chooses one (used in messages).
    builtins : str, optional
        Module whose import registers the built-in plugins (imported on first lookup).
    check : callable, optional
        ``check(plugin)`` raises ValidationError when an object cannot be a plugin of this kind.
    """

    def __init__(
        self,
        kind: str,
        field: str,
        *,
        builtins: str | None = None,
        check: Callable[[Any], None] | None = None,
        initial: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(initial or {})
        self.kind, self.field, self._builtins, self._check = kind, field, builtins, check

    def _load(self) -> None:
        if self._builtins is not None:
            module, self._builtins = self._builtins, None
            __import__(module)

    def register(self, plugin: T, *, name: str | None = None, replace: bool = False) -> T:
        """Add ``plugin`` under ``name`` (default: its ``name`` attribute); returns it, so it works as a decorator.

        Raises
        ------
        ValidationError
            No usable name, a name already taken by another plugin, or ``Params`` that is not a pydantic model.
        """
        name = getattr(plugin, "name", None) if name is None else name
        if not isinstance(name, str) or not _NAME.match(name):
            raise RegistrationError(
                f"a {self.kind} needs a name of letters, digits, '-' or '_', got {name!r}"
            )
        params = getattr(plugin, "Params", NoParams)
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise RegistrationError(
                f"{self.kind} {name!r}: Params must be a pydantic BaseModel, got {params!r}"
            )
        if self._check is not None:
            self._check(plugin)
        self._load()
        if not replace and name in self and self[name] is not plugin:
            raise RegistrationError(f"{self.kind} {name!r} is already registered")
        self[name] = plugin
        return plugin

    def names(self) -> tuple[str, ...]:
        """Registered names, sorted."""
        self._load()
        return tuple(sorted(self))

    def get_plugin(self, name: str) -> Any:
        """The plugin registered as ``name``; an unknown name raises UnknownNameError with the closest one."""
        self._load()
        if isinstance(name, str) and name in self:
            return self[name]
        raise unknown_name(self.kind, name, self)

    def check_name(self, name: object) -> str:
        """``name`` if registered; else ValueError with the one unknown-name line (for config validators)."""
        self._load()
        if isinstance(name, str) and name in self:
            return name
        raise ValueError(str(unknown_name(self.kind, name, self)))

    def params_model(self, name: str) -> type[BaseModel]:
        """The hyperparameter model ``name`` declares (:class:`NoParams` if none)."""
        return getattr(self.get_plugin(name), "Params", NoParams)

    def params(
        self, name: str, values: Mapping[str, Any] | BaseModel | None, where: str
    ) -> BaseModel:
        """``values`` validated against ``name``'s ``Params``; ``where`` is the config path for messages.

        Raises
        ------
        ValueError
            One line per failure, in the config's message style (``where.key: value is not allowed; allowed: ...``).
        """
        model = self.params_model(name)
        if isinstance(values, model):
            return values
        data = values.model_dump() if isinstance(values, BaseModel) else dict(values or {})
        unknown = sorted(set(data) - set(model.model_fields))
        if unknown:  # refused even where the plugin's model would ignore extra keys
            keys = ", ".join(model.model_fields) or "none"
            raise ValueError(
                f"{where}.{unknown[0]}: unknown key; {self.kind} {name!r} takes hyperparameters: {keys}"
            )
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            raise ValueError(params_error(model, exc, where, f"{self.kind} {name!r}")) from None


def params_error(
    model: type[BaseModel], exc: pydantic.ValidationError, where: str, owner: str
) -> str:
    """Format a plugin's hyperparameter errors like config errors, prefixed with the config path ``where``."""
    lines = []
    for err in exc.errors():
        line = format_error(model, err)
        if err.get("type") == "extra_forbidden":
            keys = ", ".join(model.model_fields) or "none"
            line = f"{line.split(':')[0]}: unknown key; {owner} takes hyperparameters: {keys}"
        lines.append(f"{where}.{line}")
    return "\n".join(dict.fromkeys(lines))
