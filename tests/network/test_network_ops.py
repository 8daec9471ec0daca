"""The clock API's operations give the closed forms at the moment of use."""

import math

import numpy as np
import pytest

from ceas.errors import ValidationError
from ceas.network import (
    LinkParams,
    MemoryParams,
    NetworkParams,
    QuantumNetwork,
    StreamDemand,
    TopologyParams,
)
from ceas.network.purification import bbpssw, dejmps
from ceas.network.werner import cutoff_age, fidelity_at_age, werner_bell_vector


@pytest.fixture
def net():
    params = NetworkParams(topology=TopologyParams(n_nodes=6), memory=MemoryParams(slots=8))
    n = QuantumNetwork.from_params(params, np.random.default_rng(12))
    n.advance(0.5)
    return n


def test_fidelity_at_use_is_the_werner_decay_of_each_pair(net):
    view = net.link_view(2)
    t_coh = net.table.t_coh_s[2]
    f0 = net.table.f0[2]
    assert view.n >= 3
    np.testing.assert_allclose(
        view.fidelity, fidelity_at_age(f0, view.age_s, t_coh), rtol=0, atol=1e-14
    )
    np.testing.assert_allclose(view.cutoff_age_s, net.table.cutoff_s[2], rtol=0, atol=1e-12)
    later = net.now + 0.004
    d = net.request(2, 2, purpose="payload", at_s=later, order="oldest")
    expect = fidelity_at_age(f0, later - view.created_s[:2], t_coh)
    np.testing.assert_allclose(d.fidelity, expect, rtol=0, atol=1e-14)
    np.testing.assert_allclose(d.werner, (4 * expect - 1) / 3, rtol=0, atol=1e-14)
    assert np.all(d.time_s == later) and d.pair_id.tolist() == view.pair_id[:2].tolist()


def test_selection_orders(net):
    view = net.link_view(1)
    oldest = net.request(1, 1, purpose="payload", order="oldest")
    assert oldest.pair_id[0] == view.pair_id[np.argmin(view.created_s)]
    view = net.link_view(1)
    freshest = net.request(1, 1, purpose="payload", order="freshest")
    assert freshest.pair_id[0] == view.pair_id[np.argmax(view.fidelity)]
    view = net.link_view(1)
    expiring = net.request(1, 1, purpose="payload", order="expiring")
    assert expiring.pair_id[0] == view.pair_id[np.argmin(view.expiry_s)]


def test_min_fidelity_filters_pairs(net):
    view = net.link_view(0)
    threshold = float(np.median(view.fidelity))
    eligible = int((view.fidelity >= threshold).sum())
    got = net.request_many(
        np.array([100, 0, 0, 0, 0, 0]), purpose="payload", min_fidelity=threshold
    )
    assert got.n == eligible and np.all(got.fidelity >= threshold)


def test_views_have_documented_shapes(net):
    v = net.view()
    assert v.occupied.shape == (6, 8) == v.fidelity.shape == v.age_s.shape
    assert np.isnan(v.fidelity[~v.occupied]).all() and (v.pair_id[~v.occupied] == -1).all()
    assert np.all(v.time_to_expiry_s[v.occupied] > 0)
    assert np.array_equal(v.held, net.counters().held)
    lv = net.link_view((net.links[3][1], net.links[3][0]))  # node pair in either order
    assert lv.link == 3 and np.all(np.diff(lv.created_s) >= 0)


