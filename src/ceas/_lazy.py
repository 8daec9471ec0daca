"""Import heavy third-party modules on first use, so that commands which never touch them start fast.

``stats = lazy_import("scipy.stats")`` at module level replaces ``from scipy import stats``: the first attribute
access imports the module (once per process) and every later one goes straight to it. ``ceas --help``,
``ceas validate`` and ``ceas show`` then import no scipy.stats, networkx, matplotlib or cryptography at all.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


class LazyModule:
    """Stand-in for the module ``name``; imports it on the first attribute access."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str):
        module = self._module
        if module is None:
            module = importlib.import_module(self._name)
            object.__setattr__(self, "_module", module)
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not yet imported"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_import(name: str) -> LazyModule:
    """A :class:`LazyModule` for the dotted module ``name``."""
    return LazyModule(name)


def lazy_exports(package: str, exports: dict[str, str]):
    """``__getattr__`` and ``__dir__`` for a package whose public names are imported on first use (PEP 562).

    ``exports`` maps each name to the module that defines it. Use at the end of the package's ``__init__``::

        __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

    ``import ceas.network.params`` (what checking a config needs) then no longer imports every module of the layer.
    """

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
