"""Network topologies: the graph of QPUs, repeaters and the broker, with fibre lengths (SPEC §4).

Every builder returns a ``networkx.Graph`` with integer nodes: QPUs ``0 .. N-1`` (``role = "qpu"``), the broker
``N`` (``role = "broker"``) and repeaters after it (``role = "repeater"``). Edges carry ``length_km``; nodes carry
``t_coh_s`` (memory coherence time, seconds) once :func:`assign_coherence` has run, and ``pos`` (km) where the
topology is geometric.

=================== =====================================================================================
kind                graph
=================== =====================================================================================
``star``            each QPU linked to the broker by a fibre of length ~ U[length_min_km, length_max_km]
``grid``            the N + 1 lattice cells nearest the centre, broker in the middle, lengths ~ U[...]
``waxman``          Waxman random graph in an ``area_km`` square, with repeaters; lengths are distances
``random_geometric`` nodes within ``radius_km`` linked, with repeaters; lengths are distances
``graphml``         a user's file (:func:`read_graphml`)
=================== =====================================================================================

Builders follow the :class:`TopologyBuilder` protocol and are registered in :data:`TOPOLOGY_BUILDERS` under their
config name. :func:`validate_topology` rejects graphs the network layer cannot use (disconnected, missing or
non-positive lengths, unknown attributes, no broker) with a message naming the node or edge and the value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Protocol
from xml.etree.ElementTree import ParseError

import numpy as np

from ceas._lazy import lazy_import
from ceas.errors import ProtocolError, UnknownNameError, ValidationError
from ceas.network.params import MemoryParams, TopologyParams
from ceas.registry import Registry

nx = lazy_import("networkx")

__all__ = [
    "EDGE_ATTRIBUTES",
    "NODE_ATTRIBUTES",
    "ROLES",
    "TOPOLOGY_BUILDERS",
    "TopologyBuilder",
    "assign_coherence",
    "broker_node",
    "build_topology",
    "get_topology_builder",
    "graphml_topology",
    "grid_topology",
    "most_reliable_path",
    "qpu_nodes",
    "random_geometric_topology",
    "read_graphml",
    "star_topology",
    "validate_topology",
    "waxman_topology",
]

ROLES = ("qpu", "broker", "repeater")
NODE_ATTRIBUTES = ("role", "t_coh_s", "x", "y", "pos", "label")
"""Node attributes a topology may carry; any other name is rejected as a likely typo."""
EDGE_ATTRIBUTES = (
    "length_km",
    "id",
    "label",
    # written by ceas.network.links.annotate_links
    "p_success",
    "attempt_s",
    "f0",
    "t_coh_s",
    "cutoff_s",
    "reliability",
)
"""Edge attributes a topology may carry (``length_km`` is required)."""


class TopologyBuilder(Protocol):
    """Builds a graph from the topology parameters and a Generator (coherence times are assigned afterwards)."""

    def __call__(self, params: TopologyParams, rng: np.random.Generator) -> nx.Graph: ...


def _lengths(params: TopologyParams, rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.uniform(params.length_min_km, params.length_max_km, size=size)


def star_topology(params: TopologyParams, rng: np.random.Generator) -> nx.Graph:
    """QPUs ``0..N-1`` each linked to the broker ``N``; fibre lengths ~ U[length_min_km, length_max_km].

    Link ``k`` of the resulting network joins QPU ``k`` to the broker.
    """
    n = params.n_nodes
    G = nx.Graph(kind="star")
    G.add_nodes_from(range(n), role="qpu")
    G.add_node(n, role="broker")
    for k, length in enumerate(_lengths(params, rng, n)):
        G.add_edge(k, n, length_km=float(length))
    return G


def grid_topology(params: TopologyParams, rng: np.random.Generator) -> nx.Graph:
    """The N + 1 cells of a square lattice nearest its centre: the broker at the centre, QPUs around it.

    Neighbouring cells are linked by fibres of length ~ U[length_min_km, length_max_km]; QPUs relay for each
    other (pairs to the broker are swapped along paths). ``pos`` is the cell times the mean length, in km.
    """
    n = params.n_nodes
    side = math.ceil(math.sqrt(n + 1))
    cells = np.array([(i, j) for i in range(side) for j in range(side)], dtype=float)
    centre = (side - 1) / 2.0
    dist = np.hypot(cells[:, 0] - centre, cells[:, 1] - centre)
    chosen = cells[np.lexsort((cells[:, 1], cells[:, 0], dist))[: n + 1]]
    # chosen[0] is nearest the centre: the broker; relabel so QPUs are 0..n-1 and the broker n
    labels = {tuple(c): (n if k == 0 else k - 1) for k, c in enumerate(chosen)}
    spacing = (params.length_min_km + params.length_max_km) / 2.0
    G = nx.Graph(kind="grid")
    for cell, node in sorted(labels.items(), key=lambda item: item[1]):
        G.add_node(
            node,
            role="broker" if node == n else "qpu",
            pos=(cell[0] * spacing, cell[1] * spacing),
        )
    pairs = [
        (labels[c], labels[(c[0] + di, c[1] + dj)])
        for c in sorted(labels, key=labels.get)
        for di, dj in ((1, 0), (0, 1))
        if (c[0] + di, c[1] + dj) in labels
    ]
    for (u, v), length in zip(pairs, _lengths(params, rng, len(pairs))):
        G.add_edge(u, v, length_km=float(length))
    return G


def _assign_roles(G: nx.Graph, params: TopologyParams, rng: np.random.Generator) -> nx.Graph:
    """Broker = node nearest the centre; N random others are QPUs; the rest repeaters; relabel to the standard."""
    n = params.n_nodes
    nodes = list(G.nodes)
    pos = np.array([G.nodes[v]["pos"] for v in nodes], dtype=float)
    centre = params.area_km / 2.0
    broker = nodes[int(np.argmin(np.hypot(pos[:, 0] - centre, pos[:, 1] - centre)))]
    others = [v for v in nodes if v != broker]
    qpus = [others[i] for i in sorted(rng.choice(len(others), size=n, replace=False))]
    qpu_set = set(qpus)
    repeaters = [v for v in others if v not in qpu_set]
    mapping = {v: k for k, v in enumerate(qpus)}
    mapping[broker] = n
    mapping.update({v: n + 1 + k for k, v in enumerate(repeaters)})
    H = nx.Graph(kind=G.graph.get("kind"))
    for old in sorted(mapping, key=mapping.get):
        new = mapping[old]
        role = "qpu" if new < n else ("broker" if new == n else "repeater")
        H.add_node(new, role=role, pos=tuple(float(x) for x in G.nodes[old]["pos"]))
    for u, v in G.edges:
        pu, pv = np.array(H.nodes[mapping[u]]["pos"]), np.array(H.nodes[mapping[v]]["pos"])
        H.add_edge(mapping[u], mapping[v], length_km=float(np.hypot(*(pu - pv))))
    return H


def _connected_draw(
    draw: Callable[[int], nx.Graph], params: TopologyParams, rng: np.random.Generator
) -> nx.Graph:
    """Redraw a random geometric graph until it is connected (at most ``max_draws`` times)."""
    for _ in range(params.max_draws):
        G = draw(int(rng.integers(2**32)))
        if nx.is_connected(G):
            return _assign_roles(G, params, rng)
    raise ValidationError(
        f"topology {params.kind!r} was disconnected in all {params.max_draws} draws; allowed: denser "
        "parameters (larger radius_km or waxman_alpha/waxman_beta, smaller area_km)"
    )


def waxman_topology(params: TopologyParams, rng: np.random.Generator) -> nx.Graph:
    """Waxman graph of N QPUs, the broker and ``n_repeaters`` repeaters in an ``area_km`` square (lengths in km)."""
    total = params.n_nodes + 1 + params.n_repeaters
    domain = (0.0, 0.0, params.area_km, params.area_km)
    return _connected_draw(
        lambda seed: nx.waxman_graph(
            total, beta=params.waxman_beta, alpha=params.waxman_alpha, domain=domain, seed=seed
        ),
        params,
        rng,
    )


def random_geometric_topology(params: TopologyParams, rng: np.random.Generator) -> nx.Graph:
    """Random geometric graph: nodes uniform in an ``area_km`` square, linked when closer than ``radius_km``."""
    total = params.n_nodes + 1 + params.n_repeaters

    def draw(seed: int) -> nx.Graph:
        G = nx.random_geometric_graph(total, params.radius_km / params.area_km, seed=seed)
        for v in G.nodes:
            G.nodes[v]["pos"] = tuple(params.area_km * float(x) for x in G.nodes[v]["pos"])
        return G

    return _connected_draw(draw, params, rng)


def read_graphml(path: str | Path) -> nx.Graph:
    """Read a user's topology from GraphML and relabel its nodes 0..n-1 in file order.

    Nodes may carry ``role`` (qpu, broker, repeater; default qpu), ``t_coh_s``, ``x``, ``y``; the original node id is
    kept as ``label``. Edges must carry ``length_km``. The result is checked by :func:`validate_topology`.

    Raises
    ------
    ValidationError
        Missing or unreadable file, a directed or multi-graph, or any :func:`validate_topology` failure.
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError(
            f"graphml_path {str(path)!r} is not a file; allowed: an existing GraphML file"
        )
    try:
        raw = nx.read_graphml(path)
    except (ParseError, nx.NetworkXError, ValueError, KeyError) as exc:
        raise ValidationError(f"graphml_path {str(path)!r} is not valid GraphML: {exc}") from exc
    if raw.is_directed() or raw.is_multigraph():
        raise ValidationError(
            f"graphml_path {str(path)!r} holds a directed or multi-graph; allowed: an undirected simple graph "
            "(one fibre per node pair)"
        )
    mapping = {v: k for k, v in enumerate(raw.nodes)}
    G = nx.Graph(kind="graphml")
    for v, k in mapping.items():
        attrs = dict(raw.nodes[v])
        attrs.setdefault("label", str(v))
        attrs.setdefault("role", "qpu")
        G.add_node(k, **attrs)
    for u, v, attrs in raw.edges(data=True):
        G.add_edge(mapping[u], mapping[v], **attrs)
    if all("x" in G.nodes[v] and "y" in G.nodes[v] for v in G.nodes):
        for v in G.nodes:
            G.nodes[v]["pos"] = (float(G.nodes[v]["x"]), float(G.nodes[v]["y"]))
    validate_topology(G)
    return G


