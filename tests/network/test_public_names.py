"""No two public names of the package mean different things.

Two classes called ``InventoryView`` (the scheduler's view and the network's snapshot) and two ``PURPOSES`` tuples
(request columns and ledger purposes) used to coexist, so ``from ceas.network import *`` next to
``from ceas.scheduling import *`` silently swapped one for the other. A name exported by several modules must be the
same object (a re-export), never a second definition.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections import defaultdict
from pathlib import Path

import pytest

import ceas


def _public_objects() -> dict[str, dict[int, list[str]]]:
    where: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for info in pkgutil.walk_packages(ceas.__path__, "ceas."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra (ray, flwr, gymnasium) that is not installed
            continue
        for name in getattr(module, "__all__", ()):
            where[name][id(getattr(module, name))].append(info.name)
    return where


def test_a_public_name_is_one_object_wherever_it_is_exported():
    clashes = {
        name: sorted(m for mods in objects.values() for m in mods)
        for name, objects in _public_objects().items()
        if len(objects) > 1
    }
    assert not clashes, f"public names bound to different objects: {clashes}"


def test_the_network_snapshot_and_the_scheduler_view_have_their_own_names():
    import ceas.network
    import ceas.scheduling

    assert ceas.scheduling.InventoryView is not ceas.network.InventorySnapshot
    assert not hasattr(ceas.network, "InventoryView")
    assert ceas.network.PAIR_PURPOSES[:3] == ceas.scheduling.PURPOSES
    assert not hasattr(ceas.network, "PURPOSES")


# Named in a docs page but deliberately not at the package level: an optional extra (gymnasium) and config literals
# that live with the config section.
_NOT_AT_PACKAGE_LEVEL = {"SchedulingEnv", "AggregatorName", "AttackName"}


@pytest.mark.parametrize("package", ["network", "scheduling", "consensus", "security"])
def test_every_public_name_a_docs_page_mentions_is_importable_from_its_package(package):
    """docs/<package>.md names functions and classes in backticks; each that one of the package's modules exports
    must also be importable as ``ceas.<package>.<name>``."""
    pkg = importlib.import_module(f"ceas.{package}")
    public = set()
    for info in pkgutil.walk_packages(pkg.__path__, f"ceas.{package}."):
        try:
            public |= set(getattr(importlib.import_module(info.name), "__all__", ()))
        except ImportError:
            continue
    text = (Path(ceas.__file__).parents[2] / "docs" / f"{package}.md").read_text()
    named = {token.split(".")[-1] for token in re.findall(r"`([A-Za-z_][\w.]*)", text)}
    missing = sorted(
        n for n in named & public if not hasattr(pkg, n) and n not in _NOT_AT_PACKAGE_LEVEL
    )
    assert not missing, f"docs/{package}.md names {missing}, which ceas.{package} does not export"


def test_the_documented_helpers_are_exported():
    import ceas.network
    import ceas.security

    assert ceas.security.poly1305_tag(bytes(32), bytes(64)) == bytes(
        16
    )  # r = 0, s = 0: the tag is 0
    assert ceas.network.fidelity_from_werner(1.0) == 1.0
    assert callable(ceas.network.report_table) and callable(ceas.network.arm_transmissivity)
