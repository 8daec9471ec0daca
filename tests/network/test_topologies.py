"""Topology builders, GraphML input, validation errors and the most reliable path."""

import itertools
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceas.errors import ProtocolError, UnknownNameError, ValidationError
from ceas.network import LinkParams, MemoryParams, NetworkParams, QuantumNetwork, TopologyParams
from ceas.network.links import annotate_links
from ceas.network.topology import (
    assign_coherence,
    broker_node,
    build_topology,
    get_topology_builder,
    most_reliable_path,
    qpu_nodes,
    read_graphml,
    validate_topology,
)


def build(**kw):
    return build_topology(TopologyParams(**kw), MemoryParams(), np.random.default_rng(3))


def test_star_default_is_spec_sized_with_heterogeneous_lengths():
    G = build()
    assert G.number_of_nodes() == 51 and G.number_of_edges() == 50
    assert broker_node(G) == 50 and qpu_nodes(G) == list(range(50))
    lengths = np.array([G.edges[k, 50]["length_km"] for k in range(50)])
    assert lengths.min() >= 2 and lengths.max() <= 40 and lengths.std() > 5
    t = np.array([G.nodes[k]["t_coh_s"] for k in range(50)])
    assert t.min() >= 0.05 and t.max() <= 1.0
    assert G.nodes[50]["t_coh_s"] == math.inf  # ideal broker memory by default


def test_grid_has_broker_in_the_middle():
    G = build(kind="grid", n_nodes=24)
    validate_topology(G)
    assert len(qpu_nodes(G)) == 24 and G.degree(broker_node(G)) == 4
    assert max(d for _, d in G.degree) <= 4


@pytest.mark.parametrize("kind", ["waxman", "random_geometric"])
def test_geometric_topologies_have_repeaters_and_euclidean_lengths(kind):
    G = build(kind=kind, n_nodes=30, n_repeaters=6)
    roles = [r for _, r in G.nodes(data="role")]
    assert roles.count("qpu") == 30 and roles.count("repeater") == 6 and roles.count("broker") == 1
    assert nx.is_connected(G)
    for u, v, length in G.edges(data="length_km"):
        pu, pv = np.array(G.nodes[u]["pos"]), np.array(G.nodes[v]["pos"])
        assert length == pytest.approx(float(np.hypot(*(pu - pv))), rel=1e-12)
    # the broker is the node nearest the centre of the area
    pos = np.array([G.nodes[v]["pos"] for v in G.nodes])
    assert broker_node(G) == int(np.argmin(np.hypot(pos[:, 0] - 50, pos[:, 1] - 50)))


def test_sparse_random_topology_is_rejected_after_max_draws():
    with pytest.raises(ValidationError, match="disconnected in all 3 draws"):
        build(kind="random_geometric", radius_km=1.0, max_draws=3)


def test_graphml_round_trip(tmp_path):
    G = nx.Graph()
    G.add_node("hub", role="broker")
    G.add_node("alice", t_coh_s=0.3)
    G.add_node("bob")
    G.add_node("r1", role="repeater")
    G.add_edge("alice", "hub", length_km=12.5)
    G.add_edge("bob", "r1", length_km=7.0)
    G.add_edge("r1", "hub", length_km=9.0)
    path = tmp_path / "net.graphml"
    nx.write_graphml(G, path)
    H = read_graphml(path)
    labels = {d["label"]: v for v, d in H.nodes(data=True)}
    assert H.nodes[labels["hub"]]["role"] == "broker" and H.nodes[labels["bob"]]["role"] == "qpu"
    assert H.edges[labels["alice"], labels["hub"]]["length_km"] == 12.5
    net = QuantumNetwork.from_params(
        NetworkParams(topology=TopologyParams(kind="graphml", graphml_path=str(path))),
        np.random.default_rng(0),
    )
    assert net.graph.nodes[labels["alice"]]["t_coh_s"] == 0.3  # kept from the file
    assert net.n_links == 3


def _write(tmp_path, G):
    path = tmp_path / "bad.graphml"
    nx.write_graphml(G, path)
    return path


