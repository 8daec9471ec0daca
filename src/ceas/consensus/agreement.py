"""Agreement on the new model without a trusted broker: detectable Byzantine agreement on θ^(t+1)'s digest.

The round's leader broadcasts the digest of θ^(t+1) and every node runs Bracha's echo/ready broadcast over
pairwise-authenticated links (SPEC §6, defence 5):

1. the leader sends ``PROPOSE(d)`` to every node;
2. an honest node that gets a valid proposal from the leader (and, when a validity check is given, agrees that d is
   the digest of the model it computed itself) sends ``ECHO(d)`` to all, once;
3. an honest node sends ``READY(d)`` to all, once, after ``ECHO(d)`` from ⌈(n + f + 1)/2⌉ distinct nodes or
   ``READY(d)`` from f + 1;
4. a node delivers d after ``READY(d)`` from 2f + 1 distinct nodes.

With n > 3f, two echo quorums share an honest node, so all honest READYs carry the same digest; and once one honest
node delivers, f + 1 honest READYs reach everybody, so every honest node delivers too. The simulation runs honest
nodes to quiescence after the adversary's last move, so each attempt ends with **every honest node holding the same
digest, or every honest node detecting failure**. A Byzantine leader who equivocates either gets one of its values
delivered consistently (the nodes it lied to then hold proof of its equivocation) or gets nothing delivered, which
every honest node detects; the round is then retried with the next leader. Leaders rotate, so with at most f
Byzantine nodes f + 1 attempts always suffice.

Messages are authenticated by an injected ``sign(sender, receiver, body) -> tag`` / ``verify(sender, receiver,
body, tag) -> bool`` pair (e.g. the Wegman–Carter MACs of ``ceas.security``), so this module never touches keys. The
authenticated body binds (kind, round, attempt, sender, receiver, digest): forged, redirected, replayed, stale or
malformed messages are rejected with a counted, logged reason and never stop the protocol. Links are reliable: a
message the channel adversary tampers with fails its tag and is re-sent, so honest messages always arrive; the
channel adversary's power is to inject, replay and impersonate. Cost: O(n²) messages per attempt.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

import numpy as np

from ceas._validate import check_int
from ceas.errors import ValidationError

__all__ = [
    "BEHAVIOURS",
    "DIGEST_SIZE",
    "AdversaryView",
    "AgreementMessage",
    "AgreementResult",
    "BroadcastOutcome",
    "ByzantineBehaviour",
    "ConflictingVotes",
    "DigestAgreement",
    "EquivocatingLeader",
    "Kind",
    "Silent",
    "WrongDigest",
    "make_behaviour",
    "model_digest",
]

log = logging.getLogger(__name__)

DIGEST_SIZE = 32
_MAGIC = b"CEAG"
_HEAD = struct.Struct(">4sBQIII")  # magic, kind, round, attempt, sender, receiver

Sign = Callable[[int, int, bytes], bytes]
Verify = Callable[[int, int, bytes, bytes], bool]


def model_digest(theta: np.ndarray) -> bytes:
    """SHA-256 of a parameter vector (shape and float64 little-endian values): 32 bytes.

    Examples
    --------
    >>> model_digest(np.zeros(3)) == model_digest(np.zeros(3, dtype=np.float32))
    True
    """
    arr = np.ascontiguousarray(np.asarray(theta, dtype="<f8"))
    h = hashlib.sha256(b"ceas-theta")
    h.update(struct.pack(">I", arr.ndim) + b"".join(struct.pack(">Q", s) for s in arr.shape))
    h.update(arr.tobytes())
    return h.digest()


class Kind(enum.IntEnum):
    """Message kinds of the echo/ready broadcast."""

    PROPOSE = 1
    ECHO = 2
    READY = 3


@dataclass(frozen=True)
class AgreementMessage:
    """One point-to-point message. ``tag`` is empty until signed."""

    kind: int
    round: int
    attempt: int
    sender: int
    receiver: int
    digest: bytes
    tag: bytes = b""

    def body(self) -> bytes:
        """The authenticated bytes: every field but the tag, in a fixed layout.

        Raises
        ------
        ValidationError
            For fields that do not fit the layout (the message is malformed).
        """
        if not isinstance(self.digest, bytes) or len(self.digest) != DIGEST_SIZE:
            raise ValidationError(f"digest must be {DIGEST_SIZE} bytes, got {self.digest!r:.40}")
        try:
            head = _HEAD.pack(
                _MAGIC, self.kind, self.round, self.attempt, self.sender, self.receiver
            )
        except struct.error as exc:
            raise ValidationError(f"message fields do not fit the wire layout: {exc}") from None
        return head + self.digest


@dataclass(frozen=True)
class AdversaryView:
    """What the coordinating adversary knows when it moves (Definition 4: everything honest nodes send).

    Attributes
    ----------
    step : int
        0 = proposal, 1 = echo phase, >= 2 = ready phases.
    round, attempt, leader, n_nodes, f : int
    byzantine : frozenset of int
        The nodes it controls (it signs as them; it has no other node's keys).
    honest_digest : bytes
        The digest an honest leader would propose this round.
    honest_messages : tuple of AgreementMessage
        Every message honest nodes sent in the previous step.
    """

    step: int
    round: int
    attempt: int
    leader: int
    n_nodes: int
    f: int
    byzantine: frozenset[int]
    honest_digest: bytes
    honest_messages: tuple[AgreementMessage, ...]


class ByzantineBehaviour(Protocol):
    """How Byzantine nodes (and the channel adversary) act in one step of a broadcast.

    Messages whose sender is Byzantine and whose tag is empty are signed for it; any other message is delivered as
    given (a forgery unless its tag happens to verify).
    """

    def act(self, view: AdversaryView) -> Iterable[AgreementMessage]: ...


class Silent:
    """Byzantine nodes send nothing (a crashed or withholding leader stalls its attempt)."""

    def act(self, view: AdversaryView) -> Iterable[AgreementMessage]:
        return ()


@dataclass(frozen=True)
class EquivocatingLeader:
    """A split-brain attack: a Byzantine leader proposes ``honest_digest`` to a share of the honest nodes and
    ``alternative`` to the rest; with ``collude`` every Byzantine node also echoes and readies each group's own value
    to it (otherwise they stay silent after the proposal).

    Parameters
    ----------
    alternative : bytes
        The second digest (32 bytes).
    honest_share : float
        Share of honest nodes (by id order) told the honest digest, in [0, 1].
    collude : bool
        Whether the Byzantine followers back each group's value.
    """

    alternative: bytes
    honest_share: float = 0.5
    collude: bool = True

    def act(self, view: AdversaryView) -> Iterable[AgreementMessage]:
        honest = sorted(set(range(view.n_nodes)) - view.byzantine)
        cut = round(self.honest_share * len(honest))
        told = {i: view.honest_digest for i in honest[:cut]} | {
            i: self.alternative for i in honest[cut:]
        }
        if view.step == 0:
            if view.leader not in view.byzantine:
                return ()
            senders, kind = [view.leader], Kind.PROPOSE
        elif view.step in (1, 2) and self.collude:
            senders, kind = sorted(view.byzantine), (Kind.ECHO if view.step == 1 else Kind.READY)
        else:
            return ()
        return [
            AgreementMessage(kind, view.round, view.attempt, s, i, d)
            for s in senders
            for i, d in told.items()
        ]


@dataclass(frozen=True)
class WrongDigest:
    """A Byzantine aggregator: a Byzantine leader proposes ``alternative`` (the digest of a model other than the one
    the round's accepted replies give) to every node, and every Byzantine node echoes and readies it to all.

    With a validity check honest nodes never echo it, so it cannot gather an echo quorum: the attempt fails, every
    honest node detects it and holds evidence against the leader, and the next leader is tried.
    """

    alternative: bytes

    def act(self, view: AdversaryView) -> Iterable[AgreementMessage]:
        if view.step == 0:
            senders, kind = ([view.leader] if view.leader in view.byzantine else []), Kind.PROPOSE
        elif view.step in (1, 2):
            senders, kind = sorted(view.byzantine), (Kind.ECHO if view.step == 1 else Kind.READY)
        else:
            return ()
        return [
            AgreementMessage(kind, view.round, view.attempt, s, r, self.alternative)
            for s in senders
            for r in range(view.n_nodes)
        ]


@dataclass(frozen=True)
class ConflictingVotes:
    """Byzantine followers send conflicting echoes and readies: to every receiver both ``honest_digest`` and
    ``alternative`` (in an order that alternates between receivers), in the echo and both ready steps, so that
    receivers see different first votes from the same sender. A Byzantine leader proposes each value to half.

    An honest node counts at most one vote per sender and kind (a second, different one is rejected as
    "sender equivocated"), so the f Byzantine votes can neither complete a quorum for ``alternative`` nor split the
    honest nodes' quorums for the honest digest.
    """

    alternative: bytes

    def act(self, view: AdversaryView) -> Iterable[AgreementMessage]:
        pair = (view.honest_digest, self.alternative)
        out = []
        if view.step == 0 and view.leader in view.byzantine:
            for r in range(view.n_nodes):
                out.append(
                    AgreementMessage(
                        Kind.PROPOSE, view.round, view.attempt, view.leader, r, pair[r % 2]
                    )
                )
            return out
        if view.step not in (1, 2, 3):
            return out
        kind = Kind.ECHO if view.step == 1 else Kind.READY
        for s in sorted(view.byzantine):
            for r in range(view.n_nodes):
                first = (r + s) % 2
                for d in (pair[first], pair[1 - first]):
                    out.append(AgreementMessage(kind, view.round, view.attempt, s, r, d))
        return out


BEHAVIOURS: dict[str, Callable[[bytes], ByzantineBehaviour]] = {
    "silent": lambda alternative: Silent(),
    "equivocating-leader": lambda alternative: EquivocatingLeader(alternative),
    "conflicting-votes": ConflictingVotes,
    "wrong-digest": WrongDigest,
}
"""Byzantine behaviours in agreement by name (the agreement attacks of ``ceas.security``), built from the digest
of the model the adversary would like applied instead."""


def make_behaviour(name: str, alternative: bytes) -> ByzantineBehaviour:
    """The behaviour registered as ``name`` in :data:`BEHAVIOURS`, pushing ``alternative`` (32 bytes)."""
    if name not in BEHAVIOURS:
        raise ValidationError(
            f"agreement behaviour: {name!r} is not allowed; allowed: {', '.join(sorted(BEHAVIOURS))}"
        )
    if not isinstance(alternative, bytes) or len(alternative) != DIGEST_SIZE:
        raise ValidationError(f"alternative must be {DIGEST_SIZE} bytes, got {alternative!r:.40}")
    return BEHAVIOURS[name](alternative)


@dataclass(frozen=True)
class BroadcastOutcome:
    """The end of one broadcast attempt.

    Attributes
    ----------
    round, attempt, leader : int
    digest : bytes or None
        The digest every honest node delivered; None when they did not all deliver the same one.
    delivered : mapping honest node -> bytes or None
        Each honest node's delivered digest (None: it detected failure).
    detected : frozenset of int
        Honest nodes that detected a problem: no delivery, or evidence against the leader.
    leader_evidence : frozenset of int
        Honest nodes holding direct evidence that the leader misbehaved (two proposals, an invalid proposal, or a
        proposal other than the delivered digest).
    rejected : Counter
        Rejected messages by reason.
    steps : int
        Synchronous steps until quiescence.
    """

    round: int
    attempt: int
    leader: int
    digest: bytes | None
    delivered: Mapping[int, bytes | None]
    detected: frozenset[int]
    leader_evidence: frozenset[int]
    rejected: Counter = field(default_factory=Counter)
    steps: int = 0

    @property
    def consistent(self) -> bool:
        """True when all honest nodes delivered the same digest or none delivered any."""
        values = set(self.delivered.values())
        return len(values) <= 1


@dataclass(frozen=True)
class AgreementResult:
    """Agreement on one round's model digest, over as many leader attempts as it took.

    Attributes
    ----------
    round : int
    digest : bytes or None
        The agreed digest, or None if every attempt failed (the round makes no update).
    leader : int or None
        Leader of the successful attempt.
    attempts : tuple of BroadcastOutcome
    """

    round: int
    digest: bytes | None
    leader: int | None
    attempts: tuple[BroadcastOutcome, ...]

    @property
    def succeeded(self) -> bool:
        """True when a digest was agreed."""
        return self.digest is not None


class _Node:
    """One honest node's protocol state during an attempt."""

    __slots__ = ("echo_from", "echoed", "proposals", "readied", "ready_from")

    def __init__(self) -> None:
        self.proposals: list[bytes] = []
        self.echo_from: dict[int, bytes] = {}
        self.ready_from: dict[int, bytes] = {}
        self.echoed = False
        self.readied = False


class DigestAgreement:
    """Detectable Byzantine agreement on a model digest by echo/ready broadcast with rotating leaders.

    Parameters
    ----------
    n_nodes : int
        n, the nodes taking part (ids 0..n-1).
    f : int
        Byzantine nodes tolerated; requires n >= 3f + 1.
    sign : callable
        ``sign(sender, receiver, body) -> tag`` with the sender's key for that link.
    verify : callable
        ``verify(sender, receiver, body, tag) -> bool``.
    max_attempts : int, optional
        Leaders tried per round; default f + 1 (enough with rotating leaders).
    adversary_steps : int
        Steps in which Byzantine nodes may still send (after them honest nodes run to quiescence).
    """

    def __init__(
        self,
        n_nodes: int,
        f: int,
        sign: Sign,
        verify: Verify,
        *,
        max_attempts: int | None = None,
        adversary_steps: int = 4,
    ) -> None:
        self.n_nodes = check_int("n_nodes", n_nodes, low=1, high=2**32 - 1)
        self.f = check_int("f", f, low=0)
        if self.n_nodes < 3 * self.f + 1:
            raise ValidationError(
                f"agreement tolerates f = {self.f} Byzantine nodes only with n >= 3f + 1 = {3 * self.f + 1}; "
                f"got n = {self.n_nodes}"
            )
        if not callable(sign) or not callable(verify):
            raise ValidationError("sign and verify must be callables")
        self.sign = sign
        self.verify = verify
        self.max_attempts = (
            self.f + 1 if max_attempts is None else check_int("max_attempts", max_attempts, low=1)
        )
        self.adversary_steps = check_int("adversary_steps", adversary_steps, low=0)

    @property
    def echo_quorum(self) -> int:
        """⌈(n + f + 1)/2⌉ echoes make an honest node ready."""
        return (self.n_nodes + self.f + 2) // 2

    def leader_of(self, round: int, attempt: int) -> int:
        """Leader of ``attempt`` in ``round``: rotates through all nodes."""
        return (round + attempt) % self.n_nodes

    # -- one attempt ---------------------------------------------------------------------------------------------
    def _reject(self, rejected: Counter, msg: object, reason: str) -> None:
        rejected[reason] += 1
        log.debug("agreement: rejected %r: %s", msg, reason)

    def _accept(
        self, msg: object, round: int, attempt: int, leader: int, rejected: Counter
    ) -> bool:
        """Validate one delivered message; on failure count the reason and return False."""
        if not isinstance(msg, AgreementMessage):
            self._reject(rejected, msg, "not a message")
            return False
        try:
            body = msg.body()
        except ValidationError as exc:
            self._reject(rejected, msg, f"malformed: {exc}")
            return False
        if not 0 <= msg.sender < self.n_nodes:
            self._reject(rejected, msg, "unknown sender")
            return False
        if msg.kind not in (Kind.PROPOSE, Kind.ECHO, Kind.READY):
            self._reject(rejected, msg, "unknown kind")
            return False
        if (msg.round, msg.attempt) < (round, attempt):
            self._reject(rejected, msg, "stale round or attempt (replay)")
            return False
        if (msg.round, msg.attempt) > (round, attempt):
            self._reject(rejected, msg, "future round or attempt")
            return False
        if not isinstance(msg.tag, bytes) or not self.verify(
            msg.sender, msg.receiver, body, msg.tag
        ):
            self._reject(rejected, msg, "bad tag")
            return False
        if msg.kind == Kind.PROPOSE and msg.sender != leader:
            self._reject(rejected, msg, "proposal from a node that is not the leader")
            return False
        return True

    def _broadcast(
        self, kind: Kind, round: int, attempt: int, sender: int, digest: bytes
    ) -> list[AgreementMessage]:
        out = []
        for r in range(self.n_nodes):
            m = AgreementMessage(kind, round, attempt, sender, r, digest)
            out.append(
                AgreementMessage(
                    kind, round, attempt, sender, r, digest, self.sign(sender, r, m.body())
                )
            )
        return out

    def broadcast(
        self,
        round: int,
        attempt: int,
        digest: bytes,
        *,
        byzantine: Iterable[int] = (),
        behaviour: ByzantineBehaviour | None = None,
        validate: Callable[[int, bytes], bool] | None = None,
    ) -> BroadcastOutcome:
        """Run one echo/ready broadcast led by :meth:`leader_of` (round, attempt).

        Parameters
        ----------
        round, attempt : int
        digest : bytes
            The digest an honest leader proposes (32 bytes, e.g. :func:`model_digest` of θ^(t+1)).
        byzantine : iterable of int
            Nodes the adversary controls (at most f for the guarantees to hold).
        behaviour : ByzantineBehaviour, optional
            What they do; default :class:`Silent`.
        validate : callable, optional
            ``validate(node, digest) -> bool``: an honest node echoes only proposals it validates (e.g. equal to
            the digest of the model it computed itself). Default: any well-formed proposal.

        Returns
        -------
        BroadcastOutcome
        """
        round = check_int("round", round, low=0)
        attempt = check_int("attempt", attempt, low=0)
        if not isinstance(digest, bytes) or len(digest) != DIGEST_SIZE:
            raise ValidationError(f"digest must be {DIGEST_SIZE} bytes, got {digest!r:.40}")
        byz = frozenset(int(b) for b in byzantine)
        if any(not 0 <= b < self.n_nodes for b in byz):
            raise ValidationError(
                f"byzantine must be node ids in [0, {self.n_nodes - 1}], got {sorted(byz)}"
            )
        behaviour = behaviour or Silent()
        leader = self.leader_of(round, attempt)
        honest = [i for i in range(self.n_nodes) if i not in byz]
        nodes = {i: _Node() for i in honest}
        rejected: Counter = Counter()

        outbox: list[AgreementMessage] = []
        if leader not in byz:
            outbox = self._broadcast(Kind.PROPOSE, round, attempt, leader, digest)
        step = 0
        max_steps = self.adversary_steps + self.n_nodes + 4
        while step <= max_steps:
            if step < self.adversary_steps:
                view = AdversaryView(
                    step, round, attempt, leader, self.n_nodes, self.f, byz, digest, tuple(outbox)
                )
                outbox += self._adversary_messages(behaviour.act(view), byz)
            if not outbox and step >= self.adversary_steps:
                break
            inflight, outbox = outbox, []
            step += 1
            outbox += self._deliver(inflight, nodes, round, attempt, leader, rejected, validate)
            outbox += self._readies(nodes, round, attempt)
        return self._outcome(nodes, round, attempt, leader, rejected, validate, step)

    def _adversary_messages(self, messages, byz: frozenset) -> list:
        """The adversary's messages of one step, each tagged with its sender's key where it may sign."""
        out = []
        for m in messages:
            if isinstance(m, AgreementMessage) and not m.tag and m.sender in byz:
                try:
                    m = AgreementMessage(
                        m.kind,
                        m.round,
                        m.attempt,
                        m.sender,
                        m.receiver,
                        m.digest,
                        self.sign(m.sender, m.receiver, m.body()),
                    )
                except ValidationError:
                    pass  # malformed: delivered unsigned and rejected as such
            out.append(m)
        return out

    def _deliver(
        self,
        inflight,
        nodes: dict,
        round: int,
        attempt: int,
        leader: int,
        rejected: Counter,
        validate,
    ) -> list[AgreementMessage]:
        """Honest receivers process one step's messages; returns the echoes their first valid proposal makes."""
        outbox: list[AgreementMessage] = []
        for m in inflight:
            receiver = getattr(m, "receiver", None)
            # Only honest receivers process messages (the adversary already sees everything).
            if not isinstance(receiver, int) or receiver not in nodes:
                continue
            if not self._accept(m, round, attempt, leader, rejected):
                continue
            node = nodes[receiver]
            if m.kind == Kind.PROPOSE:
                node.proposals.append(m.digest)
                if len(node.proposals) == 1 and (validate is None or validate(receiver, m.digest)):
                    node.echoed = True
                    outbox += self._broadcast(Kind.ECHO, round, attempt, receiver, m.digest)
                continue
            seen = node.echo_from if m.kind == Kind.ECHO else node.ready_from
            if m.sender in seen:
                reason = "duplicate" if seen[m.sender] == m.digest else "sender equivocated"
                self._reject(rejected, m, reason)
                continue
            seen[m.sender] = m.digest
        return outbox

    def _readies(self, nodes: dict, round: int, attempt: int) -> list[AgreementMessage]:
        """Each honest node that has an echo quorum or f + 1 readies for a digest sends its ready (once)."""
        outbox: list[AgreementMessage] = []
        for i, node in nodes.items():
            if node.readied:
                continue
            echo_count = Counter(node.echo_from.values())
            ready_count = Counter(node.ready_from.values())
            ready_for = sorted(
                d
                for d in set(echo_count) | set(ready_count)
                if echo_count[d] >= self.echo_quorum or ready_count[d] >= self.f + 1
            )
            if ready_for:
                node.readied = True
                outbox += self._broadcast(Kind.READY, round, attempt, i, ready_for[0])
        return outbox

    def _outcome(
        self,
        nodes: dict,
        round: int,
        attempt: int,
        leader: int,
        rejected: Counter,
        validate,
        step: int,
    ) -> BroadcastOutcome:
        """What each honest node delivered (2f + 1 readies), who detected a failure, and evidence on the leader."""
        delivered: dict[int, bytes | None] = {}
        evidence = set()
        for i, node in nodes.items():
            ready_count = Counter(node.ready_from.values())
            done = [d for d, c in ready_count.items() if c >= 2 * self.f + 1]
            delivered[i] = min(done) if done else None
            bad_proposal = (
                node.proposals and validate is not None and not validate(i, node.proposals[0])
            )
            if (
                len(set(node.proposals)) > 1
                or bad_proposal
                or (
                    delivered[i] is not None
                    and node.proposals
                    and node.proposals[0] != delivered[i]
                )
            ):
                evidence.add(i)
        values = set(delivered.values())
        common = next(iter(values)) if len(values) == 1 else None
        detected = frozenset(i for i, d in delivered.items() if d is None) | frozenset(evidence)
        if rejected:
            log.info("agreement round %d attempt %d: rejected %s", round, attempt, dict(rejected))
        if common is None:
            log.info(
                "agreement round %d attempt %d (leader %d): no digest delivered",
                round,
                attempt,
                leader,
            )
        return BroadcastOutcome(
            round=round,
            attempt=attempt,
            leader=leader,
            digest=common,
            delivered=MappingProxyType(delivered),
            detected=detected,
            leader_evidence=frozenset(evidence),
            rejected=rejected,
            steps=step,
        )

    # -- a round -------------------------------------------------------------------------------------------------
    def agree(
        self,
        round: int,
        digest: bytes,
        *,
        byzantine: Iterable[int] = (),
        behaviour: ByzantineBehaviour | None = None,
        validate: Callable[[int, bytes], bool] | None = None,
    ) -> AgreementResult:
        """Agree on round ``round``'s model digest, retrying with the next leader after a detected failure.

        Parameters are those of :meth:`broadcast`. Returns the agreed digest, or None after ``max_attempts``
        failed attempts (the round then makes no update).
        """
        byz = frozenset(int(b) for b in byzantine)
        outcomes = []
        for attempt in range(self.max_attempts):
            out = self.broadcast(
                round, attempt, digest, byzantine=byz, behaviour=behaviour, validate=validate
            )
            outcomes.append(out)
            if out.digest is not None:
                return AgreementResult(round, out.digest, out.leader, tuple(outcomes))
            log.warning(
                "agreement round %d: attempt %d failed (leader %d); retrying",
                round,
                attempt,
                out.leader,
            )
        return AgreementResult(round, None, None, tuple(outcomes))
