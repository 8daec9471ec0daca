r"""One-time Wegman–Carter tags keyed from a link's key pool (SPEC §6, defence 1).

Each message :math:`m` on a link gets the tag

.. math:: t = \bigl(\mathrm{Poly}_r(m) + s\bigr) \bmod 2^{128},

where :math:`\mathrm{Poly}_r` is Poly1305's polynomial hash over :math:`\mathbb{F}_{2^{130}-5}` (RFC 8439 §2.5)
with the 128-bit key :math:`r` (clamped), refreshed from the pool every ``refresh_messages`` messages (1,000 by
default), and :math:`s` is a fresh 128-bit one-time pad drawn from the pool for every message. ``cryptography``'s
Poly1305 computes exactly this from the 32-byte key :math:`r \| s`. A forger who has not seen the pool wins with
probability at most :math:`\approx 8\lceil \ell/16 \rceil / 2^{106}` per try for an :math:`\ell`-byte message
(Bernstein 2005), whatever it has observed, because :math:`s` is used once.

A deployed link holds an identical copy of the key pool at each end and both consume it in lockstep. The simulator
keeps **one** pool per link and a ledger of the material the sender has drawn but the receiver has not yet used:
:meth:`OneTimeMac.tag` draws, :meth:`OneTimeMac.verify` consumes. A pad leaves the ledger the first time it verifies a
tag, so no pad ever authenticates two messages.

Key material comes from any :class:`KeySource` (the network layer's key pool fits). An empty pool is never papered
over: :meth:`OneTimeMac.tag` raises :class:`KeyExhaustedError`, a :class:`~ceas.errors.ProtocolError` that the broker
records as a rejected message and the scheduler reads as "feed this link's pool".
"""

from __future__ import annotations

import enum
from collections import Counter
from typing import Protocol, runtime_checkable

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.poly1305 import Poly1305

from ceas.errors import ProtocolError, ValidationError

__all__ = [
    "KEY_BYTES",
    "PAD_BITS",
    "TAG_BYTES",
    "KeyExhaustedError",
    "KeySource",
    "MacStatus",
    "OneTimeMac",
    "key_bits_needed",
    "messages_affordable",
    "poly1305_tag",
    "poly1305_verify",
]

TAG_BYTES = 16
"""Length of a Poly1305 tag in bytes."""
KEY_BYTES = 32
"""Length of a Poly1305 key :math:`r \\| s` in bytes."""
PAD_BITS = 128
"""Bits of one-time pad :math:`s` per message (and of each hash key :math:`r`)."""
_HALF = KEY_BYTES // 2


@runtime_checkable
class KeySource(Protocol):
    """Secret key bits shared by the two ends of one link (a QKD key pool).

    ``take`` removes and returns ``n_bytes`` fresh bytes; ``available_bits`` is what is left.
    """

    @property
    def available_bits(self) -> int:
        """Secret bits left in the pool."""
        ...

    def take(self, n_bytes: int) -> bytes:
        """Remove and return ``n_bytes`` bytes of key."""
        ...


class KeyExhaustedError(ProtocolError):
    """The link's key pool cannot pay for the next tag: the message is not sent and must count as rejected.

    Attributes
    ----------
    link : object
        The link (as given to :class:`OneTimeMac`), for the scheduler.
    needed_bits : int
        Key bits the next tag costs (128, or 256 when the hash key is due for refresh).
    available_bits : int
        Key bits left in the pool.
    """

    def __init__(self, link: object, needed_bits: int, available_bits: int) -> None:
        self.link = link
        self.needed_bits = int(needed_bits)
        self.available_bits = int(available_bits)
        super().__init__(
            f"key pool of link {link!r} has {self.available_bits} bits, the next tag needs {self.needed_bits}: "
            "message rejected; the pool must be fed (BBM92) before this link can send"
        )


class MacStatus(enum.Enum):
    """Outcome of :meth:`OneTimeMac.verify`."""

    OK = "ok"
    """Tag valid; its one-time pad is now spent."""
    BAD_TAG = "bad-tag"
    """Tag does not match (forged or tampered), or has the wrong length."""
    SPENT = "spent"
    """The pad for this sequence number was already used (a replay) or discarded."""
    UNISSUED = "unissued"
    """No tag was ever issued under this sequence number (a forgery)."""


def _check_bytes(name: str, value: object, length: int) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ValidationError(
            f"{name} must be bytes of length {length}, got {type(value).__name__}"
        )
    value = bytes(value)
    if len(value) != length:
        raise ValidationError(f"{name} must be {length} bytes long, got {len(value)}")
    return value


