"""Pairwise one-time MACs for all-to-all protocols (agreement without a trusted broker, SPEC §6 defence 5).

:class:`PairwiseAuthenticator` gives the ``sign(sender, receiver, body) -> tag`` /
``verify(sender, receiver, body, tag) -> bool`` pair that :mod:`ceas.consensus.agreement` expects, backed by one
:class:`~ceas.security.mac.OneTimeMac` per unordered node pair (one key pool per link, used in both directions). The
tag it returns is self-contained: the 8-byte big-endian sequence number of the one-time pad followed by the 16-byte
Wegman–Carter tag (24 bytes, 128 key bits per message as everywhere else).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np

from ceas.security.mac import TAG_BYTES, KeySource, MacStatus, OneTimeMac

__all__ = ["PAIRWISE_TAG_BYTES", "PairwiseAuthenticator"]

_SEQ = struct.Struct(">Q")
PAIRWISE_TAG_BYTES = _SEQ.size + TAG_BYTES
"""Length of a pairwise tag: sequence number (8) + Poly1305 tag (16)."""


class PairwiseAuthenticator:
    """Authenticated point-to-point messages between any two nodes.

    Parameters
    ----------
    pool_for : callable (a, b) -> KeySource
        The key pool of the link between nodes ``a < b``; called once per pair, on first use.
    refresh_messages : int, default 1000
        Messages per Poly1305 hash key (SPEC §6).

    Examples
    --------
    >>> class Pool:
    ...     def __init__(self): self.key = bytes(range(256))
    ...     @property
    ...     def available_bits(self): return 8 * len(self.key)
    ...     def take(self, n): out, self.key = self.key[:n], self.key[n:]; return out
    >>> auth = PairwiseAuthenticator(lambda a, b: Pool())
    >>> tag = auth.sign(1, 2, b"ECHO")
    >>> auth.verify(1, 2, b"ECHO", tag), auth.verify(1, 2, b"ECHO", tag), auth.verify(1, 3, b"ECHO", tag)
    (True, False, False)
    """

    def __init__(
        self, pool_for: Callable[[int, int], KeySource], *, refresh_messages: int = 1000
    ) -> None:
        self.pool_for = pool_for
        self.refresh_messages = refresh_messages
        self._macs: dict[tuple[int, int], OneTimeMac] = {}

    def mac(self, a: int, b: int) -> OneTimeMac:
        """The authenticator of the link between ``a`` and ``b`` (either order)."""
        key = (min(a, b), max(a, b))
        mac = self._macs.get(key)
        if mac is None:
            mac = OneTimeMac(self.pool_for(*key), refresh_messages=self.refresh_messages, link=key)
            self._macs[key] = mac
        return mac

    def sign(self, sender: int, receiver: int, body: bytes) -> bytes:
        """24-byte tag for ``body`` from ``sender`` to ``receiver``.

        Raises
        ------
        KeyExhaustedError
            If the pair's key pool is dry: the message must not be sent.
        """
        seq, tag = self.mac(sender, receiver).tag(body)
        return _SEQ.pack(seq) + tag

    def verify(self, sender: int, receiver: int, body: bytes, tag: bytes) -> bool:
        """Whether ``tag`` authenticates ``body`` on this pair's link and has not been used before; never raises."""
        if not isinstance(tag, (bytes, bytearray)) or len(tag) != PAIRWISE_TAG_BYTES:
            return False
        if not all(isinstance(x, (int, np.integer)) for x in (sender, receiver)):
            return False
        key = (min(sender, receiver), max(sender, receiver))
        mac = self._macs.get(key)
        if mac is None:  # no tag was ever issued on this link
            return False
        (seq,) = _SEQ.unpack_from(tag)
        return mac.verify(seq, body, bytes(tag[_SEQ.size :])) is MacStatus.OK
