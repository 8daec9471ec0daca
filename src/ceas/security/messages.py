"""Authenticated message envelopes and the broker's verifier (SPEC §6, defence 1).

Every classical message of a round travels as an **envelope** over (round, node, nonce, stamp, payload digest) with a
one-time Wegman–Carter tag (:mod:`ceas.security.mac`) on its canonical encoding::

    offset  size  field
    0       4     magic b"CEAS"
    4       1     version (1)
    5       4     round           uint32, big-endian
    9       4     node            uint32
    13      8     nonce           uint64 (the link's MAC sequence number; never reused)
    21      2     stamp length L  uint16
    23      L     stamp           opaque bytes (the consensus layer encodes the fidelity stamp)
    23+L    32    payload digest  SHA-256 of the payload (see :func:`payload_digest`)
    55+L    16    tag             Poly1305 one-time tag over bytes [0, 55+L)

The payload itself (a gradient vector, or a quantum payload's measured estimate) is bound to the envelope by its
digest. :class:`Verifier` is the broker's side: it sorts each arriving message into accepted or rejected with a reason,
logs the reason, and never raises, so one malformed or hostile message cannot crash a round.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import struct
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ceas.errors import ProtocolError, ValidationError
from ceas.security.mac import TAG_BYTES, KeyExhaustedError, MacStatus, OneTimeMac

__all__ = [
    "DIGEST_BYTES",
    "MAGIC",
    "Envelope",
    "MalformedMessage",
    "Reason",
    "Signer",
    "Verdict",
    "Verifier",
    "decode_envelope",
    "encode_body",
    "payload_digest",
]

MAGIC = b"CEAS"
VERSION = 1
DIGEST_BYTES = 32
_HEAD = struct.Struct(">4sBIIQH")
_U32, _U64, _U16 = 2**32 - 1, 2**64 - 1, 2**16 - 1
MIN_WIRE_BYTES = _HEAD.size + DIGEST_BYTES + TAG_BYTES
"""Length of an envelope with an empty stamp (71 bytes)."""

logger = logging.getLogger("ceas.security")


class MalformedMessage(ProtocolError):
    """Wire bytes that are not a well-formed envelope (wrong length, magic or version)."""


class Reason(enum.Enum):
    """Why the verifier accepted or rejected a message."""

    ACCEPTED = "accepted"
    MALFORMED = "malformed"
    UNKNOWN_NODE = "unknown-node"
    FUTURE_ROUND = "future-round"
    STALE_ROUND = "stale-round"
    REPLAY = "replay"
    BAD_TAG = "bad-tag"
    DIGEST_MISMATCH = "digest-mismatch"
    KEY_EXHAUSTED = "key-exhausted"


@dataclass(frozen=True)
class Envelope:
    """One decoded message: the authenticated fields and the tag (see the module docstring for the layout)."""

    round: int
    node: int
    nonce: int
    stamp: bytes
    payload_digest: bytes
    tag: bytes

    def body(self) -> bytes:
        """The authenticated bytes (everything but the tag)."""
        return encode_body(self.round, self.node, self.nonce, self.stamp, self.payload_digest)

    def to_bytes(self) -> bytes:
        """Wire encoding: body followed by the 16-byte tag."""
        return self.body() + self.tag


def _check_uint(name: str, value: object, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= top:
        raise ValidationError(f"{name} must be an integer in [0, {top}], got {value!r}")
    return int(value)


def encode_body(round: int, node: int, nonce: int, stamp: bytes, digest: bytes) -> bytes:
    """Canonical bytes of (round, node, nonce, stamp, payload digest): the input of the tag.

    Raises
    ------
    ValidationError
        If a field is out of its range: round and node in [0, 2^32), nonce in [0, 2^64), stamp at most 65,535
        bytes, digest exactly 32 bytes.
    """
    if not isinstance(stamp, (bytes, bytearray)) or len(stamp) > _U16:
        raise ValidationError(
            f"stamp must be bytes of length <= {_U16}, got {type(stamp).__name__}"
        )
    if not isinstance(digest, (bytes, bytearray)) or len(digest) != DIGEST_BYTES:
        raise ValidationError(f"payload digest must be {DIGEST_BYTES} bytes, got {digest!r:.40}")
    head = _HEAD.pack(
        MAGIC,
        VERSION,
        _check_uint("round", round, _U32),
        _check_uint("node", node, _U32),
        _check_uint("nonce", nonce, _U64),
        len(stamp),
    )
    return head + bytes(stamp) + bytes(digest)


def decode_envelope(wire: bytes, *, max_stamp_bytes: int = _U16) -> Envelope:
    """Parse wire bytes into an :class:`Envelope`; checks structure only, not the tag.

    Raises
    ------
    MalformedMessage
        On a wrong type, a wrong total length for the declared stamp length, a stamp longer than
        ``max_stamp_bytes``, or a wrong magic or version.
    """
    if not isinstance(wire, (bytes, bytearray, memoryview)):
        raise MalformedMessage(f"message must be bytes, got {type(wire).__name__}")
    wire = bytes(wire)
    if len(wire) < MIN_WIRE_BYTES:
        raise MalformedMessage(
            f"message is {len(wire)} bytes, shorter than the {MIN_WIRE_BYTES}-byte minimum"
        )
    magic, version, rnd, node, nonce, stamp_len = _HEAD.unpack_from(wire)
    if magic != MAGIC or version != VERSION:
        raise MalformedMessage(
            f"unknown magic/version {magic!r}/{version}; expected {MAGIC!r}/{VERSION}"
        )
    if stamp_len > max_stamp_bytes:
        raise MalformedMessage(f"stamp length {stamp_len} exceeds the {max_stamp_bytes}-byte limit")
    if len(wire) != MIN_WIRE_BYTES + stamp_len:
        raise MalformedMessage(
            f"message is {len(wire)} bytes; a {stamp_len}-byte stamp needs {MIN_WIRE_BYTES + stamp_len}"
        )
    s0 = _HEAD.size
    d0 = s0 + stamp_len
    t0 = d0 + DIGEST_BYTES
    return Envelope(rnd, node, nonce, wire[s0:d0], wire[d0:t0], wire[t0:])


def payload_digest(payload: bytes | np.ndarray) -> bytes:
    """SHA-256 digest of a payload: raw bytes, or an array bound together with its dtype and shape.

    Arrays are hashed as (dtype string, ndim, shape as uint64s, C-order bytes), so a reshaped or re-typed array
    never collides with the original.
    """
    h = hashlib.sha256()
    if isinstance(payload, (bytes, bytearray, memoryview)):
        h.update(b"B")
        h.update(bytes(payload))
        return h.digest()
    arr = np.ascontiguousarray(payload)
    h.update(b"A")
    h.update(arr.dtype.str.encode())
    h.update(struct.pack(f">B{arr.ndim}Q", arr.ndim, *arr.shape))
    h.update(arr.tobytes())
    return h.digest()


class Signer:
    """A node's sending side: wraps stamp and payload in a tagged envelope.

    Parameters
    ----------
    node : int
        The sender's node id.
    mac : OneTimeMac
        Authenticator of the sender's link to the receiver.
    """

    def __init__(self, node: int, mac: OneTimeMac) -> None:
        self.node = _check_uint("node", node, _U32)
        self.mac = mac

    def sign(self, round: int, stamp: bytes, payload: bytes | np.ndarray) -> bytes:
        """Wire bytes of a tagged envelope for ``payload`` in ``round``.

        Raises
        ------
        KeyExhaustedError
            If the link's pool cannot pay for the tag; nothing is sent (record it with
            :meth:`Verifier.record_unsent`).
        """
        nonce = self.mac.next_seq
        body = encode_body(round, self.node, nonce, stamp, payload_digest(payload))
        seq, tag = self.mac.tag(body)
        if seq != nonce:  # the nonce inside the body must be the pad's sequence number
            raise ProtocolError(f"MAC sequence {seq} does not match the envelope nonce {nonce}")
        return body + tag


@dataclass(frozen=True)
class Verdict:
    """Result of checking one message.

    Attributes
    ----------
    reason : Reason
        :attr:`Reason.ACCEPTED` or why it was rejected.
    detail : str
        One human-readable line.
    envelope : Envelope or None
        The decoded envelope (None if the bytes did not parse).
    """

    reason: Reason
    detail: str
    envelope: Envelope | None = None

    @property
    def accepted(self) -> bool:
        """Whether the message may be used."""
        return self.reason is Reason.ACCEPTED

    @property
    def node(self) -> int | None:
        """Claimed sender (unauthenticated unless accepted)."""
        return None if self.envelope is None else self.envelope.node


class Verifier:
    """The broker's receiving side: accepts authentic fresh messages and rejects everything else with a reason.

    Checks, in order: structure (:attr:`Reason.MALFORMED`), sender known (:attr:`Reason.UNKNOWN_NODE`), round
    equal to the current one (:attr:`Reason.FUTURE_ROUND`, :attr:`Reason.STALE_ROUND`), nonce not already accepted
    (:attr:`Reason.REPLAY`), the one-time tag (:attr:`Reason.BAD_TAG`; a spent pad is a replay), and, when the
    payload is given, its digest (:attr:`Reason.DIGEST_MISMATCH`). Every rejection is logged on the
    ``ceas.security`` logger and counted in :attr:`counts`.

    Parameters
    ----------
    macs : Mapping[int, OneTimeMac]
        Authenticator of each known node's link, keyed by node id.
    max_stamp_bytes : int, default 1024
        Longest stamp accepted.
    authenticate : bool, default True
        False only for the ablation "CEAS without authentication" (``security.authentication = false``): the tag
        and the payload digest are not checked (a forger computes the digest of its own payload), the structural and
        header checks (known node, current round, fresh nonce) still are. A valid tag still spends its pad, so the
        key accounting is that of an authenticating broker.
    """

    def __init__(
        self,
        macs: Mapping[int, OneTimeMac],
        *,
        max_stamp_bytes: int = 1024,
        authenticate: bool = True,
    ) -> None:
        self.macs = dict(macs)
        self.authenticate = bool(authenticate)
        self.max_stamp_bytes = _check_uint("max_stamp_bytes", max_stamp_bytes, _U16)
        self.counts: Counter[Reason] = Counter()
        self._accepted_nonces: dict[int, set[int]] = {node: set() for node in self.macs}

    def _finish(self, reason: Reason, detail: str, envelope: Envelope | None = None) -> Verdict:
        self.counts[reason] += 1
        if reason is not Reason.ACCEPTED and logger.isEnabledFor(logging.INFO):
            logger.info("message rejected (%s): %s", reason.value, detail)
        return Verdict(reason, detail, envelope)

    def verify(
        self, wire: bytes, *, round: int, payload: bytes | np.ndarray | None = None
    ) -> Verdict:
        """Check one message received during ``round``; never raises.

        Parameters
        ----------
        wire : bytes
            The message as received.
        round : int
            The broker's current round.
        payload : bytes or ndarray, optional
            The payload that came with the message; if given, it must match the authenticated digest.
        """
        try:
            env = decode_envelope(wire, max_stamp_bytes=self.max_stamp_bytes)
        except MalformedMessage as exc:
            return self._finish(Reason.MALFORMED, str(exc))
        where = f"node {env.node}, round {env.round}, nonce {env.nonce}"
        mac = self.macs.get(env.node)
        if mac is None:
            return self._finish(
                Reason.UNKNOWN_NODE, f"{where}: node is not a known participant", env
            )
        if env.round > round:
            return self._finish(Reason.FUTURE_ROUND, f"{where}: current round is {round}", env)
        if env.round < round:
            return self._finish(Reason.STALE_ROUND, f"{where}: current round is {round}", env)
        if env.nonce in self._accepted_nonces[env.node]:
            return self._finish(Reason.REPLAY, f"{where}: nonce already accepted", env)
        status = mac.verify(env.nonce, env.body(), env.tag)
        if not self.authenticate:
            self._accepted_nonces[env.node].add(env.nonce)
            return self._finish(Reason.ACCEPTED, f"{where} (not authenticated)", env)
        if status is MacStatus.SPENT:
            return self._finish(Reason.REPLAY, f"{where}: one-time pad already spent", env)
        if status is not MacStatus.OK:
            return self._finish(Reason.BAD_TAG, f"{where}: tag invalid ({status.value})", env)
        self._accepted_nonces[env.node].add(env.nonce)
        if payload is not None and payload_digest(payload) != env.payload_digest:
            return self._finish(
                Reason.DIGEST_MISMATCH, f"{where}: payload does not match its digest", env
            )
        return self._finish(Reason.ACCEPTED, where, env)

    def verify_many(
        self,
        wires: Iterable[bytes],
        *,
        round: int,
        payloads: Sequence[bytes | np.ndarray | None] | None = None,
    ) -> list[Verdict]:
        """:meth:`verify` each message in order (``payloads[i]`` goes with ``wires[i]``)."""
        wires = list(wires)
        if payloads is None:
            payloads = [None] * len(wires)
        elif len(payloads) != len(wires):
            raise ValidationError(
                f"payloads must match wires in length, got {len(payloads)} and {len(wires)}"
            )
        return [self.verify(w, round=round, payload=p) for w, p in zip(wires, payloads)]

    def record_unsent(self, node: int, round: int, error: KeyExhaustedError) -> Verdict:
        """Record that ``node`` could not send in ``round`` because its key pool ran dry (a rejection)."""
        return self._finish(Reason.KEY_EXHAUSTED, f"node {node}, round {round}: {error}")