def poly1305_tag(key: bytes, message: bytes) -> bytes:
    r"""Poly1305 tag :math:`(\mathrm{Poly}_r(m) + s) \bmod 2^{128}` of ``message`` under ``key`` = :math:`r \| s`.

    Parameters
    ----------
    key : bytes, length 32
        :math:`r` (clamped as in RFC 8439 §2.5.1) followed by :math:`s`, little-endian.
    message : bytes
        Any length.

    Returns
    -------
    bytes, length 16

    Raises
    ------
    ValidationError
        If ``key`` is not 32 bytes.

    Examples
    --------
    >>> poly1305_tag(bytes(32), bytes(64)).hex()
    '00000000000000000000000000000000'
    """
    return Poly1305.generate_tag(_check_bytes("key", key, KEY_BYTES), bytes(message))


def poly1305_verify(key: bytes, message: bytes, tag: bytes) -> bool:
    """Whether ``tag`` is the Poly1305 tag of ``message`` under ``key`` (constant-time comparison).

    A tag of the wrong length is simply invalid (returns False); a key of the wrong length is a caller error.
    """
    key = _check_bytes("key", key, KEY_BYTES)
    if not isinstance(tag, (bytes, bytearray)) or len(tag) != TAG_BYTES:
        return False
    try:
        Poly1305.verify_tag(key, bytes(message), bytes(tag))
    except InvalidSignature:
        return False
    return True


