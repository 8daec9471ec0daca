"""Envelopes and the broker's verifier: canonical encoding, and 10^5 hostile messages all rejected."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from security_helpers import StubKeyPool

from ceas.errors import ValidationError
from ceas.security.mac import KeyExhaustedError, OneTimeMac, key_bits_needed
from ceas.security.messages import (
    MIN_WIRE_BYTES,
    Envelope,
    MalformedMessage,
    Reason,
    Signer,
    Verifier,
    decode_envelope,
    encode_body,
    payload_digest,
)


def network(n_nodes: int, messages_per_node: int, seed: int = 0):
    """Signers and the broker's verifier for nodes 0..n-1, each link with its own pool."""
    macs = {
        node: OneTimeMac(
            StubKeyPool(key_bits_needed(messages_per_node) // 8, seed=seed * 1000 + node)
        )
        for node in range(n_nodes)
    }
    return {node: Signer(node, mac) for node, mac in macs.items()}, Verifier(macs)


@settings(max_examples=200, deadline=None)
@given(
    rnd=st.integers(0, 2**32 - 1),
    node=st.integers(0, 2**32 - 1),
    nonce=st.integers(0, 2**64 - 1),
    stamp=st.binary(max_size=300),
    digest=st.binary(min_size=32, max_size=32),
    tag=st.binary(min_size=16, max_size=16),
)
def test_encoding_round_trips(rnd, node, nonce, stamp, digest, tag):
    env = Envelope(rnd, node, nonce, stamp, digest, tag)
    wire = env.to_bytes()
    assert len(wire) == MIN_WIRE_BYTES + len(stamp)
    assert decode_envelope(wire) == env
    assert wire[:-16] == encode_body(rnd, node, nonce, stamp, digest)


def test_encoding_rejects_out_of_range_fields():
    with pytest.raises(
        ValidationError, match=r"round must be an integer in \[0, 4294967295\], got -1"
    ):
        encode_body(-1, 0, 0, b"", bytes(32))
    with pytest.raises(
        ValidationError, match=r"nonce must be an integer in \[0, 18446744073709551615\], got "
    ):
        encode_body(0, 0, 2**64, b"", bytes(32))
    with pytest.raises(ValidationError, match="payload digest must be 32 bytes"):
        encode_body(0, 0, 0, b"", bytes(31))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda w: w[:-1], "message is 75 bytes; a 5-byte stamp needs 76"),
        (lambda w: w + b"\x00", "message is 77 bytes; a 5-byte stamp needs 76"),
        (lambda w: w[:40], "message is 40 bytes, shorter than the 71-byte minimum"),
        (lambda w: b"XEAS" + w[4:], "unknown magic/version b'XEAS'/1; expected b'CEAS'/1"),
        (lambda w: w[:4] + b"\x02" + w[5:], "unknown magic/version b'CEAS'/2; expected b'CEAS'/1"),
        (lambda w: w[:21] + b"\xff\xff" + w[23:], "stamp length 65535 exceeds the 1024-byte limit"),
        (lambda w: "not bytes", "message must be bytes, got str"),
    ],
)
def test_malformed_messages_are_rejected_with_the_reason(mutate, message):
    wire = Envelope(3, 1, 0, b"stamp", bytes(32), bytes(16)).to_bytes()
    with pytest.raises(MalformedMessage, match="^" + re.escape(message) + "$"):
        decode_envelope(mutate(wire), max_stamp_bytes=1024)
    _, verifier = network(2, 1)
    verdict = verifier.verify(mutate(wire), round=3)
    assert verdict.reason is Reason.MALFORMED and verdict.detail == message and not verdict.accepted


def test_payload_digest_binds_dtype_and_shape():
    a = np.arange(6, dtype=np.float64)
    assert payload_digest(a) == payload_digest(a.copy())
    assert payload_digest(a) != payload_digest(a.reshape(2, 3))
    assert payload_digest(a) != payload_digest(a.astype(np.float32))
    assert payload_digest(a) != payload_digest(a.tobytes())
    b = a.copy()
    b[3] = np.nextafter(b[3], 10)
    assert payload_digest(a) != payload_digest(b)


def test_honest_messages_are_accepted_in_any_order():
    signers, verifier = network(3, 4)
    payload = np.linspace(-1, 1, 8)
    first = signers[0].sign(5, b"stamp-0", payload)
    second = signers[0].sign(5, b"stamp-1", payload)
    other = signers[2].sign(5, b"", b"raw payload")
    assert verifier.verify(second, round=5, payload=payload).accepted
    assert verifier.verify(other, round=5, payload=b"raw payload").accepted
    verdict = verifier.verify(first, round=5, payload=payload)
    assert verdict.accepted and verdict.node == 0 and verdict.envelope.stamp == b"stamp-0"
    assert verifier.counts[Reason.ACCEPTED] == 3


def test_each_rejection_reason():
    signers, verifier = network(3, 8)
    payload = np.ones(4)
    ok = signers[1].sign(2, b"s", payload)
    future = signers[1].sign(3, b"s", payload)
    stale = signers[1].sign(1, b"s", payload)
    impersonated = signers[2].sign(2, b"s", payload)
    env = decode_envelope(impersonated)
    impersonated = Envelope(
        env.round, 1, env.nonce, env.stamp, env.payload_digest, env.tag
    ).to_bytes()
    unknown = Envelope(2, 99, 0, b"s", payload_digest(payload), bytes(16)).to_bytes()
    tampered_payload = signers[0].sign(2, b"s", payload)

    reasons = [
        verifier.verify(future, round=2).reason,
        verifier.verify(stale, round=2).reason,
        verifier.verify(impersonated, round=2).reason,
        verifier.verify(unknown, round=2).reason,
        verifier.verify(ok, round=2, payload=payload).reason,
        verifier.verify(ok, round=2, payload=payload).reason,
        verifier.verify(tampered_payload, round=2, payload=-payload).reason,
    ]
    assert reasons == [
        Reason.FUTURE_ROUND,
        Reason.STALE_ROUND,
        Reason.BAD_TAG,
        Reason.UNKNOWN_NODE,
        Reason.ACCEPTED,
        Reason.REPLAY,
        Reason.DIGEST_MISMATCH,
    ]