def graphml_topology(params: TopologyParams, rng: np.random.Generator) -> nx.Graph:
    """The topology in ``params.graphml_path`` (``rng`` unused: the file fixes the graph)."""
    return read_graphml(params.graphml_path)


def _check_builder(builder: object) -> None:
    if not callable(builder):
        raise ValidationError(f"a topology builder must be callable, got {builder!r}")


TOPOLOGY_BUILDERS: Registry = Registry(
    "topology",
    "network.topology.kind",
    check=_check_builder,
    initial={
        "star": star_topology,
        "grid": grid_topology,
        "waxman": waxman_topology,
        "random_geometric": random_geometric_topology,
        "graphml": graphml_topology,
    },
)
"""Topology builders by config name (``network.topology.kind``); see :mod:`ceas.registry` for the recipe."""


def register_topology(name: str) -> Callable[[TopologyBuilder], TopologyBuilder]:
    """Decorator: register ``builder(params, rng, **hyperparameters) -> nx.Graph`` as ``network.topology.kind =
    name``. Hyperparameters are declared by a pydantic ``Params`` attribute of the builder and set in a config as
    ``network.topology.kind_params``; the graph must pass :func:`validate_topology`."""

    def decorate(builder: TopologyBuilder) -> TopologyBuilder:
        return TOPOLOGY_BUILDERS.register(builder, name=name)

    return decorate


