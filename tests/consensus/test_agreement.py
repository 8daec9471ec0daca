"""Detectable Byzantine agreement on the model digest, with an HMAC stand-in for the link MACs."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ceas.consensus.agreement import (
    AgreementMessage,
    DigestAgreement,
    EquivocatingLeader,
    Kind,
    Silent,
    model_digest,
)
from ceas.errors import ValidationError

GOOD = model_digest(np.arange(5.0))
EVIL = model_digest(-np.arange(5.0))
OTHER = model_digest(np.ones(5))


class HmacLinks:
    """Pairwise link keys (one per unordered pair) and HMAC-SHA256 tags; counts every sign and verify."""

    def __init__(self, n: int, secret: bytes = b"test-links"):
        self.keys = {
            (i, j): hashlib.sha256(secret + bytes([i, j])).digest()
            for i in range(n)
            for j in range(i, n)
        }
        self.calls = Counter()

    def _key(self, a: int, b: int) -> bytes:
        return self.keys[(min(a, b), max(a, b))]

    def sign(self, sender: int, receiver: int, body: bytes) -> bytes:
        self.calls["sign"] += 1
        return hmac.new(self._key(sender, receiver), body, hashlib.sha256).digest()

    def verify(self, sender: int, receiver: int, body: bytes, tag: bytes) -> bool:
        self.calls["verify"] += 1
        expected = hmac.new(self._key(sender, receiver), body, hashlib.sha256).digest()
        return hmac.compare_digest(expected, tag)


def protocol(n: int, f: int, **kw) -> DigestAgreement:
    links = HmacLinks(n)
    return DigestAgreement(n, f, links.sign, links.verify, **kw)


def test_honest_leader_everyone_delivers_in_one_attempt():
    dba = protocol(7, 2)
    res = dba.agree(round=3, digest=GOOD)
    assert res.succeeded and res.digest == GOOD and res.leader == 3 and len(res.attempts) == 1
    out = res.attempts[0]
    assert (
        set(out.delivered.values()) == {GOOD} and out.detected == frozenset() and not out.rejected
    )
    assert out.steps == 4  # propose, echo, ready, deliver; then quiescent


def test_silent_byzantine_followers_do_not_stop_an_honest_leader():
    res = protocol(10, 3).agree(round=0, digest=GOOD, byzantine={4, 5, 6}, behaviour=Silent())
    assert res.digest == GOOD and len(res.attempts) == 1


def test_equivocating_leader_is_detected_and_the_round_retried_with_the_next_leader():
    """Leader 0 tells 4 honest nodes GOOD and 3 EVIL: neither reaches the echo quorum of 7, nobody delivers, every
    honest node detects it, and leader 1 (honest) succeeds."""
    dba = protocol(10, 3)
    byz = {0, 4, 7}
    assert dba.echo_quorum == 7
    behaviour = EquivocatingLeader(EVIL, honest_share=0.5, collude=False)
    res = dba.agree(round=0, digest=GOOD, byzantine=byz, behaviour=behaviour)
    first = res.attempts[0]
    honest = set(range(10)) - byz
    assert first.leader == 0 and first.digest is None and first.consistent
    assert set(first.delivered.values()) == {None}
    assert first.detected == frozenset(honest)  # every honest node detects the failed attempt
    assert res.succeeded and res.digest == GOOD and res.leader == 1 and len(res.attempts) == 2


def test_colluding_split_brain_still_delivers_one_value_to_everybody():
    """With the 3 Byzantine nodes backing both halves, GOOD gets 4 + 3 = 7 echoes at the first half and EVIL only
    3 + 3 = 6 at the second: all honest nodes deliver GOOD, and those told EVIL hold evidence against the leader."""
    dba = protocol(10, 3)
    res = dba.agree(
        round=0, digest=GOOD, byzantine={0, 4, 7}, behaviour=EquivocatingLeader(EVIL, 0.5)
    )
    first = res.attempts[0]
    assert first.digest == GOOD and len(res.attempts) == 1
    assert first.leader_evidence == frozenset({6, 8, 9}) == first.detected


def test_equivocation_with_validity_check_gives_evidence_against_the_leader():
    """Nodes validate proposals against the model they computed; those told the evil digest refuse to echo and
    keep direct evidence against the leader, whatever the attempt's outcome."""
    dba = protocol(10, 3)
    byz = {0, 4, 7}
    res = dba.agree(
        round=0,
        digest=GOOD,
        byzantine=byz,
        behaviour=EquivocatingLeader(EVIL, honest_share=6 / 7),
        validate=lambda node, d: d == GOOD,
    )
    first = res.attempts[0]
    assert first.consistent and first.digest in (GOOD, None)
    lied_to = {9}  # honest ids 1,2,3,5,6,8,9: the last 1/7 get the evil digest
    assert lied_to <= first.leader_evidence <= first.detected
    assert res.digest == GOOD


