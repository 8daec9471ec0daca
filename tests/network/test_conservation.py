"""The ledger's invariants under hypothesis-generated sequences of operations, and rejected calls change nothing.

After every step: per link, generated = consumed (all purposes) + expired + evicted + held; at most M pairs held;
ids unique; every held pair alive now with fidelity above F_min. Every rejected call (bad link, fidelity outside
[1/4, 1], time in the past, more pairs than held, unknown purpose, ...) raises a CeasError and leaves the ledger,
the counters, the clock, the key pools and the random streams exactly as they were.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ceas.errors import CeasError, ProtocolError, UnknownNameError, ValidationError
from ceas.network import MemoryParams, NetworkParams, QuantumNetwork, StreamDemand, TopologyParams


def snapshot(net: QuantumNetwork):
    inv = net.inventory
    arrays = [inv.occupied, inv.pair_id, inv.created_s, inv.ref_s, inv.bell, inv.expiry_s]
    counters = [inv.generated, inv.expired, inv.evicted] + [
        inv.consumed[p] for p in sorted(inv.consumed)
    ]
    return (
        [a.copy() for a in arrays + counters],
        net.now,
        net._pending.copy(),
        inv.next_id,
        [(p.available_bits, p.taken_bits) for p in net.key_pools],
        net._gen_rng.bit_generator.state,
        net._op_rng.bit_generator.state,
    )


def assert_same(a, b):
    arrays_a, *rest_a = a
    arrays_b, *rest_b = b
    for x, y in zip(arrays_a, arrays_b):
        np.testing.assert_array_equal(x, y)
    assert rest_a[0] == rest_b[0]
    np.testing.assert_array_equal(rest_a[1], rest_b[1])
    assert rest_a[2:] == rest_b[2:]


def check_invariants(net: QuantumNetwork):
    c = net.counters()
    assert np.all(c.residual == 0)
    inv = net.inventory
    assert np.array_equal(c.held, inv.occupied.sum(axis=1))
    assert np.all(c.held <= net.capacity)
    ids = inv.pair_id[inv.occupied]
    assert np.unique(ids).size == ids.size
    assert np.all(inv.pair_id[~inv.occupied] == -1)
    assert np.all(inv.expiry_s[inv.occupied] > net.now)
    f = net.view().fidelity[inv.occupied]
    assert np.all(f >= net.memory_params.f_min - 1e-12)


def small_network(seed: int, eviction: str = "oldest") -> QuantumNetwork:
    params = NetworkParams(
        topology=TopologyParams(n_nodes=4, length_min_km=2, length_max_km=30),
        memory=MemoryParams(slots=5, coherence_min_s=0.05, coherence_max_s=0.5, eviction=eviction),
    )
    return QuantumNetwork.from_params(params, np.random.default_rng(seed))


REJECTIONS = [
    ("advance by a negative time", ValidationError, lambda n: n.advance(-0.1)),
    ("advance by NaN", ValidationError, lambda n: n.advance(float("nan"))),
    ("advance by inf", ValidationError, lambda n: n.advance(math.inf)),
    ("unknown link index", ValidationError, lambda n: n.request(99, 1, purpose="payload")),
    (
        "node pair that is not a link",
        UnknownNameError,
        lambda n: n.request((0, 1), 1, purpose="payload"),
    ),
    (
        "fidelity above 1",
        ValidationError,
        lambda n: n.request(0, 1, purpose="key", min_fidelity=1.3),
    ),
    (
        "fidelity below 1/4",
        ValidationError,
        lambda n: n.request(0, 1, purpose="key", min_fidelity=0.2),
    ),
    (
        "use time in the past",
        ValidationError,
        lambda n: n.request(0, 1, purpose="key", at_s=n.now - 1e-3),
    ),
    ("more pairs than held", ProtocolError, lambda n: n.request(3, 1, purpose="payload")),
    ("unknown purpose", UnknownNameError, lambda n: n.request(0, 1, purpose="paylod")),
    (
        "unknown order",
        UnknownNameError,
        lambda n: n.request(0, 1, purpose="payload", order="newest"),
    ),
    ("ids not held", ProtocolError, lambda n: n.consume(1, [10**15], purpose="payload")),
    ("repeated ids", ValidationError, lambda n: n.consume(1, [3, 3], purpose="payload")),
    (
        "negative demand",
        ValidationError,
        lambda n: n.advance(0.1, StreamDemand(np.array([-1, 0, 0, 0]))),
    ),
    (
        "demand with bad fidelity",
        ValidationError,
        lambda n: n.advance(0.1, StreamDemand(np.zeros(4, int), min_fidelity=1.5)),
    ),
    (
        "a demand that is not a StreamDemand",
        ValidationError,
        lambda n: n.advance(0.1, [StreamDemand(np.zeros(4, int)), np.zeros(4, int)]),
    ),
    (
        "stop mask of the wrong shape",
        ValidationError,
        lambda n: n.advance(0.1, StreamDemand(np.ones(4, int)), stop_when_served=np.ones(3, bool)),
    ),
    (
        "stop mask not boolean",
        ValidationError,
        lambda n: n.advance(0.1, StreamDemand(np.ones(4, int)), stop_when_served=np.ones(4, int)),
    ),
    (
        "negative counts",
        ValidationError,
        lambda n: n.request_many([1, -1, 0, 0], purpose="payload"),
    ),
    ("verify more pairs than held", ProtocolError, lambda n: n.verify(3, 1)),
    ("purify without two pairs", ProtocolError, lambda n: n.purify(3)),
    ("swap through an empty link", ProtocolError, lambda n: n.swap([0, 4, 3])),
    ("key from an empty link", ProtocolError, lambda n: n.distill_key(3, 1)),
    ("verify with k = 0", ValidationError, lambda n: n.verify(2, 0)),
    ("verify at confidence 1", ValidationError, lambda n: n.verify(2, 1, confidence=1.0)),
    ("unknown purification", UnknownNameError, lambda n: n.purify(0, method="dejmp")),
    ("purify with repeated ids", ValidationError, lambda n: n.purify(0, pair_ids=(1, 1))),
    ("swap along a non-path", UnknownNameError, lambda n: n.swap([0, 1, 2])),
    ("swap a too-short path", ValidationError, lambda n: n.swap([0, 4])),
    ("key from unknown link", ValidationError, lambda n: n.distill_key(-1, 2)),
]


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.net = small_network(0)

    @rule(dt=st.floats(0.0, 0.4))
    def advance(self, dt):
        report = self.net.advance(dt)
        assert np.all(report.generated >= 0)

    @rule(
        dt=st.floats(0.0, 0.2),
        pairs=st.lists(st.integers(0, 60), min_size=4, max_size=4),
        min_f=st.sampled_from([None, 0.85, 0.93]),
        order=st.sampled_from(["oldest", "freshest", "expiring"]),
    )
    def advance_with_demand(self, dt, pairs, min_f, order):
        before = self.net.counters()
        report = self.net.advance(dt, StreamDemand(np.array(pairs), "payload", min_f, order))
        got = report.delivered.counts(4)
        assert np.all(got <= np.array(pairs))
        if min_f is not None:
            assert np.all(report.delivered.fidelity >= min_f - 1e-12)
        after = self.net.counters()
        assert np.array_equal(after.consumed["payload"] - before.consumed["payload"], got)

    @rule(
        link=st.integers(0, 3),
        n=st.integers(1, 5),
        min_f=st.floats(0.25, 1.0),
        purpose=st.sampled_from(["payload", "teleport", "gate"]),
    )
    def request(self, link, n, min_f, purpose):
        try:
            d = self.net.request(link, n, purpose=purpose, min_fidelity=min_f)
        except ProtocolError:
            return
        assert d.n == n and np.all(d.fidelity >= min_f)

    @rule(counts=st.lists(st.integers(0, 6), min_size=4, max_size=4), later=st.floats(0.0, 0.02))
    def request_many(self, counts, later):
        d = self.net.request_many(np.array(counts), purpose="payload", at_s=self.net.now + later)
        assert np.all(d.counts(4) <= np.array(counts))

    @rule(link=st.integers(0, 3), k=st.integers(1, 3))
    def consume_ids(self, link, k):
        ids = self.net.link_view(link).pair_id[:k]
        if ids.size:
            d = self.net.consume(link, ids, purpose="gate")
            assert sorted(d.pair_id.tolist()) == sorted(ids.tolist())

    @rule(link=st.integers(0, 3), method=st.sampled_from(["bbpssw", "dejmps"]))
    def purify(self, link, method):
        try:
            self.net.purify(link, method=method)
        except ProtocolError:
            pass

    @rule(a=st.integers(0, 3), b=st.integers(0, 3))
    def swap(self, a, b):
        if a != b:
            try:
                self.net.swap([a, 4, b])
            except ProtocolError:
                pass

    @rule(link=st.integers(0, 3), n=st.integers(1, 4))
    def distill(self, link, n):
        try:
            self.net.distill_key(link, n)
        except ProtocolError:
            pass

    @rule(link=st.integers(0, 3), k=st.integers(1, 3), method=st.sampled_from(["qber", "chsh"]))
    def verify(self, link, k, method):
        try:
            self.net.verify(link, k, method=method)
        except ProtocolError:
            pass

    @rule(link=st.integers(0, 3), on=st.booleans())
    def toggle(self, link, on):
        self.net.set_generation(link, on=on)

    @rule(which=st.integers(0, len(REJECTIONS) - 1))
    def rejected_call(self, which):
        # in an arbitrary state some of these calls are legal (e.g. link 3 may hold pairs); whenever one is
        # refused, nothing may have changed
        _, _, call = REJECTIONS[which]
        before = snapshot(self.net)
        try:
            call(self.net)
        except CeasError:
            assert_same(before, snapshot(self.net))

    @invariant()
    def ledger_is_consistent(self):
        check_invariants(self.net)


LedgerMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedger = LedgerMachine.TestCase


def drained_network(seed: int) -> QuantumNetwork:
    """A network whose link 3 holds no pair and generates none (so requests on it must fail)."""
    net = small_network(seed)
    net.advance(0.3)
    net.set_generation(3, on=False)
    net.request_many(np.array([0, 0, 0, net.capacity]), purpose="payload")
    assert net.view().held[3] == 0 and net.view().held[:3].min() >= 2
    return net


@pytest.mark.parametrize(("label", "error", "call"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_rejected_call_raises_and_leaves_everything_unchanged(label, error, call):
    net = drained_network(3)
    before = snapshot(net)
    with pytest.raises(error) as info:
        call(net)
    assert str(info.value)  # one clear line
    assert "\n" not in str(info.value)
    assert_same(before, snapshot(net))


def test_error_messages_name_the_argument_the_value_and_the_range():
    net = drained_network(4)
    with pytest.raises(ValidationError, match=r"min_fidelity must be in \[0.25, 1\], got 1.3"):
        net.request(0, 1, purpose="payload", min_fidelity=1.3)
    with pytest.raises(ValidationError, match=r"dt_s must be in \[0, inf\), got -1"):
        net.advance(-1)
    with pytest.raises(ValidationError, match=r"link must be an integer in \[0, 3\], got 7"):
        net.link_view(7)
    with pytest.raises(UnknownNameError, match="did you mean 'payload'"):
        net.request(0, 1, purpose="paylod")
    with pytest.raises(
        ProtocolError, match=r"link 3 holds 0 pairs with fidelity >= 0.25 at t = 0.3 s, 2 requested"
    ):
        net.request(3, 2, purpose="payload")
    with pytest.raises(ValidationError, match=r"at_s must be in \[0.3, inf\), got 0.1"):
        net.request(0, 1, purpose="payload", at_s=0.1)


@pytest.mark.parametrize("eviction", ["oldest", "lowest_fidelity", "block"])
def test_long_random_session_conserves_pairs(eviction):
    net = small_network(9, eviction)
    rng = np.random.default_rng(9)
    for _ in range(300):
        net.advance(float(rng.uniform(0, 0.05)), StreamDemand(rng.integers(0, 4, size=4)))
        link = int(rng.integers(4))
        if net.view().held[link] >= 2:
            net.purify(link, method=str(rng.choice(["bbpssw", "dejmps"])))
        check_invariants(net)
    c = net.counters()
    assert c.generated.sum() > 1000 and c.consumed["purify"].sum() > 0
