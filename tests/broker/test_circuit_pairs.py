"""QPU-QPU pairs swapped at the broker for split circuits (ceas.broker.circuit_pairs): the swap-as-soon-as-possible
process against its closed forms, and the per-slot visibilities a replica's runs see."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.broker.circuit_pairs import hop_stream

INF = 1e12


def test_perfect_memories_deliver_the_product_of_fresh_visibilities():
    hop = hop_stream(500, (300.0, 700.0), (0.9, 0.8), (INF, INF), (INF, INF), np.random.default_rng(0))
    assert hop.werner.shape == (500,)
    np.testing.assert_allclose(hop.werner, 0.72, rtol=0, atol=1e-9)
    assert hop.generated >= 1000  # every swap consumes one herald on each channel


def test_time_per_pair_matches_the_two_poisson_closed_form():
    """Without cutoffs, a swap needs one herald on each channel after the last swap: the time between swaps is the
    maximum of two exponentials, mean 1/ra + 1/rb - 1/(ra + rb), variance 1/ra² + 1/rb² - 3/(ra+rb)² ..."""
    ra, rb, d = 200.0, 800.0, 20_000
    hop = hop_stream(d, (ra, rb), (1.0, 1.0), (INF, INF), (INF, INF), np.random.default_rng(1))
    mean = 1 / ra + 1 / rb - 1 / (ra + rb)
    # Var max(Ea, Eb) = 1/ra² + 1/rb² - 3/(ra+rb)² (independent exponentials)
    sd = np.sqrt(1 / ra**2 + 1 / rb**2 - 3 / (ra + rb) ** 2)
    assert abs(hop.time_s / d - mean) < 4 * sd / np.sqrt(d)


def test_waiting_decays_the_partner_and_the_cutoff_bounds_the_wait():
    t_coh = (0.05, 0.2)
    args = (5_000, (100.0, 400.0), (0.95, 0.9), t_coh)
    long = hop_stream(*args, (INF, INF), np.random.default_rng(2))
    fresh = 0.95 * 0.9
    assert long.werner.max() <= fresh + 1e-12
    assert long.werner.mean() < fresh - 1e-3  # waiting partners decayed
    cutoff = (0.002, 0.004)  # a few percent of the mean gaps between heralds (10 ms and 2.5 ms)
    short = hop_stream(*args, cutoff, np.random.default_rng(2))
    floor = fresh * min(np.exp(-cutoff[0] / t_coh[0]), np.exp(-cutoff[1] / t_coh[1]))
    assert short.werner.min() >= floor - 1e-12  # no partner waited past its cutoff
    assert short.werner.mean() > long.werner.mean()
    # partners past their cutoff are discarded: many more heralds, and more time, per delivered pair
    assert short.generated > 1.1 * long.generated and short.time_s > 1.1 * long.time_s


def test_zero_demand_delivers_nothing():
    hop = hop_stream(0, (1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.0, 1.0), np.random.default_rng(0))
    assert hop.werner.size == 0 and hop.time_s == 0.0 and hop.generated == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_same_seed_same_stream(seed):
    args = (300, (100.0, 200.0), (0.9, 0.9), (0.1, 0.1), (0.05, 0.05))
    a = hop_stream(*args, np.random.default_rng(seed))
    b = hop_stream(*args, np.random.default_rng(seed))
    np.testing.assert_array_equal(a.werner, b.werner)
    assert a.time_s == b.time_s


def test_the_schedulers_prediction_matches_the_stream_without_cutoffs():
    from types import SimpleNamespace

    from ceas.broker.circuit_pairs import predicted_time_s, supply_circuit_pairs
    from ceas.partitions import make_scheme
    from ceas.qnn import CircuitSpec

    scheme = make_scheme("circuit", CircuitSpec(6, 2), qubits_per_qpu=2)  # 3 QPUs in a ring of links
    channels = SimpleNamespace(
        rate_hz=np.array([300.0, 900.0, 500.0, 200.0, 800.0, 400.0]),
        f0=np.full(6, 0.97), t_coh_s=np.full(6, INF), cutoff_s=np.full(6, INF),
    )  # fmt: skip
    members = np.arange(6).reshape(2, 3)
    runs = 2_000
    predicted = predicted_time_s(scheme, channels, members, runs)
    got = supply_circuit_pairs(scheme, channels, members, runs, np.random.default_rng(0))
    np.testing.assert_allclose(got.time_s, predicted, rtol=0.05)
    assert predicted[0] != pytest.approx(predicted[1], rel=0.05)  # the replicas' channels differ


def test_time_aware_selection_prefers_fast_nodes_unless_a_slow_one_pays_for_its_time():
    from ceas.scheduling.policies.ceas_policy import fastest_worth

    work = np.array([10.0, 1.0, 5.0, 2.0, 100.0])
    equal = np.ones(5)
    np.testing.assert_array_equal(fastest_worth(equal, work, 2, 1.0), [0, 1, 0, 1, 0])
    # node 2 (5 s) worth 20x the others: a round of 5 s with it beats a round of 2 s without it
    rich = np.array([1.0, 1.0, 20.0, 1.0, 1.0])
    np.testing.assert_array_equal(fastest_worth(rich, work, 2, 1.0), [0, 1, 1, 1, 0])
    # rounds no shorter than tau: below it, time costs nothing and every node is worth a seat
    np.testing.assert_array_equal(fastest_worth(equal, work, 2, 1000.0), [1, 1, 1, 1, 1])
    # nodes without a positive score never enter; fewer candidates than seats keeps them all
    np.testing.assert_array_equal(
        fastest_worth(np.array([0.0, 1.0, -1.0, 0.0, 2.0]), work, 3, 1.0), [0, 1, 0, 0, 1]
    )