def _refreshes_in(start: int, n: int, refresh: int) -> int:
    """Multiples of ``refresh`` in the integer range [start, start + n)."""
    return -(-(start + n) // refresh) - -(-start // refresh)


def key_bits_needed(n_messages: int, *, start_seq: int = 0, refresh_messages: int = 1000) -> int:
    """Key bits that ``n_messages`` tags cost, starting at sequence number ``start_seq``.

    Each message costs a 128-bit pad; each sequence number that is a multiple of ``refresh_messages`` costs another
    128 bits for a fresh hash key :math:`r`. For the scheduler's key budget.

    Examples
    --------
    >>> key_bits_needed(1000)        # one r and 1000 pads
    128128
    >>> key_bits_needed(1, start_seq=1000)   # message 1000 starts a new r
    256
    """
    for name, value, low in (
        ("n_messages", n_messages, 0),
        ("start_seq", start_seq, 0),
        ("refresh_messages", refresh_messages, 1),
    ):
        if int(value) != value or value < low:
            raise ValidationError(f"{name} must be an integer >= {low}, got {value!r}")
    n, start, refresh = int(n_messages), int(start_seq), int(refresh_messages)
    return PAD_BITS * (n + _refreshes_in(start, n, refresh))


def messages_affordable(bits: int, *, start_seq: int = 0, refresh_messages: int = 1000) -> int:
    """The most messages ``bits`` key bits pay for from sequence number ``start_seq`` on (inverse of
    :func:`key_bits_needed`).

    Examples
    --------
    >>> messages_affordable(4096)    # the first message also draws the hash key r
    31
    >>> messages_affordable(4096, start_seq=1)
    32
    """
    lo, hi = 0, int(bits) // PAD_BITS  # every message costs at least one pad
    while lo < hi:  # largest n with key_bits_needed(n) <= bits
        mid = (lo + hi + 1) // 2
        if key_bits_needed(mid, start_seq=start_seq, refresh_messages=refresh_messages) <= bits:
            lo = mid
        else:
            hi = mid - 1
    return lo


class OneTimeMac:
    """Wegman–Carter authenticator of one link: tags on the sending side, checks on the receiving side.

    Parameters
    ----------
    pool : KeySource
        The link's key pool; every key bit used comes from it and is removed from it.
    refresh_messages : int, default 1000
        Messages per hash key :math:`r` (SPEC §6).
    window : int, default 65536
        Most pads kept for tags that were issued but not yet checked; beyond it the oldest is discarded and its
        message can no longer be accepted (a lost message must not pin key material forever).
    link : object, optional
        Label of the link, carried into :class:`KeyExhaustedError` for the scheduler.

    Examples
    --------
    >>> class Pool:
    ...     def __init__(self, key): self.key = key
    ...     @property
    ...     def available_bits(self): return 8 * len(self.key)
    ...     def take(self, n): out, self.key = self.key[:n], self.key[n:]; return out
    >>> mac = OneTimeMac(Pool(bytes(range(48))))
    >>> seq, tag = mac.tag(b"hello")
    >>> mac.verify(seq, b"hello", tag), mac.verify(seq, b"hello", tag)
    (<MacStatus.OK: 'ok'>, <MacStatus.SPENT: 'spent'>)
    >>> try:
    ...     OneTimeMac(Pool(b"")).tag(b"hello")
    ... except KeyExhaustedError as err:
    ...     print(err.needed_bits, err.available_bits)
    256 0
    """

    def __init__(
        self,
        pool: KeySource,
        *,
        refresh_messages: int = 1000,
        window: int = 65536,
        link: object = None,
    ) -> None:
        if not isinstance(pool, KeySource):
            raise ValidationError(
                f"pool must provide take(n_bytes) -> bytes and available_bits, got {type(pool).__name__}"
            )
        for name, value in (("refresh_messages", refresh_messages), ("window", window)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(f"{name} must be an integer >= 1, got {value!r}")
        self.pool = pool
        self.refresh_messages = refresh_messages
        self.window = window
        self.link = link
        self._next_seq = 0
        # epoch -> r, kept while a pad of that epoch is outstanding
        self._hash_keys: dict[int, bytes] = {}
        # seq -> s, drawn by the sender and not yet used by the receiver (the receiver's copy of the pool)
        self._pads: dict[int, bytes] = {}
        self._outstanding: Counter[int] = Counter()  # epoch -> pads outstanding

    @property
    def next_seq(self) -> int:
        """Sequence number the next :meth:`tag` will use (the message's nonce)."""
        return self._next_seq

    @property
    def outstanding(self) -> int:
        """Tags issued whose pads have not yet been used by the receiver."""
        return len(self._pads)

    def bits_for_next(self, n_messages: int = 1) -> int:
        """Key bits the next ``n_messages`` tags will cost."""
        return key_bits_needed(
            n_messages, start_seq=self._next_seq, refresh_messages=self.refresh_messages
        )

    def messages_affordable(self) -> int:
        """How many more messages the pool pays for as it stands (for the scheduler's key budget)."""
        return messages_affordable(
            int(self.pool.available_bits),
            start_seq=self._next_seq,
            refresh_messages=self.refresh_messages,
        )

    def _draw(self, n_bytes: int) -> bytes:
        out = self.pool.take(n_bytes)
        if not isinstance(out, (bytes, bytearray)) or len(out) != n_bytes:
            got = len(out) if isinstance(out, (bytes, bytearray)) else type(out).__name__
            raise ProtocolError(
                f"key pool of link {self.link!r} returned {got} bytes when asked for {n_bytes}"
            )
        return bytes(out)

    def tag(self, message: bytes) -> tuple[int, bytes]:
        """Tag ``message`` with a fresh one-time pad; returns ``(sequence number, 16-byte tag)``.

        Raises
        ------
        KeyExhaustedError
            If the pool holds fewer bits than this tag costs; nothing is drawn and the sequence number is unused.
        """
        seq = self._next_seq
        epoch, first_of_epoch = divmod(seq, self.refresh_messages)
        needed = PAD_BITS * (2 if first_of_epoch == 0 else 1)
        available = int(self.pool.available_bits)
        if available < needed:
            raise KeyExhaustedError(self.link, needed, available)
        if first_of_epoch == 0:
            self._hash_keys[epoch] = self._draw(_HALF)
            if epoch > 0 and self._outstanding[epoch - 1] == 0:  # previous r is no longer needed
                self._outstanding.pop(epoch - 1, None)
                self._hash_keys.pop(epoch - 1, None)
        pad = self._draw(_HALF)
        self._pads[seq] = pad
        self._outstanding[epoch] += 1
        self._next_seq = seq + 1
        if len(self._pads) > self.window:
            self._forget(next(iter(self._pads)))
        return seq, Poly1305.generate_tag(self._hash_keys[epoch] + pad, bytes(message))

    def _forget(self, seq: int) -> None:
        del self._pads[seq]
        epoch = seq // self.refresh_messages
        self._outstanding[epoch] -= 1
        if self._outstanding[epoch] == 0 and epoch != self._next_seq // self.refresh_messages:
            del self._outstanding[epoch]
            del self._hash_keys[epoch]

    def verify(self, seq: int, message: bytes, tag: bytes) -> MacStatus:
        """Check ``tag`` on ``message`` sent under sequence number ``seq``; never raises.

        A valid tag spends its pad, so the same (seq, message, tag) is :attr:`MacStatus.SPENT` the second time. A
        wrong tag leaves the pad in place: the honest message can still arrive, and each forgery attempt succeeds
        with probability at most about :math:`2^{-100}` independently.
        """
        if not isinstance(seq, (int, np.integer)) or not 0 <= seq < self._next_seq:
            return MacStatus.UNISSUED
        seq = int(seq)
        pad = self._pads.get(seq)
        if pad is None:
            return MacStatus.SPENT
        if not isinstance(message, (bytes, bytearray)):
            return MacStatus.BAD_TAG
        if not poly1305_verify(self._hash_keys[seq // self.refresh_messages] + pad, message, tag):
            return MacStatus.BAD_TAG
        self._forget(seq)
        return MacStatus.OK
