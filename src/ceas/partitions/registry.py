"""Registry of partition schemes, keyed by the name used in config files ("data", "unitary", "circuit").

Adding a scheme is one file::

    from ceas.partitions import register_scheme

    @register_scheme("my-scheme")
    class MyScheme:
        name = "my-scheme"

        def __init__(self, spec, **options): ...

        @classmethod
        def from_params(cls, params, spec): return cls(spec, ...)

        # n_qpus, pair_shape, links, pairs_per_link, expval, expval_and_jacobian (see PartitionScheme)
"""

from __future__ import annotations

from collections.abc import Callable

from ceas.errors import ValidationError
from ceas.registry import Registry

__all__ = ["SCHEMES", "get_scheme", "make_scheme", "register_scheme", "scheme_names"]


def _check_scheme(cls: object) -> None:
    if not hasattr(cls, "from_params"):
        raise ValidationError(f"a partition scheme needs a from_params classmethod, got {cls!r}")


SCHEMES: Registry = Registry(
    "partition scheme", "partitions.scheme", builtins="ceas.partitions", check=_check_scheme
)
"""Partition schemes by config name (``partitions.scheme``); see :mod:`ceas.registry` for the recipe."""


def register_scheme(name: str) -> Callable[[type], type]:
    """Class decorator: register a scheme class ``cls(spec, **options)`` under ``name``; its hyperparameters are a
    pydantic ``Params`` class attribute, set in a config as ``partitions.scheme_params``."""

    def decorate(cls: type) -> type:
        return SCHEMES.register(cls, name=name)

    return decorate


def scheme_names() -> list[str]:
    """The registered names, sorted."""
    return list(SCHEMES.names())


def get_scheme(name: str) -> type:
    """The class registered as ``name``; an unknown name raises :class:`UnknownNameError` with the closest one."""
    return SCHEMES.get_plugin(name)


def make_scheme(name: str, spec, **options):
    """Build the scheme ``name`` for circuit ``spec`` with its keyword ``options``."""
    return get_scheme(name)(spec, **options)