def get_topology_builder(name: str) -> TopologyBuilder:
    """The builder registered as ``name``; an unknown name raises UnknownNameError with the closest match."""
    return TOPOLOGY_BUILDERS.get_plugin(name)


def assign_coherence(G: nx.Graph, memory: MemoryParams, rng: np.random.Generator) -> nx.Graph:
    """A copy of ``G`` where every node lacking ``t_coh_s`` gets one (seconds).

    QPUs and repeaters draw T log-uniform in [coherence_min_s, coherence_max_s]; the broker gets
    ``broker_coherence_s`` (``inf``, an ideal memory, when None). One draw per node in node order, whether or not
    the node already has a value, so the streams do not shift when a file fixes some of them.
    """
    H = G.copy()
    nodes = list(H.nodes)
    lo, hi = math.log(memory.coherence_min_s), math.log(memory.coherence_max_s)
    draws = np.exp(rng.uniform(lo, hi, size=len(nodes)))
    broker_t = math.inf if memory.broker_coherence_s is None else memory.broker_coherence_s
    for v, t in zip(nodes, draws):
        if "t_coh_s" not in H.nodes[v]:
            H.nodes[v]["t_coh_s"] = broker_t if H.nodes[v].get("role") == "broker" else float(t)
    return H


def validate_topology(G: nx.Graph) -> None:
    """Check that ``G`` is a usable network topology; raise ValidationError naming the first problem.

    Checks: an undirected simple graph with at least one QPU and exactly one broker; node ``role`` in
    :data:`ROLES`; only known node and edge attributes; no self-loops; every edge has a finite ``length_km`` > 0;
    every ``t_coh_s`` present is > 0 (``inf`` allowed); the graph is connected.
    """
    if not isinstance(G, nx.Graph) or G.is_directed() or G.is_multigraph():
        raise ValidationError(
            f"topology must be an undirected simple networkx Graph, got {type(G).__name__}"
        )
    if G.number_of_edges() == 0:
        raise ValidationError(
            f"topology has {G.number_of_nodes()} nodes and no links; allowed: at least one link"
        )
    for v, attrs in G.nodes(data=True):
        unknown = sorted(set(attrs) - set(NODE_ATTRIBUTES))
        if unknown:
            raise ValidationError(
                f"node {v!r} has unknown attribute {unknown[0]!r}; allowed: {', '.join(NODE_ATTRIBUTES)}"
            )
        role = attrs.get("role", "qpu")
        if role not in ROLES:
            raise ValidationError(
                f"node {v!r} has role {role!r}; allowed: one of {', '.join(ROLES)}"
            )
        if "t_coh_s" in attrs:
            t = attrs["t_coh_s"]
            if not isinstance(t, (int, float, np.floating, np.integer)) or not t > 0:
                raise ValidationError(f"node {v!r} t_coh_s must be in (0, inf], got {t!r}")
    roles = [G.nodes[v].get("role", "qpu") for v in G.nodes]
    if roles.count("broker") != 1:
        raise ValidationError(
            f"topology has {roles.count('broker')} broker nodes; allowed: exactly one node with role 'broker'"
        )
    if "qpu" not in roles:
        raise ValidationError("topology has no QPU; allowed: at least one node with role 'qpu'")
    for u, v, attrs in G.edges(data=True):
        if u == v:
            raise ValidationError(
                f"node {u!r} has a self-loop; allowed: links between distinct nodes"
            )
        unknown = sorted(set(attrs) - set(EDGE_ATTRIBUTES))
        if unknown:
            raise ValidationError(
                f"link ({u!r}, {v!r}) has unknown attribute {unknown[0]!r}; allowed: {', '.join(EDGE_ATTRIBUTES)}"
            )
        if "length_km" not in attrs:
            raise ValidationError(
                f"link ({u!r}, {v!r}) has no length_km; allowed: a length in (0, inf) km"
            )
        length = attrs["length_km"]
        ok = isinstance(length, (int, float, np.floating, np.integer)) and not isinstance(
            length, bool
        )
        if not (ok and math.isfinite(length) and length > 0):
            raise ValidationError(
                f"link ({u!r}, {v!r}) length_km must be in (0, inf), got {length!r}"
            )
    if not nx.is_connected(G):
        parts = sorted(nx.connected_components(G), key=len, reverse=True)
        stray = min(parts[1], key=str)
        raise ValidationError(
            f"topology is disconnected ({len(parts)} components; node {stray!r} cannot reach node "
            f"{min(parts[0], key=str)!r}); allowed: a connected graph"
        )


