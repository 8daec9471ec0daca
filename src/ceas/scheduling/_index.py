"""Vectorised index helpers shared by the validator and the policies (pairs to positions, nodes to links, groups)."""

from __future__ import annotations

import numpy as np

from ceas.scheduling.views import InventoryView

__all__ = ["group_rank", "pair_index", "primary_link"]


def pair_index(inventory: InventoryView, ids: np.ndarray) -> np.ndarray:
    """Positions of pair ``ids`` in the inventory's pair arrays (shape of ``ids``); -1 where an id is not live."""
    ids = np.asarray(ids, dtype=np.int64)
    n = inventory.n_pairs
    if n == 0:
        return np.full(ids.shape, -1, dtype=np.int64)
    order = np.argsort(inventory.pair_id, kind="stable")
    sorted_ids = inventory.pair_id[order]
    pos = np.minimum(np.searchsorted(sorted_ids, ids), n - 1)
    return np.where(sorted_ids[pos] == ids, order[pos], -1)


def primary_link(inventory: InventoryView, n_nodes: int) -> np.ndarray:
    """Primary link of each node: its link with the highest ``rate_hz`` (ties: lowest index); -1 if it has none.

    Fresh-pair requests and MAC tags of a node use its primary link. Shape (N,), int64.
    """
    primary = np.full(n_nodes, -1, dtype=np.int64)
    ln = inventory.link_node
    links = np.flatnonzero(ln < n_nodes)
    links = links[np.lexsort((links, -inventory.rate_hz[links], ln[links]))]
    first = np.ones(links.shape[0], dtype=bool)
    first[1:] = ln[links[1:]] != ln[links[:-1]]
    primary[ln[links[first]]] = links[first]
    return primary


def group_rank(groups: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort items by (group, key) and rank them inside their group.

    Parameters
    ----------
    groups : (P,) int
        Group of each item (e.g. its node).
    key : (P,) float
        Sort key inside a group (ascending).

    Returns
    -------
    order : (P,) int
        Item indices sorted by group, then key, then index (stable).
    rank : (P,) int
        ``rank[i]`` is the 0-based position of item ``order[i]`` inside its group.
    """
    order = np.lexsort((np.arange(groups.shape[0]), key, groups))
    g = groups[order]
    start = np.ones(g.shape[0], dtype=bool)
    start[1:] = g[1:] != g[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(g.shape[0]), 0))
    return order, np.arange(g.shape[0]) - first