def test_swap_multiplies_werner_parameters_at_their_ages(net):
    broker = net.links[0][1]
    a, b = net.link_view(0), net.link_view(4)
    fa, fb = a.fidelity.max(), b.fidelity.max()
    result = net.swap([0, broker, 4], order="freshest")
    assert result.success and result.consumed.n == 2
    wa, wb = (4 * fa - 1) / 3, (4 * fb - 1) / 3
    pair = result.pair
    assert pair.werner_at(net.now) == pytest.approx(wa * wb, abs=1e-14)
    t0, t4 = net.graph.nodes[0]["t_coh_s"], net.graph.nodes[4]["t_coh_s"]
    assert pair.t_coh_s == pytest.approx(t0 * t4 / (t0 + t4), rel=1e-14)
    later = net.now + 0.01
    assert pair.werner_at(later) == pytest.approx(
        wa * wb * math.exp(-0.01 / pair.t_coh_s), abs=1e-14
    )
    with pytest.raises(ValidationError):
        pair.fidelity_at(net.now - 1)
    assert net.counters().consumed["swap"][[0, 4]].tolist() == [1, 1]


def test_failed_swaps_lose_the_pairs():
    params = NetworkParams(topology=TopologyParams(n_nodes=3), swap_success=0.5)
    n = QuantumNetwork.from_params(params, np.random.default_rng(0))
    n.advance(0.2)
    broker = n.links[0][1]
    wins = []
    for _ in range(400):
        while n.view().held[0] == 0 or n.view().held[1] == 0:
            n.advance(0.01)
        r = n.swap([0, broker, 1])
        wins.append(r.success)
        assert r.consumed.n == 2 and (r.pair is None) == (not r.success)
    assert abs(np.mean(wins) - 0.5) < 3 * math.sqrt(0.25 / 400)


@pytest.mark.parametrize("method", ["dejmps", "bbpssw"])
def test_purification_rewrites_the_kept_pair(method):
    params = NetworkParams(topology=TopologyParams(n_nodes=2), memory=MemoryParams(slots=10))
    n = QuantumNetwork.from_params(params, np.random.default_rng(5))
    n.advance(0.3)
    view = n.link_view(0)
    kept, lost = view.pair_id[-1], view.pair_id[0]
    bells = view.bell[[-1, 0]]
    r = n.purify(0, method=method, pair_ids=(kept, lost))
    p, out = (
        dejmps(bells[0], bells[1])
        if method == "dejmps"
        else (
            bbpssw(bells[0, 0], bells[1, 0])[0],
            werner_bell_vector(bbpssw(bells[0, 0], bells[1, 0])[1]),
        )
    )
    assert r.p_success == pytest.approx(float(p), abs=1e-14)
    np.testing.assert_allclose(r.fidelity_in, bells[:, 0], atol=1e-14)
    after = n.link_view(0)
    assert lost not in after.pair_id
    if r.success:
        i = int(np.flatnonzero(after.pair_id == kept)[0])
        assert r.fidelity_out == pytest.approx(float(out[0]), abs=1e-14)
        assert after.fidelity[i] == pytest.approx(r.fidelity_out, abs=1e-14)
        t = n.table.t_coh_s[0]
        assert after.expiry_s[i] == pytest.approx(
            n.now + float(cutoff_age(r.fidelity_out, t, f_min=0.8)), abs=1e-12
        )
        later = n.link_view(0, at_s=n.now + 0.01)
        assert later.fidelity[i] == pytest.approx(
            float(fidelity_at_age(r.fidelity_out, 0.01, t)), abs=1e-14
        )
    else:
        assert kept not in after.pair_id
    c = n.counters()
    assert c.consumed["purify"][0] == (1 if r.success else 2)


def test_purification_success_frequency_matches_p():
    params = NetworkParams(topology=TopologyParams(n_nodes=1), memory=MemoryParams(slots=20))
    n = QuantumNetwork.from_params(params, np.random.default_rng(6))
    ps, wins = [], []
    for _ in range(600):
        if n.view().held[0] < 2:
            n.advance(0.05)
            continue
        r = n.purify(0, method="bbpssw")
        ps.append(r.p_success)
        wins.append(r.success)
    ps, wins = np.array(ps), np.array(wins)
    assert ps.size > 300
    assert abs(wins.mean() - ps.mean()) < 3 * math.sqrt(np.sum(ps * (1 - ps))) / ps.size