def test_all_attempts_failing_means_no_update():
    dba = protocol(4, 1, max_attempts=1)
    res = dba.agree(round=0, digest=GOOD, byzantine={0}, behaviour=Silent())
    assert not res.succeeded and res.digest is None and res.leader is None
    assert res.attempts[0].detected == frozenset({1, 2, 3})


def test_f_consecutive_byzantine_leaders_need_f_plus_one_attempts():
    res = protocol(10, 3).agree(round=0, digest=GOOD, byzantine={0, 1, 2}, behaviour=Silent())
    assert [a.leader for a in res.attempts] == [0, 1, 2, 3] and res.digest == GOOD


def test_precondition_names_f_and_n():
    with pytest.raises(ValidationError) as info:
        protocol(9, 3)
    assert (
        str(info.value)
        == "agreement tolerates f = 3 Byzantine nodes only with n >= 3f + 1 = 10; got n = 9"
    )


def _malformed_reason(msg: AgreementMessage) -> str:
    try:
        msg.body()
    except ValidationError as exc:
        return f"malformed: {exc}"
    raise AssertionError("message is well-formed")


class ChannelAttacker:
    """Injects forged, redirected, replayed, stale, future and malformed messages at step 1 (one of each per
    honest receiver) while the Byzantine nodes stay silent otherwise."""

    def __init__(self, n: int, byz: set[int]):
        self.n, self.byz = n, byz
        self.injected = Counter()

    def act(self, view):
        if view.step != 1:
            return []
        out = []
        honest = sorted(set(range(self.n)) - self.byz)
        proposals = [m for m in view.honest_messages if m.kind == Kind.ECHO]
        for r in honest:
            impostor = honest[0] if honest[0] != r else honest[1]
            out.append(
                AgreementMessage(
                    Kind.READY, view.round, view.attempt, impostor, r, EVIL, b"\x00" * 32
                )
            )
            self.injected["bad tag"] += 1
            m = next(p for p in proposals if p.receiver != r)  # a valid echo, redirected to r
            out.append(AgreementMessage(m.kind, m.round, m.attempt, m.sender, r, m.digest, m.tag))
            self.injected["bad tag"] += 1
            out.append(AgreementMessage(Kind.ECHO, view.round - 1, view.attempt, 5, r, EVIL))
            self.injected["stale round or attempt (replay)"] += 1
            out.append(AgreementMessage(Kind.ECHO, view.round, view.attempt + 1, 5, r, EVIL))
            self.injected["future round or attempt"] += 1
            for bad in (
                AgreementMessage(
                    Kind.ECHO, view.round, view.attempt, 5, r, EVIL[:7]
                ),  # short digest
                AgreementMessage(Kind.ECHO, "x", view.attempt, 5, r, EVIL),  # round not an integer
                AgreementMessage(
                    Kind.ECHO, view.round, view.attempt, -1, r, EVIL
                ),  # negative sender
            ):
                out.append(bad)
                self.injected[_malformed_reason(bad)] += 1
            out.append(
                AgreementMessage(Kind.ECHO, view.round, view.attempt, 5, [r], EVIL)
            )  # undeliverable
            out.append(AgreementMessage(Kind.ECHO, view.round, view.attempt, self.n + 3, r, EVIL))
            self.injected["unknown sender"] += 1
            out.append(AgreementMessage(9, view.round, view.attempt, 5, r, EVIL))
            self.injected["unknown kind"] += 1
            out.append(AgreementMessage(Kind.PROPOSE, view.round, view.attempt, 5, r, EVIL))
            self.injected["proposal from a node that is not the leader"] += 1
        # exact replays of honest echoes already in flight: the receiver drops the second copy
        for m in proposals[:3]:
            out.append(m)
            self.injected["duplicate"] += 1
        return out


def test_forged_replayed_and_malformed_messages_are_rejected_with_reasons():
    n, byz = 7, {5}
    attacker = ChannelAttacker(n, byz)
    dba = protocol(n, 2)
    out = dba.broadcast(round=4, attempt=0, digest=GOOD, byzantine=byz, behaviour=attacker)
    assert out.digest == GOOD and out.consistent
    assert out.rejected == attacker.injected


@st.composite
def scenarios(draw):
    n = draw(st.integers(4, 13))
    f = (n - 1) // 3
    byz = draw(st.sets(st.integers(0, n - 1), max_size=f))
    seed = draw(st.integers(0, 2**32 - 1))
    rnd = draw(st.integers(0, 50))
    return n, f, byz, seed, rnd