def broker_node(G: nx.Graph):
    """The node whose role is ``broker``."""
    for v, role in G.nodes(data="role"):
        if role == "broker":
            return v
    raise ValidationError(
        "topology has 0 broker nodes; allowed: exactly one node with role 'broker'"
    )


def qpu_nodes(G: nx.Graph) -> list:
    """The QPU nodes, in node order."""
    return [v for v, role in G.nodes(data="role") if role in (None, "qpu")]


def build_topology(
    params: TopologyParams, memory: MemoryParams, rng: np.random.Generator
) -> nx.Graph:
    """Build, give coherence times to, and validate the topology described by ``params``.

    Parameters
    ----------
    params : TopologyParams
        Which graph.
    memory : MemoryParams
        Coherence-time distribution for nodes without ``t_coh_s``.
    rng : numpy.random.Generator
        Source of every random choice (lengths, positions, roles, coherence times).

    Examples
    --------
    >>> G = build_topology(TopologyParams(n_nodes=3), MemoryParams(), np.random.default_rng(0))
    >>> sorted(G.nodes(data="role"))
    [(0, 'qpu'), (1, 'qpu'), (2, 'qpu'), (3, 'broker')]
    """
    hyper = TOPOLOGY_BUILDERS.params(
        params.kind, params.kind_params, "network.topology.kind_params"
    )
    G = get_topology_builder(params.kind)(params, rng, **dict(hyper))
    G = assign_coherence(G, memory, rng)
    validate_topology(G)
    return G


