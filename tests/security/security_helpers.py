"""Helpers for the security tests: a key-pool stand-in and an independent Poly1305 (from RFC 8439)."""

from __future__ import annotations

import numpy as np

P1305 = 2**130 - 5
R_CLAMP = 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF


class StubKeyPool:
    """A finite string of secret bytes consumed front to back (what a QKD key pool looks like to a MAC).

    ``key`` is the whole string; ``taken`` lists every (start, end) byte range handed out.
    """

    def __init__(self, n_bytes: int, seed: int = 0) -> None:
        self.key = np.random.default_rng(seed).bytes(n_bytes)
        self.position = 0
        self.taken: list[tuple[int, int]] = []

    @property
    def available_bits(self) -> int:
        return 8 * (len(self.key) - self.position)

    def take(self, n_bytes: int) -> bytes:
        if 8 * n_bytes > self.available_bits:
            raise RuntimeError("stub pool over-drawn: the MAC must check available_bits first")
        start, self.position = self.position, self.position + n_bytes
        self.taken.append((start, self.position))
        return self.key[start : self.position]


def poly_hash(r: bytes, message: bytes) -> int:
    """Poly1305's polynomial evaluation (RFC 8439 §2.5.1), written from the RFC, before s is added."""
    r_int = int.from_bytes(r, "little") & R_CLAMP
    acc = 0
    for i in range(0, len(message), 16):
        block = int.from_bytes(message[i : i + 16] + b"\x01", "little")
        acc = (acc + block) * r_int % P1305
    return acc


def reference_poly1305(key: bytes, message: bytes) -> bytes:
    """Independent Poly1305: (Poly_r(m) + s) mod 2^128, little-endian."""
    s = int.from_bytes(key[16:], "little")
    return ((poly_hash(key[:16], message) + s) % 2**128).to_bytes(16, "little")
