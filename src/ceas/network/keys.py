"""Per-link key pools fed by BBM92 (SPEC §4, §6): secret bits shared by a link's two ends, spent exactly once.

Key bits do not decay. In simulation both ends hold the same material, so a pool is one store of uniformly random
bits: :meth:`KeyPool.deposit` adds fresh bits (distilled by BBM92, or a pre-shared seed key), :meth:`KeyPool.take`
hands out whole bytes in deposit order and never re-issues them. An empty pool raises :class:`ProtocolError`; a
caller must never fall back to unauthenticated messages. The security layer builds its one-time MACs on ``take``.
"""

from __future__ import annotations

import numpy as np

from ceas._validate import check_int
from ceas.errors import ProtocolError

__all__ = ["KeyPool"]


class KeyPool:
    """Secret key material of one link.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the simulated key bits.
    preshared_bits : int, default 0
        Size of a pre-shared seed key deposited at creation (as deployed QKD starts its pools).

    Examples
    --------
    >>> pool = KeyPool(np.random.default_rng(0), preshared_bits=256)
    >>> pool.available_bits
    256
    >>> len(pool.take(16)), pool.available_bits
    (16, 128)
    """

    def __init__(self, rng: np.random.Generator, preshared_bits: int = 0) -> None:
        self._rng = rng
        self._bytes = bytearray()
        self._partial = np.zeros(0, np.uint8)  # bits not yet forming a whole byte
        self.deposited_bits = 0
        self.taken_bits = 0
        self.preshared_bits = check_int("preshared_bits", preshared_bits, 0)
        if preshared_bits:
            self.deposit(preshared_bits)

    @property
    def available_bits(self) -> int:
        """Key bits deposited and not yet taken."""
        return 8 * len(self._bytes) + int(self._partial.size)

    @property
    def available_bytes(self) -> int:
        """Whole bytes :meth:`take` can hand out now."""
        return len(self._bytes)

    def deposit(self, n_bits: int, rng: np.random.Generator | None = None) -> None:
        """Add ``n_bits`` fresh uniformly random key bits (``rng`` overrides the pool's own stream)."""
        n_bits = check_int("n_bits", n_bits, 0)
        if n_bits == 0:
            return
        bits = (rng or self._rng).integers(0, 2, size=n_bits, dtype=np.uint8)
        bits = np.concatenate([self._partial, bits])
        whole = bits.size // 8 * 8
        self._bytes.extend(np.packbits(bits[:whole]).tobytes())
        self._partial = bits[whole:]
        self.deposited_bits += n_bits

    def take(self, n_bytes: int) -> bytes:
        """Consume and return the oldest ``n_bytes`` bytes of key.

        Raises
        ------
        ProtocolError
            Fewer than ``n_bytes`` whole bytes are available (nothing is consumed then).
        """
        n_bytes = check_int("n_bytes", n_bytes, 1)
        if n_bytes > len(self._bytes):
            raise ProtocolError(
                f"key pool holds {len(self._bytes)} bytes ({self.available_bits} bits), {n_bytes} requested; "
                "distil more key (BBM92) before sending"
            )
        out = bytes(self._bytes[:n_bytes])
        del self._bytes[:n_bytes]
        self.taken_bits += 8 * n_bytes
        return out