def test_stream_demand_uses_stored_pairs_first_then_fresh_ones():
    params = NetworkParams(topology=TopologyParams(n_nodes=3), memory=MemoryParams(slots=5))
    n = QuantumNetwork.from_params(params, np.random.default_rng(7))
    n.advance(0.2)
    held = n.view().held.copy()
    start = n.now
    want = np.array([held[0] + 30, 2, 0])
    report = n.advance(0.5, StreamDemand(want, purpose="teleport", order="freshest"))
    d = report.delivered
    assert d.purpose == "teleport"
    assert d.counts(3).tolist() == want.tolist()
    link0 = d.link == 0
    stored = link0 & (d.time_s == start)
    assert stored.sum() == held[0]  # everything stored was used at the start of the step
    fresh = link0 & (d.time_s > start)
    assert np.all(d.fidelity[fresh] == n.table.f0[0])  # used the moment it was heralded
    assert np.all(np.diff(d.time_s[fresh]) > 0)
    c = n.counters()
    assert c.consumed["teleport"].tolist() == want.tolist()
    assert np.all(c.residual == 0)


def test_several_demands_are_served_in_priority_order_on_every_link():
    params = NetworkParams(topology=TopologyParams(n_nodes=4), memory=MemoryParams(slots=6))
    n = QuantumNetwork.from_params(params, np.random.default_rng(3))
    n.advance(0.1)
    held = n.view().held.copy()
    start = n.now
    first = np.array([held[0] + 5, 0, 3, held[3]])
    second = np.array([4, 6, 0, 2])
    report = n.advance(
        2.0, [StreamDemand(first, purpose="payload"), StreamDemand(second, purpose="key")]
    )
    pay, key = report.deliveries
    assert report.delivered is pay
    assert pay.purpose == "payload" and key.purpose == "key"
    assert pay.counts(4).tolist() == first.tolist()
    assert key.counts(4).tolist() == second.tolist()
    for link in range(4):
        p_t, k_t = pay.time_s[pay.link == link], key.time_s[key.link == link]
        if p_t.size and k_t.size:
            # the second demand only gets pairs heralded after the first is served (or stored ones it left)
            assert k_t.min() >= p_t.max()
    # link 3's stored pairs all went to the first demand, at the start
    assert np.all(pay.time_s[pay.link == 3] == start)
    c = n.counters()
    assert c.consumed["payload"].tolist() == first.tolist()
    assert c.consumed["key"].tolist() == second.tolist()
    assert np.all(c.residual == 0)


def test_links_that_stop_when_served_herald_exactly_their_demand():
    params = NetworkParams(topology=TopologyParams(n_nodes=5), memory=MemoryParams(slots=8))
    n = QuantumNetwork.from_params(params, np.random.default_rng(5))
    n.set_generation(np.ones(5, bool), True)
    want = np.array([7, 0, 3, 12, 0])
    stop = np.array([True, True, True, False, False])
    before = n.counters().generated.copy()
    report = n.advance(3.0, StreamDemand(want, purpose="payload"), stop_when_served=stop)
    made = n.counters().generated - before
    assert report.delivered.counts(5).tolist() == want.tolist()
    assert made[:3].tolist() == want[:3].tolist()  # nothing heralded beyond the demand
    assert made[3] > want[3] and made[4] > 0  # the others keep generating into memory
    assert n.generation_on.tolist() == [False, False, False, True, True]
    assert n.view().held[:3].tolist() == [0, 0, 0]
    assert np.all(n.counters().residual == 0)


