"""Plugins from outside the package, and the code version of a run.

A plugin module registers its pieces when imported (``@register_aggregator``, ``@register_attack``,
``@register_policy(...)``, ``@register_topology(...)``, ``register_entangler(...)``, ``@register_scheme(...)``).
Two ways to load it:

* the command line: ``ceas run paper --plugin mypkg.mymod`` (repeatable; on run, reproduce, sweep, validate, show);
* an installed package's entry point in the group ``ceas.plugins`` (``[project.entry-points."ceas.plugins"]``,
  ``mine = "mypkg.mymod"``), loaded by every command.

A run folder records the plugin modules that were loaded and the code version (:func:`provenance`): a SHA-256 over
the ``ceas`` package's source files and the plugin modules' sources. ``reproduce`` and ``sweep`` reuse a finished run
only when its configuration, code version and plugins all match.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ceas.errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "activate", "code_version", "load", "loaded", "provenance"]

ENTRY_POINT_GROUP = "ceas.plugins"
_LOADED: list[str] = []
_PACKAGE_DIGEST: str | None = None


def load(modules: Iterable[str]) -> list[str]:
    """Import each module (registering its plugins); one ConfigError line if one cannot be imported."""
    names = []
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any failure of a user's module is one line, not a traceback
            raise ConfigError(
                f"--plugin {module!r} cannot be imported: {type(exc).__name__}: {exc}".splitlines()[
                    0
                ]
            ) from None
        names.append(module)
        if module not in _LOADED:
            _LOADED.append(module)
    return names


def load_entry_points() -> list[str]:
    """Load every entry point of the ``ceas.plugins`` group; returns the modules they live in."""
    modules = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(
                f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r} cannot be loaded: "
                f"{type(exc).__name__}: {exc}".splitlines()[0]
            ) from None
        module = ep.value.split(":")[0].strip()
        modules.append(module)
        if module not in _LOADED:
            _LOADED.append(module)
    return modules


def activate(modules: Iterable[str] = ()) -> tuple[str, ...]:
    """Load the entry-point plugins and ``modules`` (the ``--plugin`` options); returns every plugin module loaded."""
    load_entry_points()
    load(modules)
    return loaded()


def loaded() -> tuple[str, ...]:
    """Plugin modules loaded in this process, sorted."""
    return tuple(sorted(_LOADED))


def _package_digest() -> str:
    global _PACKAGE_DIGEST
    if _PACKAGE_DIGEST is None:
        root = Path(__file__).resolve().parent
        h = hashlib.sha256()
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".toml") and "__pycache__" not in path.parts:
                h.update(
                    path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0"
                )
        _PACKAGE_DIGEST = h.hexdigest()
    return _PACKAGE_DIGEST


def code_version(plugins: Iterable[str] = ()) -> str:
    """SHA-256 of the ``ceas`` package's source (``.py`` and preset ``.toml`` files) and the plugin modules' source."""
    h = hashlib.sha256(_package_digest().encode())
    for module in sorted(set(plugins)):
        mod = importlib.import_module(module)
        try:
            source = inspect.getsource(mod)
        except (OSError, TypeError):
            source = repr(getattr(mod, "__file__", module))
        h.update(b"\0" + module.encode() + b"\0" + source.encode())
    return h.hexdigest()


def provenance() -> dict[str, Any]:
    """What made a run: the plugin modules loaded and the code version (written into the run's summary)."""
    plugins = loaded()
    return {"plugins": list(plugins), "code_version": code_version(plugins)}
