"""Heralded generation: geometric waiting times on the attempt grid, rates p/(L/c), switching on and off."""

import numpy as np
import pytest
from scipy import stats

from ceas.network import LinkParams, MemoryParams, NetworkParams, QuantumNetwork, TopologyParams
from ceas.network.generation import OFF, first_success, sample_arrivals
from ceas.network.topology import star_topology


def test_gaps_between_successes_are_geometric():
    rng = np.random.default_rng(11)
    p, tau = np.array([0.03]), np.array([1e-4])
    pending = first_success(rng, p, tau, 0.0)
    arrivals, _ = sample_arrivals(rng, p, tau, pending, 400.0)  # ~120,000 successes
    gaps = np.diff(arrivals.attempt)
    assert gaps.size > 100_000
    # mean gap 1/p within 3 sigma (sigma^2 = (1 - p)/p^2 / n)
    assert abs(gaps.mean() - 1 / p[0]) < 3 * np.sqrt((1 - p[0]) / p[0] ** 2 / gaps.size)
    # chi-square goodness of fit on 40 equiprobable bins of the geometric law; p-value stated threshold 1e-3
    edges = np.unique(stats.geom.ppf(np.linspace(0, 1, 41)[1:-1], p[0]))
    observed = np.bincount(np.searchsorted(edges, gaps, side="left"), minlength=edges.size + 1)
    cdf = np.r_[0.0, stats.geom.cdf(edges, p[0]), 1.0]
    expected = gaps.size * np.diff(cdf)
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    # every arrival sits on the attempt grid and inside the window
    assert np.array_equal(arrivals.time_s, arrivals.attempt * tau[0])
    assert arrivals.time_s.max() <= 400.0


def test_pending_success_is_carried_across_windows():
    rng = np.random.default_rng(5)
    p, tau = np.array([0.5, 0.2]), np.array([1e-3, 2e-3])
    pending = first_success(rng, p, tau, 0.0)
    times = [[], []]
    t = 0.0
    for t_end in np.linspace(0.05, 5.0, 100):
        arrivals, new_pending = sample_arrivals(rng, p, tau, pending, t_end)
        for link in range(2):
            seg = arrivals.time_s[arrivals.offsets[link] : arrivals.offsets[link + 1]]
            assert np.all((seg > t) & (seg <= t_end + 1e-15))
            times[link].extend(seg)
        assert np.all(new_pending * tau > t_end)
        pending, t = new_pending, t_end
    for link in range(2):
        assert np.all(np.diff(times[link]) > 0)


def test_links_switched_off_do_not_generate():
    rng = np.random.default_rng(0)
    p, tau = np.array([0.1, 0.1]), np.array([1e-4, 1e-4])
    pending = np.array([OFF, 5], dtype=np.int64)
    arrivals, new_pending = sample_arrivals(rng, p, tau, pending, 1.0)
    assert arrivals.counts[0] == 0 and new_pending[0] == OFF
    assert arrivals.counts[1] > 0


def test_first_success_after_a_time_is_on_a_later_attempt():
    rng = np.random.default_rng(2)
    tau = np.full(10_000, 1e-3)
    p = np.full(10_000, 0.25)
    first = first_success(rng, p, tau, 0.0105)
    assert first.min() == 11  # attempts at 11 ms, 12 ms, ...
    # memoryless: attempts until the first success are Geom(p); mean 1/p within 3 sigma
    n = first - 10
    assert abs(n.mean() - 4.0) < 3 * np.sqrt((1 - 0.25) / 0.25**2 / n.size)


def _star(lengths_km, t_coh_s=0.5):
    params = TopologyParams(n_nodes=len(lengths_km))
    G = star_topology(params, np.random.default_rng(0))
    for k, length in enumerate(lengths_km):
        G.edges[k, len(lengths_km)]["length_km"] = float(length)
    for v in G.nodes:
        G.nodes[v]["t_coh_s"] = t_coh_s if v < len(lengths_km) else np.inf
    return G


def test_each_link_rate_is_p_over_attempt_period_within_three_sigma():
    # six heterogeneous links over SPEC's range; every link heralds >= 10^5 pairs
    lengths = np.array([2.0, 5.0, 11.0, 19.0, 28.0, 40.0])
    net = QuantumNetwork(_star(lengths), LinkParams(), MemoryParams(), np.random.default_rng(42))
    duration = 1.0e5 / net.table.rate_hz.min()
    net.advance(duration)
    generated = net.counters().generated
    assert generated.min() >= 100_000
    n_attempts = np.floor(duration / net.table.attempt_s)
    p = net.table.p_success
    z = (generated - n_attempts * p) / np.sqrt(n_attempts * p * (1 - p))
    assert np.all(np.abs(z) < 3), z
    rate = generated / duration
    expected = p / net.table.attempt_s
    assert np.all(np.abs(rate - expected) < 3 * np.sqrt(n_attempts * p * (1 - p)) / duration)


def test_switching_generation_off_and_on():
    net = QuantumNetwork.from_params(
        NetworkParams(topology={"n_nodes": 4}), np.random.default_rng(1)
    )
    net.set_generation([0, 2], on=False)
    assert net.generation_on.tolist() == [False, True, False, True]
    report = net.advance(0.5)
    assert report.generated[[0, 2]].tolist() == [0, 0] and report.generated[[1, 3]].min() > 0
    net.set_generation(None, on=True)
    report = net.advance(0.5)
    assert report.generated.min() > 0
    with pytest.raises(Exception, match="on must be true or false"):
        net.set_generation(0, on="yes")
