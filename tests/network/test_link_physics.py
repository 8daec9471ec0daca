"""Link physics closed forms (SPEC §4) and the per-link table."""

import math

import networkx as nx
import numpy as np
import pytest

from ceas.errors import UnknownNameError, ValidationError
from ceas.network import LinkParams, MemoryParams
from ceas.network.links import (
    arm_transmissivity,
    attempt_period_s,
    initial_fidelity,
    link_coherence_s,
    link_table,
    success_probability,
)


def test_spec_numbers_for_a_20_km_link():
    eta = float(arm_transmissivity(20.0, eta0=0.5, alpha_db_per_km=0.2))
    assert eta == pytest.approx(0.5 * 10 ** (-0.2), rel=1e-15)  # 2 dB over the 10 km arm
    assert float(success_probability(eta, scheme="single_click", theta=0.05)) == pytest.approx(
        0.1 * eta, rel=1e-15
    )
    assert float(success_probability(eta, scheme="double_click", theta=0.05)) == pytest.approx(
        eta**2 / 2, rel=1e-15
    )
    assert float(attempt_period_s(20.0, c_km_per_s=2e5)) == pytest.approx(1e-4, rel=1e-15)
    assert initial_fidelity(scheme="single_click", theta=0.05, double_click_fidelity=1.0) == 0.95
    assert initial_fidelity(scheme="double_click", theta=0.05, double_click_fidelity=0.9) == 0.9


def test_coherence_of_a_pair_in_two_memories():
    assert float(link_coherence_s(0.2, 0.3)) == pytest.approx(0.12, rel=1e-15)
    assert float(link_coherence_s(0.2, math.inf)) == 0.2
    assert float(link_coherence_s(math.inf, math.inf)) == math.inf
    with pytest.raises(ValidationError, match=r"t_coh_s must be in \(0, inf\), got 0"):
        link_coherence_s(0.0, 1.0)


def test_link_table_follows_the_edges():
    G = nx.Graph()
    G.add_node(0, role="qpu", t_coh_s=0.5)
    G.add_node(1, role="qpu", t_coh_s=0.25)
    G.add_node(2, role="broker", t_coh_s=math.inf)
    G.add_edge(0, 2, length_km=4.0)
    G.add_edge(1, 2, length_km=30.0)
    table = link_table(G, LinkParams(), MemoryParams())
    assert table.edges == ((0, 2), (1, 2))
    eta = 0.5 * 10 ** (-0.2 * np.array([2.0, 15.0]) / 10)
    np.testing.assert_allclose(table.p_success, 0.1 * eta, rtol=1e-15)
    np.testing.assert_allclose(table.rate_hz, 0.1 * eta / (np.array([4.0, 30.0]) / 2e5), rtol=1e-14)
    np.testing.assert_allclose(
        table.cutoff_s, np.array([0.5, 0.25]) * math.log(0.7 / 0.55), rtol=1e-14
    )


def test_unknown_scheme_and_dead_links():
    with pytest.raises(UnknownNameError, match="did you mean 'single_click'"):
        success_probability(0.5, scheme="single-click", theta=0.05)
    G = nx.Graph()
    G.add_node(0, role="qpu", t_coh_s=1.0)
    G.add_node(1, role="broker", t_coh_s=1.0)
    G.add_edge(0, 1, length_km=9000.0)
    with pytest.raises(ValidationError, match="can never herald a pair"):
        link_table(G, LinkParams(alpha_db_per_km=10.0), MemoryParams())
