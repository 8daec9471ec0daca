"""Pairwise MACs for the all-to-all agreement protocol."""

from __future__ import annotations

import pytest
from security_helpers import StubKeyPool, reference_poly1305

from ceas.security.mac import KeyExhaustedError
from ceas.security.pairwise import PAIRWISE_TAG_BYTES, PairwiseAuthenticator


def test_sign_and_verify_between_pairs():
    pools: dict[tuple[int, int], StubKeyPool] = {}

    def pool_for(a, b):
        pools[(a, b)] = StubKeyPool(1024, seed=10 * a + b)
        return pools[(a, b)]

    auth = PairwiseAuthenticator(pool_for)
    tag = auth.sign(3, 1, b"PROPOSE d")
    assert len(tag) == PAIRWISE_TAG_BYTES == 24
    assert list(pools) == [(1, 3)]  # one pool per unordered pair, created on first use
    # The tag is Poly1305 under r || s taken from the pair's pool, with the sequence number in front.
    key = pools[(1, 3)].key
    assert tag == (0).to_bytes(8, "big") + reference_poly1305(key[:32], b"PROPOSE d")
    assert not auth.verify(3, 1, b"PROPOSE e", tag)  # tampered body
    assert not auth.verify(3, 2, b"PROPOSE d", tag)  # wrong link
    assert not auth.verify(3, 1, b"PROPOSE d", tag[:-1])  # wrong length
    assert not auth.verify(
        3, 1, b"PROPOSE d", (5).to_bytes(8, "big") + tag[8:]
    )  # unissued sequence number
    assert not auth.verify("3", 1, b"PROPOSE d", tag)  # garbage ids never raise
    assert auth.verify(3, 1, b"PROPOSE d", tag)
    assert not auth.verify(3, 1, b"PROPOSE d", tag)  # a replay: the one-time pad is spent
    back = auth.sign(1, 3, b"ECHO d")  # the same link in the other direction uses the next pad
    assert back[:8] == (1).to_bytes(8, "big") and auth.verify(1, 3, b"ECHO d", back)


def test_a_dry_pair_cannot_send():
    auth = PairwiseAuthenticator(lambda a, b: StubKeyPool(32))
    auth.sign(0, 1, b"a")
    with pytest.raises(KeyExhaustedError, match=r"key pool of link \(0, 1\) has 0 bits"):
        auth.sign(1, 0, b"b")