def test_stopping_when_served_does_not_change_the_heralding_law():
    """Stopping at the last demanded herald is exact: the k-th heralding time keeps its (negative binomial) law."""
    params = NetworkParams(topology=TopologyParams(n_nodes=1))
    k, z = 5, []
    for seed in range(3000):
        n = QuantumNetwork.from_params(
            params, np.random.default_rng(seed)
        )  # a fresh fibre length each time
        n.set_generation(np.ones(1, bool), True)
        r = n.advance(10.0, StreamDemand(np.array([k])), stop_when_served=np.ones(1, bool))
        assert n.counters().generated[0] == k
        p, tau = n.table.p_success[0], n.table.attempt_s[0]
        # attempts to the k-th success ~ NegBin: mean k/p, variance k(1-p)/p^2 (the first attempt is attempt 1)
        mean, sd = k / p * tau, math.sqrt(k * (1 - p)) / p * tau
        z.append((r.delivered.time_s.max() - mean) / sd)
    assert abs(np.mean(z)) < 4 / math.sqrt(len(z))
    assert abs(np.std(z) - 1) < 0.08


def test_distilled_key_lands_in_the_link_pool(net):
    pool = net.key_pool(3)
    before = pool.available_bits
    result = net.distill_key(3, 4)
    assert result.pairs == 4
    assert pool.available_bits == before + result.secret_bits
    assert net.counters().consumed["key"][3] == 4
    net.preshare_keys(128)
    assert all(p.available_bits >= 128 for p in net.key_pools)


def test_verification_consumes_k_pairs(net):
    held = net.view().held[5]
    r = net.verify(5, 3, method="chsh")
    assert r.k == 3 and net.view().held[5] == held - 3
    assert net.counters().consumed["verification"][5] == 3
    assert 0.25 <= r.lower <= r.fidelity <= r.upper <= 1


def test_links_of_a_node(net):
    broker = net.links[0][1]
    assert net.links_of(broker) == list(range(6))
    assert net.links_of(2) == [2]


def test_from_params_is_reproducible_and_topology_seed_pins_the_graph():
    p = NetworkParams(topology=TopologyParams(n_nodes=5))
    a = QuantumNetwork.from_params(p, np.random.default_rng(1))
    b = QuantumNetwork.from_params(p, np.random.default_rng(1))
    a.advance(0.3), b.advance(0.3)
    assert np.array_equal(a.table.length_km, b.table.length_km)
    assert np.array_equal(a.counters().generated, b.counters().generated)
    pinned = NetworkParams(topology=TopologyParams(n_nodes=5, seed=9))
    c = QuantumNetwork.from_params(pinned, np.random.default_rng(1))
    d = QuantumNetwork.from_params(pinned, np.random.default_rng(2))
    assert np.array_equal(c.table.length_km, d.table.length_km)
    assert np.array_equal(c.table.t_coh_s, d.table.t_coh_s)
    assert not np.array_equal(a.table.length_km, c.table.length_km)


def test_ideal_preset_links():
    n = QuantumNetwork.from_params(
        NetworkParams(topology=TopologyParams(n_nodes=3), link=LinkParams(preset="ideal")),
        np.random.default_rng(0),
    )
    assert np.all(n.table.p_success == 0.5) and np.all(n.table.f0 == 1.0)


def test_teleport_applies_each_pairs_channel(net):
    rho = np.array([[[1, 0], [0, 0]], [[0.5, 0.5], [0.5, 0.5]]], dtype=complex)  # |0><0|, |+><+|
    view = net.link_view(1)
    out, d = net.teleport(1, rho)
    assert d.purpose == "teleport" and d.n == 2
    w = d.werner
    # a Werner pair shrinks the Bloch vector by w: <Z> of |0> and <X> of |+> become w
    assert out[0, 0, 0].real - out[0, 1, 1].real == pytest.approx(w[0], abs=1e-14)
    assert 2 * out[1, 0, 1].real == pytest.approx(w[1], abs=1e-14)
    # the freshest pairs were used, state i through delivered pair i
    np.testing.assert_allclose(np.sort(d.fidelity), np.sort(view.fidelity)[-2:], rtol=0, atol=1e-14)
    with pytest.raises(ValidationError, match="states must have shape"):
        net.teleport(1, np.eye(2))
