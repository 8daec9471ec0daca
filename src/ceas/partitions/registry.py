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

import difflib
from collections.abc import Callable

from ceas.errors import ConfigError, UnknownNameError

__all__ = ["get_scheme", "make_scheme", "register_scheme", "scheme_names"]

_REGISTRY: dict[str, type] = {}


def register_scheme(name: str) -> Callable[[type], type]:
    """Class decorator: register a scheme class ``cls(spec, **options)`` under ``name``."""

    def decorate(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ConfigError(f"partition scheme {name!r} is already registered")
        _REGISTRY[name] = cls
        return cls

    return decorate


def scheme_names() -> list[str]:
    """The registered names, sorted."""
    return sorted(_REGISTRY)


def get_scheme(name: str) -> type:
    """The class registered as ``name``; an unknown name raises :class:`UnknownNameError` with the closest one."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        valid = scheme_names()
        close = difflib.get_close_matches(str(name), valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(
            f"partition scheme must be one of {valid}, got {name!r}{hint}"
        ) from None


def make_scheme(name: str, spec, **options):
    """Build the scheme ``name`` for circuit ``spec`` with its keyword ``options``."""
    return get_scheme(name)(spec, **options)
