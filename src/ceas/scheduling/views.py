"""What a scheduling policy sees and what it returns: the broker fills the views each round, the policy answers.

* :class:`InventoryView` -- the entanglement inventory (Definition 2) as flat arrays: per link (end-to-end channel
  between one node and the broker) its physics and key pool, per live pair its link, age and fidelity.
* :class:`NodeView` -- per node: readiness, trust, last verified stamp value and the round's demand per purpose.
* :class:`Decision` -- the action of the scheduling MDP (Definition 3): participant set, which pair serves which
  purpose, fresh pairs requested, generation on/off, purification, pairs near their cutoff converted to key.

All three are frozen dataclasses of read-only numpy arrays (copied on construction, so a policy cannot change what
the broker or the network hold). Shapes use L links, P live pairs and N nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ceas.errors import ValidationError
from ceas.network.werner import bbm92_key_fraction

__all__ = ["PURPOSES", "Decision", "InventoryView", "NodeView"]

PURPOSES: tuple[str, str, str] = ("payload", "verification", "key")
"""Column order of :attr:`Decision.requests`: quantum payload, entanglement-verification test, key distillation."""


def _frozen(value, dtype, name: str, ndim: int) -> np.ndarray:
    src = np.asarray(value)
    if np.dtype(dtype).kind == "i" and src.dtype.kind == "f" and not np.all(np.mod(src, 1) == 0):
        raise ValidationError(
            f"{name} must hold integers, got {src.ravel()[np.mod(src.ravel(), 1) != 0][0].item()!r}"
        )
    arr = np.array(src, dtype=dtype, copy=True)
    if arr.ndim != ndim:
        raise ValidationError(f"{name} must be a {ndim}-d array, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


def _check_len(name: str, arr: np.ndarray, n: int, what: str) -> None:
    if arr.shape[0] != n:
        raise ValidationError(f"{name} must have one entry per {what} ({n}), got {arr.shape[0]}")


def _check_range(name: str, arr: np.ndarray, lo: float, hi: float, interval: str) -> None:
    bad = ~((arr >= lo) & (arr <= hi))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValidationError(f"{name} must be in {interval}, got {arr[i].item()!r} at index {i}")


@dataclass(frozen=True, kw_only=True, eq=False)
class InventoryView:
    """Snapshot of the entanglement inventory at decision time (SPEC §4, Definition 2).

    Parameters
    ----------
    link_node : (L,) int
        Node served by each link (the link is the end-to-end channel between that node and the broker).
    f0 : (L,) float
        Fidelity of a freshly heralded pair, in [0.25, 1].
    t_coh_s : (L,) float
        Memory coherence time T in seconds (> 0).
    cutoff_s : (L,) float
        Usable-age cutoff in seconds (>= 0); a pair older than this must not be used.
    rate_hz : (L,) float
        Expected heralding rate while generating, pairs per second (>= 0); sets the wait for fresh pairs.
    slots : (L,) int
        Memory slots M of the link (>= 0).
    key_bits : (L,) float
        Key-pool level in bits (>= 0).
    pair_id : (P,) int
        Unique id of each live pair; ids grow with creation time.
    pair_link : (P,) int
        Link of each pair, in [0, L).
    pair_age_s : (P,) float
        Age of each pair in seconds (>= 0).
    pair_fidelity : (P,) float
        Fidelity of each pair now, in [0.25, 1].
    key_capacity_bits : (L,) float, optional
        Largest key-pool level in bits; bits produced beyond it are lost. Default: unbounded.
    pair_key_bits : (P,) float, optional
        Key bits each pair would yield if measured now. Default: BBM92 :func:`~ceas.network.werner.bbm92_key_fraction`.
    fresh_key_bits : (L,) float, optional
        Key bits a fresh pair yields. Default: BBM92 at ``f0``.
    time_s : float
        Simulation time of the snapshot in seconds.
    """

    link_node: np.ndarray
    f0: np.ndarray
    t_coh_s: np.ndarray
    cutoff_s: np.ndarray
    rate_hz: np.ndarray
    slots: np.ndarray
    key_bits: np.ndarray
    pair_id: np.ndarray
    pair_link: np.ndarray
    pair_age_s: np.ndarray
    pair_fidelity: np.ndarray
    key_capacity_bits: np.ndarray | None = None
    pair_key_bits: np.ndarray | None = None
    fresh_key_bits: np.ndarray | None = None
    time_s: float = 0.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "link_node", _frozen(self.link_node, np.int64, "link_node", 1))
        n_links = self.link_node.shape[0]
        for name, dtype in (
            ("f0", float),
            ("t_coh_s", float),
            ("cutoff_s", float),
            ("rate_hz", float),
            ("slots", np.int64),
            ("key_bits", float),
        ):
            arr = _frozen(getattr(self, name), dtype, name, 1)
            _check_len(name, arr, n_links, "link")
            set_(self, name, arr)
        pid = _frozen(self.pair_id, np.int64, "pair_id", 1)
        set_(self, "pair_id", pid)
        n_pairs = pid.shape[0]
        for name, dtype in (
            ("pair_link", np.int64),
            ("pair_age_s", float),
            ("pair_fidelity", float),
        ):
            arr = _frozen(getattr(self, name), dtype, name, 1)
            _check_len(name, arr, n_pairs, "pair")
            set_(self, name, arr)
        cap = np.full(n_links, np.inf) if self.key_capacity_bits is None else self.key_capacity_bits
        set_(self, "key_capacity_bits", _frozen(cap, float, "key_capacity_bits", 1))
        _check_len("key_capacity_bits", self.key_capacity_bits, n_links, "link")
        # fidelities are checked before the default key yields are computed from them
        _check_range("f0", self.f0, 0.25, 1.0, "[0.25, 1]")
        _check_range("pair_fidelity", self.pair_fidelity, 0.25, 1.0, "[0.25, 1]")
        pkb = (
            bbm92_key_fraction(self.pair_fidelity)
            if self.pair_key_bits is None
            else self.pair_key_bits
        )
        set_(self, "pair_key_bits", _frozen(pkb, float, "pair_key_bits", 1))
        _check_len("pair_key_bits", self.pair_key_bits, n_pairs, "pair")
        fkb = bbm92_key_fraction(self.f0) if self.fresh_key_bits is None else self.fresh_key_bits
        set_(self, "fresh_key_bits", _frozen(fkb, float, "fresh_key_bits", 1))
        _check_len("fresh_key_bits", self.fresh_key_bits, n_links, "link")
        set_(self, "time_s", float(self.time_s))

        _check_range("link_node", self.link_node, 0, np.inf, "[0, inf)")
        _check_range("t_coh_s", self.t_coh_s, np.nextafter(0.0, 1.0), np.inf, "(0, inf)")
        for name in ("cutoff_s", "rate_hz", "slots", "key_bits", "pair_age_s", "pair_key_bits"):
            _check_range(name, getattr(self, name), 0.0, np.inf, "[0, inf)")
        _check_range("fresh_key_bits", self.fresh_key_bits, 0.0, np.inf, "[0, inf)")
        _check_range("key_capacity_bits", self.key_capacity_bits, 0.0, np.inf, "[0, inf]")
        _check_range("pair_link", self.pair_link, 0, n_links - 1, f"[0, {n_links - 1}]")
        if n_pairs and np.unique(pid).shape[0] != n_pairs:
            sorted_ids = np.sort(pid)
            dup = int(sorted_ids[np.flatnonzero(np.diff(sorted_ids) == 0)[0]])
            raise ValidationError(f"pair_id must be unique, got {dup} more than once")

    @property
    def n_links(self) -> int:
        """Number of links L."""
        return int(self.link_node.shape[0])

    @property
    def n_pairs(self) -> int:
        """Number of live pairs P."""
        return int(self.pair_id.shape[0])


@dataclass(frozen=True, kw_only=True, eq=False)
class NodeView:
    """Per-node state the scheduler sees (from the consensus and learning layers) and the round's demand.

    Parameters
    ----------
    ready : (N,) bool
        Whether each node has a gradient ready this round.
    trust : (N,) float
        Trust score in [0, 1] (consensus layer, SPEC §3).
    phi : (N,) float
        Last verified stamp value φ_k (>= 0): predicted inverse variance of the delivered gradient (Definition 1).
    phi_visibility : (N,) float
        Werner visibility v at which ``phi`` was evaluated, in (0, 1]; φ scales as v² (SPEC §3).
    payload_pairs : (N,) int
        Pairs one payload needs, P·S_p (>= 0).
    verification_pairs : (N,) int
        Pairs sacrificed to entanglement verification, k (>= 0).
    tag_bits : (N,) float
        Key bits the node's messages of one round cost in MAC tags (>= 0).
    round : int
        Round index t (>= 0), the round phase of the MDP state.
    work_s : (N,) float, optional
        Seconds of other work a node's participation adds to the round (a split circuit's QPU-QPU pair stream,
        :mod:`ceas.broker.circuit_pairs`); zeros when omitted.
    pair_tags : (N, N) int, optional
        Only when the participants must agree among themselves (``consensus.trusted_broker = false``): the MAC tags
        each pair of nodes' pairwise key pool still pays for (symmetric; the diagonal is not read). None otherwise.
    seat_tags : int
        Tags every pair of seated participants must be able to pay (one agreement attempt's share,
        :func:`~ceas.scheduling.policies._common.seat`); read only with ``pair_tags``.
    min_seats : int
        With ``pair_tags``: the fewest participants a round is held with (4 = 3f + 1 for f = 1 when Byzantine nodes
        are expected: a smaller round tolerates none); when the pools cannot seat that many, nobody is seated.
    """

    ready: np.ndarray
    trust: np.ndarray
    phi: np.ndarray
    phi_visibility: np.ndarray
    payload_pairs: np.ndarray
    verification_pairs: np.ndarray
    tag_bits: np.ndarray
    round: int = 0
    work_s: np.ndarray | None = None
    pair_tags: np.ndarray | None = None
    seat_tags: int = 0
    min_seats: int = 1

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "ready", _frozen(self.ready, bool, "ready", 1))
        n = self.ready.shape[0]
        if self.pair_tags is not None:
            tags = _frozen(self.pair_tags, np.int64, "pair_tags", 2)
            if tags.shape != (n, n):
                raise ValidationError(
                    f"pair_tags must have shape (N, N) = ({n}, {n}), got {tags.shape}"
                )
            _check_range("pair_tags", tags.ravel(), 0, np.inf, "[0, inf)")
            set_(self, "pair_tags", tags)
        if int(self.seat_tags) < 0:
            raise ValidationError(f"seat_tags must be >= 0, got {self.seat_tags}")
        set_(self, "seat_tags", int(self.seat_tags))
        if int(self.min_seats) < 1:
            raise ValidationError(f"min_seats must be >= 1, got {self.min_seats}")
        set_(self, "min_seats", int(self.min_seats))
        if self.work_s is None:
            set_(self, "work_s", np.zeros(n))
        for name, dtype in (
            ("trust", float),
            ("phi", float),
            ("phi_visibility", float),
            ("payload_pairs", np.int64),
            ("verification_pairs", np.int64),
            ("tag_bits", float),
            ("work_s", float),
        ):
            arr = _frozen(getattr(self, name), dtype, name, 1)
            _check_len(name, arr, n, "node")
            set_(self, name, arr)
        _check_range("trust", self.trust, 0.0, 1.0, "[0, 1]")
        _check_range("phi_visibility", self.phi_visibility, np.nextafter(0.0, 1.0), 1.0, "(0, 1]")
        for name in ("phi", "payload_pairs", "verification_pairs", "tag_bits", "work_s"):
            _check_range(name, getattr(self, name), 0.0, np.inf, "[0, inf)")
        if int(self.round) < 0:
            raise ValidationError(f"round must be >= 0, got {self.round}")
        set_(self, "round", int(self.round))

    @property
    def n_nodes(self) -> int:
        """Number of nodes N."""
        return int(self.ready.shape[0])


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def _ids(value, name: str) -> np.ndarray:
    return _frozen(np.zeros(0) if value is None else value, np.int64, name, 1)


@dataclass(frozen=True, kw_only=True, eq=False)
class Decision:
    """One action of the scheduling MDP (Definition 3), as the broker executes it.

    Parameters
    ----------
    participants : (A,) int
        Participant set A_t (node indices), at most m.
    payload, verification, key, convert : (·,) int
        Ids of stored pairs consumed as quantum payload, as verification tests, for key distillation to cover tag
        demand, and converted to key because they are near their cutoff (instead of letting them expire). Payload and
        verification pairs must lie on links of participants.
    requests : (L, 3) int
        Fresh pairs requested per link and purpose (columns :data:`PURPOSES`), consumed as they are heralded.
    generate : (L,) bool
        Generation on (True) or off per link until the next decision.
    purify : (Q, 2) int
        Pairs of stored pair ids (kept, sacrificed) to purify (BBPSSW), same link each.
    seat_weights : (N,) float or None
        The weights the participants were drawn with when the draw is Plackett–Luce (m drawn without replacement
        with probability proportional to the weight; 0 = not eligible; equal weights = a uniform draw), so the
        broker can compute each participant's inclusion probability (:mod:`ceas.scheduling.inclusion`). None when
        the choice is not such a draw (a ranking, an exact plan).
    """

    participants: np.ndarray
    requests: np.ndarray
    generate: np.ndarray
    payload: np.ndarray = field(default=None)
    verification: np.ndarray = field(default=None)
    key: np.ndarray = field(default=None)
    convert: np.ndarray = field(default=None)
    purify: np.ndarray = field(default=None)
    seat_weights: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "participants", _ids(self.participants, "participants"))
        for name in ("payload", "verification", "key", "convert"):
            set_(self, name, _ids(getattr(self, name), name))
        set_(self, "requests", _frozen(self.requests, np.int64, "requests", 2))
        if self.requests.shape[1] != len(PURPOSES):
            raise ValidationError(
                f"requests must have shape (L, {len(PURPOSES)}) (columns {', '.join(PURPOSES)}), "
                f"got {self.requests.shape}"
            )
        set_(self, "generate", _frozen(self.generate, bool, "generate", 1))
        pur = np.zeros((0, 2)) if self.purify is None else self.purify
        set_(self, "purify", _frozen(np.reshape(pur, (-1, 2)), np.int64, "purify", 2))
        if self.seat_weights is not None:
            w = _frozen(self.seat_weights, np.float64, "seat_weights", 1)
            if not (np.isfinite(w).all() and (w >= 0).all()):
                raise ValidationError("seat_weights must be finite and >= 0")
            set_(self, "seat_weights", w)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return all(
            _same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
        )

    __hash__ = None  # type: ignore[assignment]

    def used_pairs(self) -> np.ndarray:
        """All stored pair ids the decision consumes (payload, verification, key, convert, both of each purify)."""
        return np.concatenate(
            [self.payload, self.verification, self.key, self.convert, self.purify.ravel()]
        )
