"""One-time Wegman–Carter tags: RFC 8439 vectors, an independent Poly1305, pad accounting, dry pools."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from security_helpers import StubKeyPool, poly_hash, reference_poly1305

from ceas.errors import ProtocolError, ValidationError
from ceas.security.mac import (
    KeyExhaustedError,
    MacStatus,
    OneTimeMac,
    key_bits_needed,
    poly1305_tag,
    poly1305_verify,
)

IETF_TEXT = bytes.fromhex(
    "416e79207375626d697373696f6e20746f20746865204945544620696e74656e"
    "6465642062792074686520436f6e7472696275746f7220666f72207075626c69"
    "636174696f6e20617320616c6c206f722070617274206f6620616e2049455446"
    "20496e7465726e65742d4472616674206f722052464320616e6420616e792073"
    "746174656d656e74206d6164652077697468696e2074686520636f6e74657874"
    "206f6620616e204945544620616374697669747920697320636f6e7369646572"
    "656420616e20224945544620436f6e747269627574696f6e222e205375636820"
    "73746174656d656e747320696e636c756465206f72616c2073746174656d656e"
    "747320696e20494554462073657373696f6e732c2061732077656c6c20617320"
    "7772697474656e20616e6420656c656374726f6e696320636f6d6d756e696361"
    "74696f6e73206d61646520617420616e792074696d65206f7220706c6163652c"
    "207768696368206172652061646472657373656420746f"
)
JABBERWOCKY = (
    b"'Twas brillig, and the slithy toves\nDid gyre and gimble in the wabe:\n"
    b"All mimsy were the borogoves,\nAnd the mome raths outgrabe."
)

# (key r||s, message, tag): RFC 8439 §2.5.2 and the eleven vectors of Appendix A.3, in hex.
RFC8439_VECTORS = [
    (
        "85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b",
        b"Cryptographic Forum Research Group".hex(),
        "a8061dc1305136c6c22b8baf0c0127a9",
    ),
    ("00" * 32, "00" * 64, "00" * 16),
    (
        "00" * 16 + "36e5f6b5c5e06070f0efca96227a863e",
        IETF_TEXT.hex(),
        "36e5f6b5c5e06070f0efca96227a863e",
    ),
    (
        "36e5f6b5c5e06070f0efca96227a863e" + "00" * 16,
        IETF_TEXT.hex(),
        "f3477e7cd95417af89a6b8794c310cf0",
    ),
    (
        "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0",
        JABBERWOCKY.hex(),
        "4541669a7eaaee61e708dc7cbcc5eb62",
    ),
    ("02" + "00" * 31, "ff" * 16, "03" + "00" * 15),
    ("02" + "00" * 15 + "ff" * 16, "02" + "00" * 15, "03" + "00" * 15),
    ("01" + "00" * 31, "ff" * 16 + "f0" + "ff" * 15 + "11" + "00" * 15, "05" + "00" * 15),
    ("01" + "00" * 31, "ff" * 16 + "fb" + "fe" * 15 + "01" * 16, "00" * 16),
    ("02" + "00" * 31, "fd" + "ff" * 15, "fa" + "ff" * 15),
    (
        "0100000000000000040000000000000000000000000000000000000000000000",
        "e33594d7505e43b90000000000000000"
        + "3394d7505e4379cd0100000000000000"
        + "00" * 16
        + "01"
        + "00" * 15,
        "14000000000000005500000000000000",
    ),
    (
        "0100000000000000040000000000000000000000000000000000000000000000",
        "e33594d7505e43b90000000000000000" + "3394d7505e4379cd0100000000000000" + "00" * 16,
        "13000000000000000000000000000000",
    ),
]


def test_ietf_text_is_the_rfc_sentence():
    assert len(IETF_TEXT) == 375
    assert IETF_TEXT.startswith(b"Any submission to the IETF") and IETF_TEXT.endswith(
        b"addressed to"
    )


@pytest.mark.parametrize(("key", "message", "tag"), RFC8439_VECTORS)
def test_rfc8439_vectors_through_the_wrapper(key, message, tag):
    key, message, tag = bytes.fromhex(key), bytes.fromhex(message), bytes.fromhex(tag)
    assert poly1305_tag(key, message) == tag
    assert poly1305_verify(key, message, tag)
    assert (
        reference_poly1305(key, message) == tag
    )  # the independent implementation used below is right
    bad = bytes([tag[0] ^ 1]) + tag[1:]
    assert not poly1305_verify(key, message, bad)
    assert not poly1305_verify(key, message, tag[:15])


@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300))
def test_wrapper_matches_an_independent_poly1305(key, message):
    assert poly1305_tag(key, message) == reference_poly1305(key, message)


def test_wrong_key_length_is_a_caller_error():
    with pytest.raises(ValidationError, match="key must be 32 bytes long, got 31"):
        poly1305_tag(bytes(31), b"x")


def test_no_pad_is_ever_used_twice_and_r_refreshes_every_1000_messages():
    n, refresh = 2_500, 1_000
    pool = StubKeyPool(key_bits_needed(n, refresh_messages=refresh) // 8, seed=3)
    mac = OneTimeMac(pool, refresh_messages=refresh)
    rng = np.random.default_rng(4)
    messages = [rng.bytes(int(rng.integers(1, 120))) for _ in range(n)]
    tags = [mac.tag(m) for m in messages]
    assert [seq for seq, _ in tags] == list(range(n))
    assert (
        pool.available_bits == 0
    )  # exactly 128 bits per message plus 128 per r: 3 r's and 2,500 pads

    # The pool's bytes, in order, must be r0, s0..s999, r1, s1000..s1999, r2, s2000..s2499.
    chunks = [pool.key[i : i + 16] for i in range(0, len(pool.key), 16)]
    assert len(chunks) == n + 3
    hash_keys = {e: chunks[e * (refresh + 1)] for e in range(3)}
    expected_pads = [chunks[(i // refresh) * (refresh + 1) + 1 + i % refresh] for i in range(n)]
    # Recover each pad from its tag with the independent polynomial hash: s = tag - Poly_r(m) mod 2^128.
    recovered = [
        (int.from_bytes(tag, "little") - poly_hash(hash_keys[seq // refresh], m)) % 2**128
        for (seq, tag), m in zip(tags, messages)
    ]
    assert recovered == [int.from_bytes(p, "little") for p in expected_pads]
    assert len(set(recovered)) == n  # no pad twice
    spans = sorted(pool.taken)
    assert all(
        a[1] == b[0] for a, b in itertools.pairwise(spans)
    )  # every key byte handed out exactly once

    for (seq, tag), m in zip(tags, messages):
        assert mac.verify(seq, m, tag) is MacStatus.OK
        assert (
            mac.verify(seq, m, tag) is MacStatus.SPENT
        )  # the receiver's pad is gone after one use
    assert mac.outstanding == 0


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(0, 60),
    start=st.integers(0, 60),
    refresh=st.integers(1, 25),
)
def test_key_bits_needed_counts_pads_and_hash_keys(n, start, refresh):
    brute = sum(128 * (2 if seq % refresh == 0 else 1) for seq in range(start, start + n))
    assert key_bits_needed(n, start_seq=start, refresh_messages=refresh) == brute
    pool = StubKeyPool(brute // 8 + key_bits_needed(start, refresh_messages=refresh) // 8)
    mac = OneTimeMac(pool, refresh_messages=refresh)
    for _ in range(start):
        mac.tag(b"warm-up")
    assert mac.bits_for_next(n) == brute
    assert mac.messages_affordable() >= n
    for _ in range(n):
        mac.tag(b"m")
    assert pool.available_bits == 0


def test_dry_pool_rejects_the_message_and_tells_the_caller():
    pool = StubKeyPool(31)  # 248 bits: one short of the first message's r and s
    mac = OneTimeMac(pool, link=("broker", 7))
    with pytest.raises(KeyExhaustedError) as caught:
        mac.tag(b"update")
    err = caught.value
    assert isinstance(err, ProtocolError)
    assert (err.link, err.needed_bits, err.available_bits) == (("broker", 7), 256, 248)
    assert str(err) == (
        "key pool of link ('broker', 7) has 248 bits, the next tag needs 256: message rejected; "
        "the pool must be fed (BBM92) before this link can send"
    )
    assert pool.taken == [] and mac.next_seq == 0  # nothing drawn, no sequence number used

    pool = StubKeyPool(48)  # r + two pads
    mac = OneTimeMac(pool)
    assert mac.messages_affordable() == 2
    mac.tag(b"a")
    mac.tag(b"b")
    with pytest.raises(KeyExhaustedError, match="has 0 bits, the next tag needs 128"):
        mac.tag(b"c")


def test_default_seed_key_pays_for_31_tags():
    pool = StubKeyPool(4096 // 8)
    mac = OneTimeMac(pool)
    assert mac.messages_affordable() == 31
    for _ in range(31):
        mac.tag(b"m")
    with pytest.raises(KeyExhaustedError):
        mac.tag(b"m")


def test_failed_checks_do_not_spend_the_pad():
    mac = OneTimeMac(StubKeyPool(1024))
    seq, tag = mac.tag(b"honest")
    assert mac.verify(seq, b"tampered", tag) is MacStatus.BAD_TAG
    assert mac.verify(seq, b"honest", bytes(16)) is MacStatus.BAD_TAG
    assert mac.verify(seq, b"honest", tag[:8]) is MacStatus.BAD_TAG
    assert mac.verify(seq + 1, b"honest", tag) is MacStatus.UNISSUED
    assert mac.verify(-1, b"honest", tag) is MacStatus.UNISSUED
    assert mac.verify(seq, b"honest", tag) is MacStatus.OK  # the honest message still gets through
    assert mac.verify(seq, b"honest", tag) is MacStatus.SPENT


def test_out_of_order_delivery_and_window():
    mac = OneTimeMac(StubKeyPool(4096), window=3)
    issued = [mac.tag(bytes([i])) for i in range(5)]
    assert mac.outstanding == 3  # pads of messages 0 and 1 were discarded to bound the ledger
    seq0, tag0 = issued[0]
    assert mac.verify(seq0, bytes([0]), tag0) is MacStatus.SPENT
    for i in (4, 2, 3):
        seq, tag = issued[i]
        assert mac.verify(seq, bytes([i]), tag) is MacStatus.OK


def test_a_pool_that_returns_short_key_is_a_protocol_error():
    class Liar(StubKeyPool):
        def take(self, n_bytes):
            return super().take(n_bytes)[:-1]

    with pytest.raises(ProtocolError, match="returned 15 bytes when asked for 16"):
        OneTimeMac(Liar(64)).tag(b"x")


def test_constructor_validation():
    with pytest.raises(ValidationError, match="pool must provide take"):
        OneTimeMac(object())
    with pytest.raises(ValidationError, match="refresh_messages must be an integer >= 1, got 0"):
        OneTimeMac(StubKeyPool(32), refresh_messages=0)
    with pytest.raises(ValidationError, match="n_messages must be an integer >= 0, got -1"):
        key_bits_needed(-1)