def _reliability_weight(G: nx.Graph, weight: str | Callable) -> Callable:
    if callable(weight):
        get = weight
    else:

        def get(u, v, d):
            if weight not in d:
                raise ValidationError(
                    f"link ({u!r}, {v!r}) has no {weight!r} attribute; allowed: an attribute every link carries "
                    "(annotate_links writes 'reliability') or a callable"
                )
            return d[weight]

    def cost(u, v, d):
        r = float(get(u, v, d))
        if not 0.0 < r <= 1.0:
            raise ValidationError(
                f"reliability of link ({u!r}, {v!r}) must be in (0, 1], got {r!r}"
            )
        return -math.log(r)

    return cost


def most_reliable_path(G: nx.Graph, source, target, weight: str | Callable = "reliability") -> list:
    """The path from ``source`` to ``target`` with the largest product of link reliabilities.

    Parameters
    ----------
    G : networkx.Graph
        Topology; with the default ``weight`` it must be annotated (:func:`ceas.network.links.annotate_links`).
    source, target : node
        End nodes.
    weight : str or callable
        Edge attribute holding a reliability in (0, 1], or ``f(u, v, attrs) -> reliability``. The path minimises
        the sum of ``-log(reliability)`` (Dijkstra).

    Returns
    -------
    list
        Nodes from ``source`` to ``target``.

    Raises
    ------
    UnknownNameError
        ``source`` or ``target`` is not a node.
    ProtocolError
        No path joins them.

    Examples
    --------
    >>> G = nx.Graph()
    >>> G.add_edge(0, 1, reliability=0.9); G.add_edge(1, 2, reliability=0.9); G.add_edge(0, 2, reliability=0.5)
    >>> most_reliable_path(G, 0, 2)
    [0, 1, 2]
    """
    for node in (source, target):
        if node not in G:
            raise UnknownNameError(
                f"node {node!r} is not in the topology; allowed: one of its {len(G)} nodes"
            )
    try:
        return nx.dijkstra_path(G, source, target, weight=_reliability_weight(G, weight))
    except nx.NetworkXNoPath as exc:
        raise ProtocolError(f"no path joins node {source!r} to node {target!r}") from exc
