"""Admission when a memory is full (``memory.eviction = "block"``) and the one-link helper with a settable cutoff.

Acceptance (issue 10): a blocking link reproduces Erlang-B. 800 pairs/s offered to 10 slots, every admitted pair
held until its 24 ms cutoff (a deterministic holding time): offered load A = 800 x 0.024 = 19.2 Erlang, blocking
B(19.2, 10) = 0.5211, carried 800 (1 - B) = 383.1 pairs/s. Erlang's formula holds for any holding-time law, so a
fixed cutoff is as good a test as an exponential one. Measured over 100 s after 1 s of burn-in: carried 383.75
pairs/s at seed 0 (+0.16 %), 382.8-383.8 over seeds 0-4; mean pairs held / cutoff (Little) 384.1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ceas.errors import ValidationError
from ceas.network import LinkParams, MemoryParams, NetworkParams, QuantumNetwork
from ceas.network.memory import EVICTION_POLICIES, MemoryWindow
from ceas.network.werner import cutoff_age, fidelity_at_age


def erlang_b(load: float, servers: int) -> float:
    """Erlang's loss formula B(A, m) = (A^m / m!) / sum_k A^k / k!, by the stable recursion B_k = A B_{k-1}/(k + A B_{k-1})."""
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def test_erlang_b_recursion_equals_the_closed_form():
    a, m = 19.2, 10
    closed = (a**m / math.factorial(m)) / sum(a**k / math.factorial(k) for k in range(m + 1))
    assert erlang_b(a, m) == pytest.approx(closed, rel=1e-12)


def _link_for_rate(rate_hz: float, length_km: float = 1.0) -> LinkParams:
    """Single-click physics whose theta makes a ``length_km`` link herald ``rate_hz`` pairs/s (p = rate x L/c: 0.004 at
    800/s over 1 km, geometric gaps on a 5 us grid, as near Poisson as Erlang needs)."""
    link = LinkParams()
    eta = link.eta0 * 10.0 ** (-link.alpha_db_per_km * length_km / 20.0)
    return LinkParams(theta=rate_hz * length_km / link.c_km_per_s / (2.0 * eta))


def _link(rate_hz: float, slots: int, cutoff_s: float, eviction: str, seed: int) -> QuantumNetwork:
    return QuantumNetwork.one_link(
        np.random.default_rng(seed),
        length_km=1.0,
        t_coh_s=math.inf,
        link=_link_for_rate(rate_hz),
        memory=MemoryParams(slots=slots, eviction=eviction),
        cutoff_s=cutoff_s,
    )


def test_a_blocking_link_reproduces_erlang_b():
    offered, slots, cutoff = 800.0, 10, 0.024
    carried_theory = offered * (1.0 - erlang_b(offered * cutoff, slots))
    assert carried_theory == pytest.approx(383.1, abs=0.1)

    net = _link(offered, slots, cutoff, "block", seed=0)
    assert net.table.rate_hz[0] == pytest.approx(offered, rel=1e-12)
    net.advance(1.0)  # burn-in: forty holding times
    before = net.counters()
    duration, held = 100.0, []
    for _ in range(2000):
        net.advance(duration / 2000)
        held.append(int(net.counters().held[0]))
    after = net.counters()
    generated = int(after.generated[0] - before.generated[0])
    blocked = int(after.evicted[0] - before.evicted[0])
    carried = (generated - blocked) / duration
    assert generated / duration == pytest.approx(offered, rel=0.02)
    assert carried == pytest.approx(carried_theory, rel=0.02)
    # Little's law on the same run: pairs held on average = carried rate x holding time
    assert np.mean(held) / cutoff == pytest.approx(carried_theory, rel=0.02)
    assert (after.residual == 0).all()


def test_evict_oldest_admits_every_pair_and_keeps_the_memory_full():
    # the same link under the default admission: no herald is turned away; the oldest stored pair makes room
    net = _link(800.0, 10, 0.024, "oldest", seed=1)
    net.advance(1.0)
    view = net.link_view(0)
    assert view.n == 10  # full: at 19 pairs per holding time the memory never drains
    assert (view.age_s < 0.024).all()
    assert np.all(np.diff(view.pair_id) == 1)  # the ten newest heralds, consecutive


def test_block_admits_again_once_a_stored_pair_expires():
    # two stored pairs expiring at 0.25 s and 2 s fill M = 2; the arrival at 0.2 s is blocked, the one at 0.3 s enters
    w = MemoryWindow(
        t_end_s=1.0,
        occupied=np.ones((1, 2), bool),
        created_s=np.array([[-0.5, -0.1]]),
        expiry_s=np.array([[0.25, 2.0]]),
        pair_id=np.array([[0, 1]]),
        offsets=np.array([0, 2]),
        time_s=np.array([0.2, 0.3]),
        arrival_expiry_s=np.array([0.5, 0.6]),
    )
    out = EVICTION_POLICIES["block"].resolve(w)
    assert out.arrival_evicted.tolist() == [True, False]
    assert out.start_expired.tolist() == [[True, False]] and not out.start_evicted.any()
    assert out.arrival_expired.tolist() == [False, True]  # 0.3 + 0.3 <= t_end


def test_one_link_builds_a_qpu_and_the_broker_without_a_star_builder():
    net = QuantumNetwork.one_link(np.random.default_rng(0), length_km=20.0, t_coh_s=0.1)
    assert net.links == ((0, 1),) and net.graph.nodes[1]["role"] == "broker"
    assert net.table.length_km[0] == 20.0 and net.table.t_coh_s[0] == 0.1
    # without cutoff_s, the cutoff is the age at which F falls to F_min (SPEC §4)
    f0 = float(net.table.f0[0])
    assert net.table.cutoff_s[0] == pytest.approx(float(cutoff_age(f0, 0.1, f_min=0.8)), rel=1e-15)


def test_one_link_cutoff_is_set_directly_and_sets_every_pairs_expiry():
    net = QuantumNetwork.one_link(
        np.random.default_rng(2), length_km=5.0, t_coh_s=0.5, cutoff_s=0.01
    )
    assert float(net.table.cutoff_s[0]) == 0.01
    net.advance(0.2)
    view = net.link_view(0)
    assert view.n > 0
    np.testing.assert_allclose(view.cutoff_age_s, 0.01, rtol=0, atol=1e-15)
    assert (view.age_s < 0.01).all()
    # a purified pair expires when it falls to the fidelity a fresh pair has at the cutoff
    assert net.inventory.f_min[0] == pytest.approx(
        float(fidelity_at_age(net.table.f0[0], 0.01, 0.5)), rel=1e-15
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cutoff_s": -0.1}, r"cutoff_s must be in \[0, inf\), got -0.1"),
        ({"length_km": 0.0}, r"length_km must be in \(0, inf\), got 0.0"),
        ({"t_coh_s": 0.0}, r"t_coh_s must be in \(0, inf\), got 0.0"),
    ],
)
def test_one_link_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        QuantumNetwork.one_link(np.random.default_rng(0), **kwargs)


def test_block_is_a_memory_setting_of_any_network():
    params = NetworkParams(memory=MemoryParams(eviction="block", slots=3))
    net = QuantumNetwork.from_params(params, np.random.default_rng(4))
    report = net.advance(1.0)
    assert report.evicted.sum() > 0  # 3 slots on ~1 s links: many heralds find them full
    assert (net.counters().held <= 3).all() and (net.counters().residual == 0).all()
