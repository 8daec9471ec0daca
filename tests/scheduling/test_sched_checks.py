"""check_policy and validate_decision on deliberately broken policies: exact diagnostics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ceas.scheduling import (
    Decision,
    SchedulingParams,
    check_policy,
    make_policy,
    policy_names,
    probe_views,
    validate_decision,
)
from ceas.scheduling.checks import PolicyCheckError

PARAMS = SchedulingParams(participants=3)


@pytest.mark.parametrize("name", [n for n in policy_names() if n != "value-iteration"])
def test_builtin_policies_pass_the_checker(name):
    check_policy(make_policy(name, PARAMS))


class Broken:
    """Wraps the oblivious policy and breaks its decision in one way."""

    def __init__(self, name, mutate):
        self.name = name
        self.params = PARAMS
        self.inner = make_policy("oblivious", PARAMS)
        self.mutate = mutate

    def __call__(self, inventory, nodes, rng):
        d = self.inner(inventory, nodes, rng)
        return self.mutate(d, inventory, nodes, rng)


def _replace(d, **kw):
    fields = {f.name: getattr(d, f.name) for f in dataclasses.fields(d)}
    fields.update(kw)
    return Decision(**fields)


def _live(inventory, nodes, d):
    """A live pair on a participant's link (the typical probe has one)."""
    part = np.zeros(nodes.n_nodes, bool)
    part[d.participants] = True
    ok = part[inventory.link_node[inventory.pair_link]] & (
        inventory.pair_age_s <= inventory.cutoff_s[inventory.pair_link]
    )
    return int(inventory.pair_id[np.flatnonzero(ok)[0]])


def test_typical_probe_has_the_pairs_the_broken_policies_need():
    label, inv, nodes = probe_views()[0]
    d = make_policy("oblivious", PARAMS)(inv, nodes, np.random.default_rng(0))
    assert label == "typical" and d.payload.size >= 1


def _typical():
    _, inv, nodes = probe_views()[0]
    return inv, nodes, make_policy("oblivious", PARAMS)(inv, nodes, np.random.default_rng(0))


def _check(mutate) -> str:
    with pytest.raises(PolicyCheckError) as err:
        check_policy(Broken("broken", mutate))
    return str(err.value)


PREFIX = "policy 'broken' on probe 'typical'"


def test_pair_used_twice():
    _inv, _nodes, d = _typical()
    msg = _check(lambda d, inv, nodes, rng: _replace(d, key=d.payload[:1]))
    assert msg == f"{PREFIX}: pair {d.payload[0]} is used twice (payload and key)"


def test_nonexistent_node():
    msg = _check(
        lambda d, inv, nodes, rng: _replace(d, participants=np.append(d.participants[:-1], 17))
    )
    assert msg == f"{PREFIX}: participant 17 is not a node (valid: 0..5)"


def test_too_many_participants():
    msg = _check(lambda d, inv, nodes, rng: _replace(d, participants=np.arange(4)))
    assert msg == f"{PREFIX}: decision picks 4 participants, at most m = 3 allowed"


def test_unknown_pair():
    msg = _check(lambda d, inv, nodes, rng: _replace(d, convert=[999]))
    assert msg == f"{PREFIX}: pair 999 (convert) is not in the inventory"


def test_participant_not_ready():
    _inv, nodes, _d = _typical()
    lazy = int(np.flatnonzero(~nodes.ready)[0])
    msg = _check(lambda d, inv, nodes, rng: _replace(d, participants=[lazy]))
    assert msg == f"{PREFIX}: participant {lazy} is not ready"


def test_payload_request_for_a_non_participant():
    inv, _nodes, d = _typical()
    link = int(np.flatnonzero(~np.isin(inv.link_node, d.participants))[0])

    def mutate(d, inv, nodes, rng):
        req = d.requests.copy()
        req[link, 0] = 9
        return _replace(d, requests=req)

    assert _check(mutate) == (
        f"{PREFIX}: link {link} requests 9 fresh payload pairs, but its node {inv.link_node[link]} is not a "
        "participant"
    )