def _base():
    G = nx.Graph()
    G.add_node(0, role="broker")
    G.add_node(1)
    G.add_edge(0, 1, length_km=3.0)
    return G


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda G: G.add_node(7), "topology is disconnected"),
        (lambda G: G.add_edge(1, 2), r"link \(1, 2\) has no length_km"),
        (
            lambda G: G.add_edge(1, 2, length_km=0.0),
            r"link \(1, 2\) length_km must be in \(0, inf\), got 0.0",
        ),
        (lambda G: G.add_edge(1, 2, length_km=-4.0), "got -4.0"),
        (
            lambda G: G.nodes[1].update(t_coh=0.2),
            "node 1 has unknown attribute 't_coh'; allowed: role, t_coh_s",
        ),
        (lambda G: G.edges[0, 1].update(lenght_km=2), "unknown attribute 'lenght_km'"),
        (lambda G: G.nodes[0].update(role="qpu"), "0 broker nodes"),
        (lambda G: G.nodes[1].update(role="broker"), "2 broker nodes"),
        (
            lambda G: G.nodes[1].update(role="router"),
            "role 'router'; allowed: one of qpu, broker, repeater",
        ),
        (
            lambda G: G.nodes[1].update(t_coh_s=0.0),
            r"node 1 t_coh_s must be in \(0, inf\], got 0.0",
        ),
        (lambda G: G.add_edge(1, 1, length_km=1.0), "self-loop"),
    ],
)
def test_validation_names_the_problem(edit, message):
    G = _base()
    edit(G)
    with pytest.raises(ValidationError, match=message):
        validate_topology(G)


def test_graphml_file_errors(tmp_path):
    with pytest.raises(ValidationError, match="is not a file"):
        read_graphml(tmp_path / "missing.graphml")
    (tmp_path / "junk.graphml").write_text("<graphml><oops")
    with pytest.raises(ValidationError, match="is not valid GraphML"):
        read_graphml(tmp_path / "junk.graphml")
    D = nx.DiGraph()
    D.add_edge(0, 1, length_km=1.0)
    with pytest.raises(ValidationError, match="directed or multi-graph"):
        read_graphml(_write(tmp_path, D))
    G = _base()
    G.add_node(5)
    with pytest.raises(ValidationError, match="disconnected"):
        read_graphml(_write(tmp_path, G))


def test_network_rejects_graph_without_coherence_times():
    with pytest.raises(ValidationError, match="has no t_coh_s"):
        QuantumNetwork(_base(), LinkParams(), MemoryParams(), np.random.default_rng(0))
    G = assign_coherence(_base(), MemoryParams(), np.random.default_rng(0))
    assert QuantumNetwork(G, LinkParams(), MemoryParams(), np.random.default_rng(0)).n_links == 1


def test_unknown_topology_builder_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="did you mean 'waxman'"):
        get_topology_builder("waxmann")


def test_same_seed_same_graph():
    a = build_topology(TopologyParams(kind="waxman"), MemoryParams(), np.random.default_rng(1))
    b = build_topology(TopologyParams(kind="waxman"), MemoryParams(), np.random.default_rng(1))
    assert nx.utils.graphs_equal(a, b)


@st.composite
def reliability_graphs(draw):
    n = draw(st.integers(3, 7))
    G = nx.Graph()
    G.add_nodes_from(range(n))
    for u, v in itertools.combinations(range(n), 2):
        if draw(st.booleans()):
            G.add_edge(u, v, reliability=draw(st.floats(0.05, 1.0)))
    return G


@settings(max_examples=80, deadline=None)
@given(G=reliability_graphs())
def test_most_reliable_path_maximises_the_product_of_reliabilities(G):
    s, t = 0, max(G.nodes)
    if not nx.has_path(G, s, t):
        with pytest.raises(ProtocolError, match="no path joins"):
            most_reliable_path(G, s, t)
        return
    path = most_reliable_path(G, s, t)

    def product(p):
        return math.prod(G.edges[u, v]["reliability"] for u, v in itertools.pairwise(p))

    best = max(product(p) for p in nx.all_simple_paths(G, s, t))
    assert product(path) == pytest.approx(best, rel=1e-12)


def test_most_reliable_path_on_a_network_with_repeaters():
    G = build(kind="random_geometric", n_nodes=20, n_repeaters=5)
    H = annotate_links(G, LinkParams(), MemoryParams())
    w0 = (4 * 0.95 - 1) / 3
    for u, v, d in H.edges(data=True):
        expect = w0 * math.exp(-(d["attempt_s"] / d["p_success"]) / d["t_coh_s"])
        assert d["reliability"] == pytest.approx(expect, rel=1e-12)
    path = most_reliable_path(H, 0, broker_node(H))
    assert path[0] == 0 and path[-1] == broker_node(H)
    # a callable weight works too: fewest hops when every link counts the same
    hops = most_reliable_path(H, 0, broker_node(H), weight=lambda u, v, d: 0.5)
    assert len(hops) - 1 == nx.shortest_path_length(H, 0, broker_node(H))
    with pytest.raises(UnknownNameError, match="node 999"):
        most_reliable_path(H, 0, 999)
    with pytest.raises(ValidationError, match="reliability of link"):
        most_reliable_path(H, 0, broker_node(H), weight=lambda u, v, d: 1.5)