class RandomByzantine:
    """Byzantine nodes send random kinds to random receivers at random steps; with probability ``coherence`` a
    message carries the attack's favourite digest, otherwise one from a small pool (so both split-brain and
    coordinated pushes for one wrong value occur)."""

    def __init__(self, seed: int, coherence: float):
        self.rng = np.random.default_rng(seed)
        self.coherence = coherence
        self.favourite = (EVIL, OTHER)[seed % 2]

    def act(self, view):
        pool = [view.honest_digest, EVIL, OTHER]
        out = []
        for s in sorted(view.byzantine):
            for r in range(view.n_nodes):
                if self.rng.random() < 0.6:
                    kind = int(self.rng.choice([Kind.PROPOSE, Kind.ECHO, Kind.READY]))
                    coherent = self.rng.random() < self.coherence
                    digest = self.favourite if coherent else pool[self.rng.integers(3)]
                    out.append(AgreementMessage(kind, view.round, view.attempt, s, r, digest))
        return out


@settings(max_examples=120, deadline=None)
@given(case=scenarios(), validated=st.booleans(), coherence=st.sampled_from([0.0, 0.5, 0.9, 1.0]))
def test_every_honest_node_ends_with_the_same_digest_or_all_detect(case, validated, coherence):
    n, f, byz, seed, rnd = case
    validate = (lambda node, d: d == GOOD) if validated else None
    dba = protocol(n, f)
    res = dba.agree(
        round=rnd,
        digest=GOOD,
        byzantine=byz,
        behaviour=RandomByzantine(seed, coherence),
        validate=validate,
    )
    honest = set(range(n)) - byz
    for out in res.attempts:
        assert out.consistent
        assert set(out.delivered) == honest
        if out.digest is None:
            assert out.detected == frozenset(honest)
        if out.leader not in byz:
            assert out.digest == GOOD  # validity: an honest leader's digest is always delivered
        if validated and out.digest is not None:
            assert out.digest == GOOD  # honest nodes only echo the model they computed
    assert res.succeeded  # rotating leaders: at most f Byzantine in a row, f + 1 attempts


def test_model_digest():
    a = np.linspace(0, 1, 7)
    assert model_digest(a) == model_digest(a.copy()) and len(model_digest(a)) == 32
    assert model_digest(a) != model_digest(np.where(a == 1.0, np.nextafter(1.0, 2.0), a))
    assert model_digest(a) != model_digest(a.reshape(7, 1))
    assert model_digest(np.arange(3)) == model_digest(np.arange(3.0))


# -- the behaviours the broker's agreement attacks run -----------------------------------------------------------
def _valid(d):
    return lambda node, digest: digest == d


def test_wrong_digest_leader_is_detected_by_everyone_and_the_next_leader_succeeds():
    from ceas.consensus.agreement import WrongDigest

    dba = protocol(10, 3)
    res = dba.agree(
        0, GOOD, byzantine={0, 4, 7}, behaviour=WrongDigest(EVIL), validate=_valid(GOOD)
    )
    first = res.attempts[0]
    assert first.leader == 0 and first.digest is None
    assert first.detected == first.leader_evidence == frozenset(set(range(10)) - {0, 4, 7})
    assert res.digest == GOOD and res.leader == 1 and len(res.attempts) == 2


def test_conflicting_votes_are_rejected_as_equivocation_and_cannot_split_honest_nodes():
    from ceas.consensus.agreement import ConflictingVotes

    dba = protocol(10, 3)
    out = dba.broadcast(1, 0, GOOD, byzantine={2, 5, 9}, behaviour=ConflictingVotes(EVIL),
                        validate=_valid(GOOD))  # fmt: skip
    assert out.digest == GOOD and out.consistent
    assert out.rejected["sender equivocated"] > 0
    # a Byzantine leader proposing each value to half: nothing valid for half -> no quorum, all detect
    bad = dba.broadcast(0, 0, GOOD, byzantine={0, 5, 9}, behaviour=ConflictingVotes(EVIL),
                        validate=_valid(GOOD))  # fmt: skip
    assert bad.consistent
    assert bad.digest in (None, GOOD)


def test_make_behaviour_names_and_errors():
    from ceas.consensus.agreement import BEHAVIOURS, Silent, make_behaviour

    assert set(BEHAVIOURS) == {"silent", "equivocating-leader", "conflicting-votes", "wrong-digest"}
    assert isinstance(make_behaviour("silent", EVIL), Silent)
    with pytest.raises(ValidationError, match="allowed: conflicting-votes, equivocating-leader"):
        make_behaviour("loud", EVIL)
    with pytest.raises(ValidationError, match="32 bytes"):
        make_behaviour("wrong-digest", b"short")
