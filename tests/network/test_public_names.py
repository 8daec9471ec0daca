"""No two public names of the package mean different things.

Two classes called ``InventoryView`` (the scheduler's view and the network's snapshot) and two ``PURPOSES`` tuples
(request columns and ledger purposes) used to coexist, so ``from ceas.network import *`` next to
``from ceas.scheduling import *`` silently swapped one for the other. A name exported by several modules must be the
same object (a re-export), never a second definition.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections import defaultdict

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