def test_rejections_are_logged_with_their_reason(caplog):
    signers, verifier = network(2, 2)
    wire = signers[0].sign(4, b"s", b"p")
    with caplog.at_level(logging.INFO, logger="ceas.security"):
        verifier.verify(wire, round=3)
    assert caplog.records[-1].getMessage() == (
        "message rejected (future-round): node 0, round 4, nonce 0: current round is 3"
    )


def test_a_dry_pool_is_a_recorded_rejection():
    signers, verifier = network(2, 1)
    signers[0].sign(0, b"s", b"p")
    with pytest.raises(KeyExhaustedError) as caught:
        signers[0].sign(1, b"s", b"p")
    verdict = verifier.record_unsent(0, 1, caught.value)
    assert verdict.reason is Reason.KEY_EXHAUSTED and not verdict.accepted
    assert verifier.counts[Reason.KEY_EXHAUSTED] == 1


def _flip_bits(wires: list[bytes], rng: np.random.Generator) -> list[bytes]:
    """One random bit flipped in each wire message."""
    out = []
    positions = rng.random(len(wires))
    bits = rng.integers(0, 8, size=len(wires))
    for wire, pos, bit in zip(wires, positions, bits):
        buf = bytearray(wire)
        buf[int(pos * len(buf))] ^= 1 << int(bit)
        out.append(bytes(buf))
    return out


def test_hundred_thousand_forged_tampered_and_replayed_messages_are_all_rejected():
    """10^5 hostile messages over 50 rounds of 20 nodes; every honest message still gets through."""
    rng = np.random.default_rng(2024)
    n_nodes, n_rounds = 20, 50
    signers, verifier = network(n_nodes, n_rounds)
    per_honest = 100_000 // (n_nodes * n_rounds)  # 100 hostile messages per honest one
    hostile_reasons: dict[str, list[Reason]] = {"tampered": [], "forged": [], "replayed": []}
    history: list[bytes] = []
    honest_accepted = 0
    for rnd in range(n_rounds):
        payloads = rng.normal(size=(n_nodes, 16))
        wires = [signers[k].sign(rnd, rng.bytes(24), payloads[k]) for k in range(n_nodes)]
        for k, wire in enumerate(wires):
            n_tamper = per_honest * 4 // 10
            n_forge = per_honest * 3 // 10
            n_replay = per_honest - n_tamper - n_forge
            # Before the honest message arrives: bit-flipped copies of it, and forgeries in its sender's name
            # (right round, right nonce, any digest, a guessed tag).
            for wire_t in _flip_bits([wire] * n_tamper, rng):
                hostile_reasons["tampered"].append(verifier.verify(wire_t, round=rnd).reason)
            env = decode_envelope(wire)
            for _ in range(n_forge):
                forged = Envelope(
                    rnd, k, env.nonce, env.stamp, rng.bytes(32), rng.bytes(16)
                ).to_bytes()
                hostile_reasons["forged"].append(verifier.verify(forged, round=rnd).reason)
            verdict = verifier.verify(wire, round=rnd, payload=payloads[k])
            honest_accepted += verdict.accepted
            # After it: replays of this round's and earlier rounds' valid messages.
            for i in rng.integers(0, len(history) + 1, size=n_replay):
                replay = wire if i == len(history) else history[i]
                hostile_reasons["replayed"].append(verifier.verify(replay, round=rnd).reason)
        history.extend(wires)

    all_hostile = [r for reasons in hostile_reasons.values() for r in reasons]
    assert len(all_hostile) == 100_000
    assert Reason.ACCEPTED not in all_hostile
    assert honest_accepted == n_nodes * n_rounds
    assert set(hostile_reasons["forged"]) == {Reason.BAD_TAG}
    assert set(hostile_reasons["replayed"]) == {Reason.REPLAY, Reason.STALE_ROUND}
    assert (
        Reason.BAD_TAG in hostile_reasons["tampered"]
        and Reason.MALFORMED in hostile_reasons["tampered"]
    )


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_arbitrary_bytes_and_edits_never_raise_and_are_never_accepted(data):
    signers, verifier = network(2, 1)
    wire = signers[0].sign(0, b"stamp", b"payload")
    choice = data.draw(st.sampled_from(["random", "edit", "truncate", "object"]))
    if choice == "random":
        bad = data.draw(st.binary(max_size=200))
    elif choice == "truncate":
        bad = wire[: data.draw(st.integers(0, len(wire) - 1))]
    elif choice == "object":
        bad = data.draw(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers())))
    else:
        pos = data.draw(st.integers(0, len(wire) - 1))
        value = data.draw(st.integers(0, 255).filter(lambda v: v != wire[pos]))
        bad = wire[:pos] + bytes([value]) + wire[pos + 1 :]
    verdict = verifier.verify(bad, round=0, payload=b"payload")
    assert not verdict.accepted
    assert verifier.verify(
        wire, round=0, payload=b"payload"
    ).accepted  # and the honest one still passes