def test_more_payload_than_demanded():
    inv, nodes, d = _typical()
    k = int(d.participants[0])
    stored = int(np.isin(inv.pair_id[inv.link_node[inv.pair_link] == k], d.payload).sum())
    fresh = int(d.requests[k, 0]) + 50

    def mutate(d, inv, nodes, rng):
        req = d.requests.copy()
        req[k, 0] += 50
        return _replace(d, requests=req)

    assert _check(mutate) == (
        f"{PREFIX}: node {k} gets {stored + fresh} payload pairs ({stored} stored + {fresh} fresh), "
        f"demand is {nodes.payload_pairs[k]}"
    )


def test_bad_shape():
    msg = _check(lambda d, inv, nodes, rng: _replace(d, generate=d.generate[:2]))
    assert msg == f"{PREFIX}: generate must have shape (6,), got (2,)"


def test_irreproducible_policy():
    calls = iter(range(1000))

    def mutate(d, inv, nodes, rng):
        flip = next(calls) % 2 == 1
        return _replace(d, generate=d.generate ^ flip)

    assert _check(mutate) == (
        f"{PREFIX} is not reproducible: two calls with equally seeded Generators gave different decisions"
    )


def test_wrong_return_type():
    assert _check(lambda d, inv, nodes, rng: [d]) == f"{PREFIX} returned list, expected Decision"


def test_checker_catches_a_policy_that_uses_a_pair_past_its_cutoff():
    def stale(d, inv, nodes, rng):
        past = inv.pair_age_s > inv.cutoff_s[inv.pair_link]
        if not past.any():
            return d
        j = int(np.flatnonzero(past)[0])
        return _replace(d, convert=[inv.pair_id[j]])

    with pytest.raises(PolicyCheckError) as err:
        check_policy(Broken("stale", stale))
    msg = str(err.value)
    assert msg.startswith("policy 'stale' on probe 'pairs past cutoff': pair ")
    assert "(convert) on link" in msg and "is past its cutoff (age" in msg
    # the numbers in the message are the pair's own
    _, inv, _ = probe_views()[4]
    j = int(np.flatnonzero(inv.pair_age_s > inv.cutoff_s[inv.pair_link])[0])
    link = inv.pair_link[j]
    assert (
        f"pair {inv.pair_id[j]} (convert) on link {link} is past its cutoff "
        f"(age {inv.pair_age_s[j]:.4g} s > cutoff {inv.cutoff_s[link]:.4g} s)"
    ) in msg


def test_checker_reports_exceptions_and_missing_budget():
    def boom(inventory, nodes, rng):
        raise RuntimeError("no")

    boom.name = "boom"
    with pytest.raises(PolicyCheckError, match="has no params.participants"):
        check_policy(boom)
    with pytest.raises(PolicyCheckError) as err:
        check_policy(boom, max_participants=2)
    assert str(err.value) == "policy 'boom' on probe 'typical' raised RuntimeError: no"


def test_validate_decision_rejects_purification_across_links_and_verification_off_participants():
    _, inv, nodes = probe_views()[0]
    d = make_policy("oblivious", PARAMS)(inv, nodes, np.random.default_rng(0))
    l0 = inv.pair_id[inv.pair_link == inv.pair_link[0]]
    other = inv.pair_id[inv.pair_link != inv.pair_link[0]]
    free = np.setdiff1d(inv.pair_id, d.used_pairs())
    a = int(np.intersect1d(l0, free)[0]) if np.intersect1d(l0, free).size else None
    b = int(np.intersect1d(other, free)[0])
    if a is not None:
        bad = _replace(d, purify=[[a, b]])
        with pytest.raises(Exception) as err:
            validate_decision(bad, inv, nodes, max_participants=3)
        la, lb = inv.pair_link[inv.pair_id == a][0], inv.pair_link[inv.pair_id == b][0]
        assert str(err.value) == f"purify pairs {a} and {b} are on different links ({la} and {lb})"
    part = set(d.participants.tolist())
    off = [
        int(p)
        for p, l in zip(inv.pair_id, inv.pair_link)
        if inv.link_node[l] not in part and p in free
    ]
    bad = _replace(d, verification=[off[0]])
    lj = inv.pair_link[inv.pair_id == off[0]][0]
    with pytest.raises(Exception) as err:
        validate_decision(bad, inv, nodes, max_participants=3)
    assert str(err.value) == (
        f"pair {off[0]} (verification) is on link {lj}, whose node {inv.link_node[lj]} is not a participant"
    )
