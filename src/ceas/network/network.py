r"""The clock and inventory API the broker drives: :class:`QuantumNetwork` (SPEC §2 link/network layer).

A ``QuantumNetwork`` owns the topology, every link's physics, the entanglement inventory (Definition 2) and the
per-link key pools. Time only moves forward, through :meth:`QuantumNetwork.advance`; every other call acts at the
current time ``now`` (or evaluates fidelity at a later moment of use ``at_s``). Units: seconds, km, fidelities.

Up-signals (inventory state, fidelity at use time): :attr:`~QuantumNetwork.now`, :meth:`~QuantumNetwork.view`,
:meth:`~QuantumNetwork.link_view`, :meth:`~QuantumNetwork.counters`, the :class:`Delivery` of every consumption.
Down-signals: :meth:`~QuantumNetwork.set_generation`, :meth:`~QuantumNetwork.request`,
:meth:`~QuantumNetwork.request_many`, :meth:`~QuantumNetwork.consume`, :meth:`~QuantumNetwork.swap`,
:meth:`~QuantumNetwork.purify`, :meth:`~QuantumNetwork.teleport`, :meth:`~QuantumNetwork.distill_key`,
:meth:`~QuantumNetwork.verify`, and a
:class:`StreamDemand` that uses pairs the moment they are heralded during :meth:`~QuantumNetwork.advance`.

Every call validates all of its arguments before touching the ledger, so a rejected call (bad link, fidelity
outside [1/4, 1], a time in the past, more pairs than are held, ...) raises a :class:`~ceas.errors.CeasError`
subclass and leaves the ledger, the counters and the clock exactly as they were.

Examples
--------
>>> import numpy as np
>>> from ceas.network import NetworkParams, QuantumNetwork
>>> net = QuantumNetwork.from_params(NetworkParams(), np.random.default_rng(0))
>>> report = net.advance(1.0)
>>> net.now, net.n_links
(1.0, 50)
>>> c = net.counters()
>>> bool((c.residual == 0).all())
True
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ceas._lazy import lazy_import
from ceas._validate import check_int, check_real, lookup
from ceas.errors import ProtocolError, UnknownNameError, ValidationError
from ceas.network.generation import OFF, first_success, sample_arrivals
from ceas.network.inventory import (
    PAIR_PURPOSES,
    SELECTION_ORDERS,
    Delivery,
    EntanglementInventory,
    InventoryCounters,
    InventorySnapshot,
    LinkSnapshot,
)
from ceas.network.keys import KeyPool
from ceas.network.links import LinkTable, link_coherence_s, link_table
from ceas.network.memory import get_eviction_policy
from ceas.network.params import LinkParams, MemoryParams, NetworkParams
from ceas.network.purification import get_purification_protocol
from ceas.network.qkd import KeyYield, bbm92
from ceas.network.swapping import _swap_bell
from ceas.network.teleportation import teleport_pauli
from ceas.network.topology import build_topology, validate_topology
from ceas.network.verification import VerificationResult, run_verification
from ceas.network.werner import (
    _bell_decay,
    _fidelity_at_age,
    _werner_bell_vector,
    _werner_from_fidelity,
)
from ceas.rng import stream

nx = lazy_import("networkx")

__all__ = [
    "AdvanceReport",
    "EndToEndPair",
    "PurificationResult",
    "QuantumNetwork",
    "StreamDemand",
    "SwapResult",
]

_MAX_ARRIVALS_PER_WINDOW = 1 << 20
"""advance() splits long steps so one window draws about this many pairs at most (bounds memory)."""


@dataclass(frozen=True)
class StreamDemand:
    """Pairs to use as they become available during :meth:`QuantumNetwork.advance`.

    At the start of the step, eligible stored pairs are used first (in ``order``); then each freshly heralded pair
    is used the moment it is heralded, until ``pairs[l]`` have been delivered on link ``l``. Several demands passed
    together are served in priority order on every link: a link's stored pairs go to the first demand, then the
    second, ...; its heralded pairs likewise (the first ``pairs[l]`` of the first demand, the next ones to the second).

    Attributes
    ----------
    pairs : ndarray of int, shape (n_links,)
        Pairs wanted per link during the step (>= 0).
    purpose : str
        One of :data:`~ceas.network.inventory.PAIR_PURPOSES`.
    min_fidelity : float or None
        Only pairs with at least this fidelity at use are taken (None: any pair still alive).
    order : str
        Which stored pairs go first (:data:`~ceas.network.inventory.SELECTION_ORDERS`).
    """

    pairs: np.ndarray
    purpose: str = "payload"
    min_fidelity: float | None = None
    order: str = "oldest"


@dataclass(frozen=True)
class AdvanceReport:
    """What happened during one :meth:`QuantumNetwork.advance` step, per link (shape (n_links,)).

    ``deliveries`` holds one :class:`Delivery` per demand, in the order the demands were given (empty without one).
    """

    start_s: float
    end_s: float
    generated: np.ndarray
    expired: np.ndarray
    evicted: np.ndarray
    deliveries: tuple[Delivery, ...]

    @property
    def delivered(self) -> Delivery:
        """The pairs delivered to the first (or only) demand (an empty payload delivery without a demand)."""
        return self.deliveries[0] if self.deliveries else Delivery.empty("payload")


@dataclass(frozen=True)
class EndToEndPair:
    """A pair between two distant nodes made by swapping; it lives outside the link ledger.

    Attributes
    ----------
    source, target : node
        End nodes.
    path : tuple
        Nodes along which it was swapped.
    created_s : float
        Time of the swap, seconds.
    bell : ndarray, shape (4,)
        Bell-diagonal vector at ``created_s``.
    t_coh_s : float
        Coherence time of the end memories, 1/T = 1/T_source + 1/T_target (s).
    """

    source: object
    target: object
    path: tuple
    created_s: float
    bell: np.ndarray
    t_coh_s: float

    def bell_at(self, t_s: float) -> np.ndarray:
        """Bell vector at time ``t_s`` >= ``created_s``."""
        check_real("t_s", t_s, self.created_s)
        return _bell_decay(self.bell, t_s - self.created_s, self.t_coh_s)

    def fidelity_at(self, t_s: float) -> float:
        """Fidelity at time ``t_s`` >= ``created_s``."""
        return float(self.bell_at(t_s)[0])

    def werner_at(self, t_s: float) -> float:
        """Werner parameter at time ``t_s`` >= ``created_s``."""
        return float(_werner_from_fidelity(self.fidelity_at(t_s)))


@dataclass(frozen=True)
class SwapResult:
    """Outcome of swapping along a path: the consumed link pairs and, on success, the end-to-end pair."""

    success: bool
    consumed: Delivery
    pair: EndToEndPair | None


@dataclass(frozen=True)
class PurificationResult:
    """Outcome of one purification round on a link.

    Attributes
    ----------
    success : bool
        Whether the measured outcomes agreed (the kept pair survives with its new state).
    p_success : float
        Success probability of this round.
    kept_id : int
        Ledger id of the pair kept on success (it keeps its id and slot).
    fidelity_in : ndarray, shape (2,)
        Fidelities of the kept and the sacrificed pair at the moment of purification.
    fidelity_out : float
        Fidelity of the kept pair after a success (NaN after a failure).
    """

    success: bool
    p_success: float
    kept_id: int
    fidelity_in: np.ndarray
    fidelity_out: float


class QuantumNetwork:
    """Quantum network: topology, heralded generation, decaying memories, the inventory, operations, key pools.

    Parameters
    ----------
    graph : networkx.Graph
        Topology (checked by :func:`~ceas.network.topology.validate_topology`; nodes need ``t_coh_s``).
    link : LinkParams
        Heralding physics shared by all links.
    memory : MemoryParams
        Slots, cutoff fidelity and eviction policy.
    rng : numpy.random.Generator
        Parent stream; independent child streams drive generation, operations and key material.
    swap_success : float
        Probability that one Bell-state measurement at a repeater succeeds.
    cutoff_s : float, optional
        Age (seconds, >= 0, ``inf`` for none) at which every link discards its fresh pairs, instead of the age at
        which their fidelity falls to ``memory.f_min``. A purified pair then expires when its fidelity falls to the
        fidelity a fresh pair has at that age.

    Attributes
    ----------
    graph : networkx.Graph
        The topology.
    table : LinkTable
        Per-link physics (success probability, attempt period, F0, coherence, cutoff).
    links : tuple of (node, node)
        Link endpoints in link-index order.
    """

    def __init__(
        self,
        graph: nx.Graph,
        link: LinkParams,
        memory: MemoryParams,
        rng: np.random.Generator,
        *,
        swap_success: float = 1.0,
        cutoff_s: float | None = None,
    ) -> None:
        validate_topology(graph)
        missing = [v for v in graph.nodes if "t_coh_s" not in graph.nodes[v]]
        if missing:
            raise ValidationError(
                f"node {missing[0]!r} has no t_coh_s; allowed: a coherence time in (0, inf] s on every node "
                "(assign_coherence fills them)"
            )
        self.graph = graph
        self.link_params = link
        self.memory_params = memory
        self.swap_success = check_real("swap_success", swap_success, 0.0, 1.0, low_open=True)
        table = link_table(graph, link, memory)
        f_min = np.full(table.n_links, memory.f_min)
        if cutoff_s is not None:
            cutoff = check_real("cutoff_s", cutoff_s, 0.0, allow_inf=True)
            table = dataclasses.replace(table, cutoff_s=np.full(table.n_links, cutoff))
            f_min = _fidelity_at_age(table.f0, cutoff, table.t_coh_s)
        self.table: LinkTable = table
        self.links = self.table.edges
        self._index = {}
        for k, (u, v) in enumerate(self.links):
            self._index[(u, v)] = k
            self._index[(v, u)] = k
        self._policy = get_eviction_policy(memory.eviction)
        gen_rng, op_rng, key_rng = rng.spawn(3)
        self._gen_rng = gen_rng
        self._op_rng = op_rng
        self._key_rng = key_rng
        self.inventory = EntanglementInventory(self.table.t_coh_s, memory.slots, f_min)
        self._fresh_bell = _werner_bell_vector(self.table.f0)
        self._now = 0.0
        self._pending = first_success(
            self._gen_rng, self.table.p_success, self.table.attempt_s, 0.0
        )
        self.key_pools = tuple(KeyPool(r) for r in key_rng.spawn(self.n_links))

    @classmethod
    def from_params(cls, params: NetworkParams, rng: np.random.Generator) -> QuantumNetwork:
        """Build the topology described by ``params`` (from ``rng``, or from ``params.topology.seed``) and the network.

        Examples
        --------
        >>> net = QuantumNetwork.from_params(NetworkParams(), np.random.default_rng(1))
        >>> net.n_links, net.capacity
        (50, 20)
        """
        topo_rng, net_rng = rng.spawn(2)
        if params.topology.seed is not None:
            topo_rng = stream(params.topology.seed, "network.topology")
        graph = build_topology(params.topology, params.memory, topo_rng)
        return cls(graph, params.link, params.memory, net_rng, swap_success=params.swap_success)

    @classmethod
    def one_link(
        cls,
        rng: np.random.Generator,
        *,
        length_km: float = 10.0,
        t_coh_s: float = 1.0,
        link: LinkParams | None = None,
        memory: MemoryParams | None = None,
        cutoff_s: float | None = None,
    ) -> QuantumNetwork:
        """A network of one link: QPU ``0`` and the broker ``1``, ``length_km`` apart.

        Parameters
        ----------
        rng : numpy.random.Generator
            Parent stream (as for the constructor).
        length_km : float
            Fibre length L > 0, km; the link attempts every L/c and succeeds with the probability of ``link``.
        t_coh_s : float
            Coherence time of the stored pair, seconds (> 0, ``inf`` for an ideal memory); the broker's memory is ideal.
        link, memory : LinkParams, MemoryParams, optional
            Heralding physics and memory (slots, F_min, ``eviction``: ``oldest``, ``lowest_fidelity`` or ``block``);
            SPEC defaults when omitted.
        cutoff_s : float, optional
            Age at which pairs are discarded, seconds (>= 0, ``inf`` for none); default: the age at which their
            fidelity falls to ``memory.f_min``.

        Examples
        --------
        >>> net = QuantumNetwork.one_link(np.random.default_rng(0), length_km=1.0, cutoff_s=0.024,
        ...                               memory=MemoryParams(slots=10, eviction="block"))
        >>> net.n_links, net.capacity, float(net.table.cutoff_s[0])
        (1, 10, 0.024)
        """
        length = check_real("length_km", length_km, 0.0, low_open=True)
        t_coh = check_real("t_coh_s", t_coh_s, 0.0, low_open=True, allow_inf=True)
        graph = nx.Graph()
        graph.add_node(0, role="qpu", t_coh_s=t_coh)
        graph.add_node(1, role="broker", t_coh_s=math.inf)
        graph.add_edge(0, 1, length_km=length)
        return cls(
            graph,
            LinkParams() if link is None else link,
            MemoryParams() if memory is None else memory,
            rng,
            cutoff_s=cutoff_s,
        )

    # ------------------------------------------------------------------------------------------------------------
    # identification and state
    # ------------------------------------------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Current time, seconds since the network was built."""
        return self._now

    @property
    def n_links(self) -> int:
        return self.table.n_links

    @property
    def capacity(self) -> int:
        """Memory slots per link (M)."""
        return self.inventory.slots

    @property
    def generation_on(self) -> np.ndarray:
        """Which links are generating, bool (n_links,) (a copy)."""
        return self._pending != OFF

    def link_index(self, link) -> int:
        """Index of ``link``, given as an index or as its end nodes ``(u, v)`` (either order).

        Raises
        ------
        ValidationError
            An index outside [0, n_links - 1].
        UnknownNameError
            A node pair that is not a link.
        """
        if isinstance(link, (int, np.integer)) and not isinstance(link, bool):
            return check_int("link", link, 0, self.n_links - 1)
        if isinstance(link, tuple) and len(link) == 2:
            try:
                return self._index[link]
            except (KeyError, TypeError) as exc:
                raise UnknownNameError(
                    f"link {link!r} is not in the topology; allowed: an index in [0, {self.n_links - 1}] or the "
                    "end nodes of an existing link"
                ) from exc
        raise ValidationError(
            f"link must be an index in [0, {self.n_links - 1}] or a (u, v) node pair, got {link!r}"
        )

    def links_of(self, node) -> list[int]:
        """Indices of the links at ``node``."""
        if node not in self.graph:
            raise UnknownNameError(f"node {node!r} is not in the topology")
        return sorted(self._index[(node, v)] for v in self.graph.neighbors(node))

    def _at(self, at_s) -> float:
        if at_s is None:
            return self._now
        return check_real("at_s", at_s, self._now)

    def _min_fidelity(self, value) -> float:
        if value is None:
            return 0.25
        return check_real("min_fidelity", value, 0.25, 1.0)

    def view(self, at_s: float | None = None) -> InventorySnapshot:
        """All links' held pairs (ages, fidelity, time to expiry), arrays (n_links, slots), at ``at_s`` >= now."""
        return self.inventory.view(self._at(at_s))

    def link_view(self, link, at_s: float | None = None) -> LinkSnapshot:
        """One link's held pairs, oldest first, at ``at_s`` >= now (default now)."""
        return self.inventory.link_view(self.link_index(link), self._at(at_s))

    def counters(self) -> InventoryCounters:
        """Cumulative generated / consumed (per purpose) / expired / evicted / held counts per link."""
        return self.inventory.counters()

    def key_pool(self, link) -> KeyPool:
        """The key pool of ``link``."""
        return self.key_pools[self.link_index(link)]

    def preshare_keys(self, n_bits: int) -> None:
        """Deposit a pre-shared seed key of ``n_bits`` bits into every link's pool (as deployed QKD starts)."""
        n_bits = check_int("n_bits", n_bits, 0)
        for pool in self.key_pools:
            pool.deposit(n_bits)
            pool.preshared_bits += n_bits

    # ------------------------------------------------------------------------------------------------------------
    # generation control and the clock
    # ------------------------------------------------------------------------------------------------------------

    def _link_mask(self, links) -> np.ndarray:
        if links is None:
            return np.ones(self.n_links, bool)
        arr = np.asarray(links) if not isinstance(links, tuple) else None
        if arr is not None and arr.dtype == bool:
            if arr.shape != (self.n_links,):
                raise ValidationError(
                    f"link mask must have shape ({self.n_links},), got {arr.shape}"
                )
            return arr.copy()
        items = [links] if isinstance(links, (int, np.integer, tuple)) else list(links)
        mask = np.zeros(self.n_links, bool)
        mask[[self.link_index(x) for x in items]] = True
        return mask

    def set_generation(self, links=None, on: bool = True) -> None:
        """Switch heralded generation on or off on ``links`` (an index, a node pair, a list, a bool mask, or None
        for all). Switching on draws the next success afresh from ``now`` (geometric waiting is memoryless)."""
        mask = self._link_mask(links)
        if not isinstance(on, (bool, np.bool_)):
            raise ValidationError(f"on must be true or false, got {on!r}")
        if on:
            start = mask & (self._pending == OFF)
            if start.any():
                idx = np.flatnonzero(start)
                self._pending[idx] = first_success(
                    self._gen_rng, self.table.p_success[idx], self.table.attempt_s[idx], self._now
                )
        else:
            self._pending[mask] = OFF

    def _check_demands(
        self, demand: StreamDemand | Sequence[StreamDemand] | None
    ) -> tuple[tuple[StreamDemand, ...], list[float]]:
        """The demands as a tuple (priority order) and each one's minimum fidelity; raises on any bad field."""
        if demand is None:
            return (), []
        demands = (demand,) if isinstance(demand, StreamDemand) else tuple(demand)
        floors = []
        for d in demands:
            if not isinstance(d, StreamDemand):
                raise ValidationError(
                    f"demand must be a StreamDemand or a sequence of them, got {d!r}"
                )
            pairs = np.asarray(d.pairs)
            if pairs.shape != (self.n_links,) or pairs.dtype.kind not in "iu" or (pairs < 0).any():
                raise ValidationError(
                    f"demand.pairs must be non-negative integers of shape ({self.n_links},), got "
                    f"{pairs.dtype} array of shape {pairs.shape}"
                )
            lookup("purpose", d.purpose, PAIR_PURPOSES)
            lookup("selection order", d.order, SELECTION_ORDERS)
            floors.append(self._min_fidelity(d.min_fidelity))
        return demands, floors

    def _check_stop(self, stop) -> np.ndarray | None:
        if stop is None:
            return None
        mask = np.asarray(stop)
        if mask.shape != (self.n_links,) or mask.dtype != bool:
            raise ValidationError(
                f"stop_when_served must be a bool array of shape ({self.n_links},), got {mask.dtype} array of "
                f"shape {mask.shape}"
            )
        return mask

    def advance(
        self,
        dt_s: float,
        demand: StreamDemand | Sequence[StreamDemand] | None = None,
        *,
        stop_when_served=None,
    ) -> AdvanceReport:
        """Move the clock forward by ``dt_s`` seconds: generate, decay, expire and evict on every link at once.

        Heralding times are drawn as geometric waiting times on each link's attempt grid; memories are resolved
        window by window in closed form (see :mod:`ceas.network.memory`). With a ``demand`` (or several, served in
        priority order per link), stored pairs are used at the start of the step and fresh pairs the moment they are
        heralded, up to ``demand.pairs[l]`` per link.

        Parameters
        ----------
        dt_s : float
            Step length, seconds (>= 0, finite).
        demand : StreamDemand or sequence of StreamDemand, optional
            Pairs to use during the step; several are served in the order given (see :class:`StreamDemand`).
        stop_when_served : bool ndarray, shape (n_links,), optional
            Links that generate only for the demands: each stops attempting the moment its last demanded pair is
            heralded (so it heralds nothing beyond the demand), and does not generate at all when stored pairs
            already cover it. Generation stays off there afterwards until :meth:`set_generation` turns it on.
            Geometric waiting times are memoryless, so this is exact, not an approximation.

        Returns
        -------
        AdvanceReport
            Pairs generated, expired and evicted per link during the step, and the pairs delivered to each demand.
        """
        dt_s = check_real("dt_s", dt_s, 0.0)
        demands, floors = self._check_demands(demand)
        stop = self._check_stop(stop_when_served)
        start = self._now
        end = start + dt_s
        L = self.n_links
        totals = [np.zeros(L, np.int64) for _ in range(3)]
        parts: list[list[Delivery]] = [[] for _ in demands]
        needs = np.array([np.asarray(d.pairs, dtype=np.int64) for d in demands]).reshape(
            len(demands), L
        )
        # fresh pairs can serve a demand only on links whose fresh pairs meet its fidelity floor and live at all
        fresh_ok = np.array(
            [(self.table.f0 >= f) & (self.table.cutoff_s > 0) for f in floors], dtype=bool
        ).reshape(len(demands), L)
        rate = np.where(self.generation_on, self.table.rate_hz, 0.0).sum()
        n_windows = max(1, math.ceil(dt_s * rate / _MAX_ARRIVALS_PER_WINDOW))
        edges = np.linspace(start, end, n_windows + 1)
        edges[-1] = end
        for t_end in edges[1:]:
            gen, exp, ev = self._window(float(t_end), demands, floors, needs, fresh_ok, stop, parts)
            totals[0] += gen
            totals[1] += exp
            totals[2] += ev
        self._now = end
        deliveries = tuple(Delivery.concatenate(p, d.purpose) for p, d in zip(parts, demands))
        return AdvanceReport(start, end, totals[0], totals[1], totals[2], deliveries)

    def _window(
        self, t_end: float, demands, floors, needs, fresh_ok, stop, parts
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        inv = self.inventory
        table = self.table
        L = self.n_links
        # stored pairs first, demand by demand (selection is deterministic: no random draw moves)
        for j, d in enumerate(demands):
            if needs[j].any():
                chosen, _ = inv.select(needs[j], self._now, floors[j], d.order)
                if chosen.any():
                    got = inv.take(chosen, d.purpose, self._now)
                    parts[j].append(got)
                    needs[j] -= got.counts(L)
        fresh_need = needs * fresh_ok  # (J, L): what heralded pairs may still serve
        total = fresh_need.sum(axis=0)
        if stop is not None:
            self._pending[stop & (total == 0)] = OFF
        arrivals, self._pending = sample_arrivals(
            self._gen_rng, table.p_success, table.attempt_s, self._pending, t_end
        )
        if stop is not None and arrivals.link.size:
            # a link that stops once served makes no attempt after its last demanded herald
            served = stop & (arrivals.counts >= total)
            self._pending[served] = OFF
            beyond = served[arrivals.link] & (arrivals.local_index >= total[arrivals.link])
            if beyond.any():
                arrivals = arrivals.subset(~beyond, L)
        n = arrivals.link.size
        ids = inv.next_id + np.arange(n, dtype=np.int64)
        inv.next_id += n
        inv.generated += arrivals.counts
        enter = np.ones(n, bool)
        if n and total.any():
            rank = arrivals.local_index
            cum = np.cumsum(fresh_need, axis=0)  # (J, L)
            use = rank < cum[-1, arrivals.link]
            if use.any():
                used = np.flatnonzero(use)
                link_u = arrivals.link[used]
                # each used pair serves the demand whose cumulative share its rank falls into
                which = (rank[used][None, :] >= cum[:, link_u]).sum(axis=0)
                for j, d in enumerate(demands):
                    sel = used[which == j]
                    if not sel.size:
                        continue
                    link = arrivals.link[sel]
                    parts[j].append(
                        Delivery(
                            d.purpose, link, ids[sel], arrivals.time_s[sel], self._fresh_bell[link]
                        )
                    )
                    inv.count_consumed(d.purpose, link)
                    needs[j] -= np.bincount(link, minlength=L)
                enter = ~use
        if enter.all():
            link, time_s, pid, offsets = arrivals.link, arrivals.time_s, ids, arrivals.offsets
        else:
            link, time_s, pid = arrivals.link[enter], arrivals.time_s[enter], ids[enter]
            offsets = np.zeros(L + 1, np.int64)
            np.cumsum(np.bincount(link, minlength=L), out=offsets[1:])
        expiry = time_s + np.repeat(table.cutoff_s, np.diff(offsets))
        window = inv.window(t_end, offsets, time_s, expiry)
        outcome = self._policy.resolve(window)
        expired, evicted = inv.absorb(outcome, offsets, link, time_s, pid, self._fresh_bell, expiry)
        self._now = t_end
        return arrivals.counts, expired, evicted

    # ------------------------------------------------------------------------------------------------------------
    # consumption
    # ------------------------------------------------------------------------------------------------------------

    def request_many(
        self,
        counts,
        *,
        purpose: str,
        min_fidelity: float | None = None,
        at_s: float | None = None,
        order: str = "oldest",
    ) -> Delivery:
        """Consume up to ``counts[l]`` pairs on every link at once (fewer where fewer are eligible).

        Parameters
        ----------
        counts : array of int, shape (n_links,)
            Pairs wanted per link (>= 0).
        purpose : str
            One of :data:`~ceas.network.inventory.PAIR_PURPOSES`.
        min_fidelity : float, optional
            Only pairs with at least this fidelity at ``at_s`` are taken (in [1/4, 1]; default: any live pair).
        at_s : float, optional
            Moment of use (>= now; default now). Pairs leave memory now; fidelity is evaluated at ``at_s``, and a
            pair must still be alive then.
        order : str
            :data:`~ceas.network.inventory.SELECTION_ORDERS`.

        Returns
        -------
        Delivery
            The pairs taken, with their state at ``at_s``.
        """
        counts = np.asarray(counts)
        if counts.shape != (self.n_links,) or counts.dtype.kind not in "iu" or (counts < 0).any():
            raise ValidationError(
                f"counts must be non-negative integers of shape ({self.n_links},), got {counts!r}"
            )
        purpose = lookup("purpose", purpose, PAIR_PURPOSES)
        order = lookup("selection order", order, SELECTION_ORDERS)
        min_f = self._min_fidelity(min_fidelity)
        at = self._at(at_s)
        chosen, _ = self.inventory.select(counts.astype(np.int64), at, min_f, order)
        return self.inventory.take(chosen, purpose, at)

    def request(
        self,
        link,
        n: int,
        *,
        purpose: str,
        min_fidelity: float | None = None,
        at_s: float | None = None,
        order: str = "oldest",
    ) -> Delivery:
        """Consume exactly ``n`` pairs on ``link`` with fidelity >= ``min_fidelity`` at ``at_s``.

        Raises
        ------
        ProtocolError
            Fewer than ``n`` eligible pairs are held (nothing is consumed then).
        """
        k = self.link_index(link)
        n = check_int("n", n, 1, self.capacity)
        purpose = lookup("purpose", purpose, PAIR_PURPOSES)
        order = lookup("selection order", order, SELECTION_ORDERS)
        min_f = self._min_fidelity(min_fidelity)
        at = self._at(at_s)
        counts = np.zeros(self.n_links, np.int64)
        counts[k] = n
        chosen, n_ok = self.inventory.select(counts, at, min_f, order)
        if n_ok[k] < n:
            raise ProtocolError(
                f"link {k} holds {n_ok[k]} pairs with fidelity >= {min_f:g} at t = {at:g} s, {n} requested"
            )
        return self.inventory.take(chosen, purpose, at)

    def consume(
        self,
        link,
        pairs,
        *,
        purpose: str,
        at_s: float | None = None,
        order: str = "oldest",
    ) -> Delivery:
        """Consume pairs on ``link``: ``pairs`` is a count (taken in ``order``) or a sequence of pair ids.

        Raises
        ------
        ProtocolError
            More pairs requested than are alive at ``at_s``, or an id that is not held on ``link``.
        """
        k = self.link_index(link)
        purpose = lookup("purpose", purpose, PAIR_PURPOSES)
        order = lookup("selection order", order, SELECTION_ORDERS)
        at = self._at(at_s)
        if isinstance(pairs, (int, np.integer)) and not isinstance(pairs, bool):
            return self.request(k, pairs, purpose=purpose, at_s=at, order=order)
        ids = np.asarray(pairs)
        if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
            raise ValidationError(
                f"pairs must be a count or a non-empty 1-D sequence of pair ids, got {pairs!r}"
            )
        if np.unique(ids).size != ids.size:
            raise ValidationError(f"pairs must not repeat an id, got {ids.tolist()}")
        chosen = self._slots_of(k, ids, at)
        return self.inventory.take(chosen, purpose, at)

    def _slots_of(self, k: int, ids: np.ndarray, at: float) -> np.ndarray:
        inv = self.inventory
        row = np.where(inv.occupied[k], inv.pair_id[k], -1)
        missing = ids[~np.isin(ids, row)]
        if missing.size:
            raise ProtocolError(f"pair {int(missing[0])} is not held on link {k}")
        chosen = np.zeros_like(inv.occupied)
        chosen[k] = np.isin(row, ids)
        dead = chosen[k] & (inv.expiry_s[k] <= at)
        if dead.any():
            raise ProtocolError(
                f"pair {int(row[dead][0])} on link {k} expires at {inv.expiry_s[k][dead][0]:g} s, before its use at "
                f"{at:g} s"
            )
        return chosen

    # ------------------------------------------------------------------------------------------------------------
    # operations
    # ------------------------------------------------------------------------------------------------------------

    def swap(
        self,
        path: Sequence,
        *,
        order: str = "freshest",
        rng: np.random.Generator | None = None,
    ) -> SwapResult:
        """Swap one pair of every link along ``path`` (nodes) now, making an end-to-end pair.

        Each link's pair (the first in ``order``) is consumed with purpose ``swap``; each of the ``len(path) - 2``
        Bell measurements succeeds with probability ``swap_success``. The Werner parameters multiply, each at its
        own age now: :math:`w = \\prod_i w_i(a_i)` (Bell vectors: correlations multiply).

        Raises
        ------
        ValidationError
            Fewer than three nodes, or consecutive nodes that are not linked.
        ProtocolError
            A link along the path holds no live pair (nothing is consumed then).
        """
        path = tuple(path)
        if len(path) < 3:
            raise ValidationError(f"path must have at least 3 nodes to swap, got {list(path)!r}")
        hops = [self.link_index((u, v)) for u, v in itertools.pairwise(path)]
        if len(set(hops)) != len(hops):
            raise ValidationError(f"path must not reuse a link, got {list(path)!r}")
        order = lookup("selection order", order, SELECTION_ORDERS)
        counts = np.zeros(self.n_links, np.int64)
        counts[hops] = 1
        chosen, n_ok = self.inventory.select(counts, self._now, 0.25, order)
        empty = [h for h in hops if n_ok[h] == 0]
        if empty:
            raise ProtocolError(f"link {empty[0]} on the path holds no live pair to swap")
        used = self.inventory.take(chosen, "swap", self._now)
        rng = rng or self._op_rng
        success = bool(rng.random() < self.swap_success ** (len(path) - 2))
        if not success:
            return SwapResult(False, used, None)
        by_link = {int(link): bell for link, bell in zip(used.link, used.bell)}
        bell = by_link[hops[0]]
        for h in hops[1:]:
            bell = _swap_bell(bell, by_link[h])
        t_coh = float(
            link_coherence_s(
                self.graph.nodes[path[0]]["t_coh_s"], self.graph.nodes[path[-1]]["t_coh_s"]
            )
        )
        pair = EndToEndPair(path[0], path[-1], path, self._now, bell, t_coh)
        return SwapResult(True, used, pair)

    def purify(
        self,
        link,
        *,
        method: str = "dejmps",
        pair_ids: Sequence[int] | None = None,
        order: str = "freshest",
        rng: np.random.Generator | None = None,
    ) -> PurificationResult:
        """One round of purification on ``link`` now: keep one pair, sacrifice another.

        The sacrificed pair is consumed (purpose ``purify``). With probability ``p`` the kept pair survives with
        the protocol's output state (same id and slot; its decay restarts now); otherwise it is consumed too.

        Parameters
        ----------
        link : int or (node, node)
        method : {"dejmps", "bbpssw"}
        pair_ids : (kept, sacrificed), optional
            Which pairs; default the first two in ``order``.
        order : str
            :data:`~ceas.network.inventory.SELECTION_ORDERS`.
        rng : numpy.random.Generator, optional
            Samples success (default: the network's operations stream).

        Raises
        ------
        ProtocolError
            Fewer than two live pairs on the link, or an id not held there.
        """
        k = self.link_index(link)
        protocol = get_purification_protocol(method)
        order = lookup("selection order", order, SELECTION_ORDERS)
        inv = self.inventory
        now = self._now
        if pair_ids is None:
            counts = np.zeros(self.n_links, np.int64)
            counts[k] = 2
            _, n_ok = inv.select(counts, now, 0.25, order)
            if n_ok[k] < 2:
                raise ProtocolError(f"link {k} holds {n_ok[k]} live pairs; purification needs 2")
            ranked = inv.rank(now, order, inv.eligible(now, 0.25))[k]
            kept_slot, lost_slot = int(ranked[0]), int(ranked[1])
        else:
            ids = np.asarray(pair_ids)
            if ids.shape != (2,) or ids.dtype.kind not in "iu" or ids[0] == ids[1]:
                raise ValidationError(
                    f"pair_ids must be two distinct pair ids (kept, sacrificed), got {pair_ids!r}"
                )
            self._slots_of(k, ids, now)
            row = inv.pair_id[k]
            kept_slot = int(np.flatnonzero(inv.occupied[k] & (row == ids[0]))[0])
            lost_slot = int(np.flatnonzero(inv.occupied[k] & (row == ids[1]))[0])
        bells = inv.bell_at(now)[k, [kept_slot, lost_slot]]
        p, out = protocol(bells[0], bells[1])
        kept_id = int(inv.pair_id[k, kept_slot])
        sacrifice = np.zeros_like(inv.occupied)
        sacrifice[k, lost_slot] = True
        inv.take(sacrifice, "purify", now)
        success = bool((rng or self._op_rng).random() < p)
        if success:
            inv.rewrite(k, kept_slot, np.asarray(out, dtype=float), now)
            return PurificationResult(True, float(p), kept_id, bells[:, 0].copy(), float(out[0]))
        failed = np.zeros_like(inv.occupied)
        failed[k, kept_slot] = True
        inv.take(failed, "purify", now)
        return PurificationResult(False, float(p), kept_id, bells[:, 0].copy(), float("nan"))

    def teleport(
        self,
        link,
        states,
        *,
        purpose: str = "teleport",
        min_fidelity: float | None = None,
        at_s: float | None = None,
        order: str = "freshest",
    ) -> tuple[np.ndarray, Delivery]:
        """Teleport qubit states across ``link``, one stored pair each, at ``at_s`` (default now).

        Each state goes through the Pauli channel of its pair's Bell vector at the moment of use (for a Werner
        pair of visibility w: :math:`\rho \\mapsto w\rho + (1-w)I/2`; see :mod:`ceas.network.teleportation`).

        Parameters
        ----------
        link : int or (node, node)
        states : array_like, shape (n, 2, 2)
            Density matrices to send.
        purpose : str
            ``teleport`` (state transfer), ``payload`` or ``gate``.

        Returns
        -------
        received : ndarray, shape (n, 2, 2)
            The states delivered; ``states[i]`` went through pair ``i`` of ``delivery``.
        delivery : Delivery
            The pairs used.

        Raises
        ------
        ProtocolError
            Fewer than n eligible pairs are held (nothing is consumed then).
        """
        rho = np.asarray(states, dtype=complex)
        if rho.ndim != 3 or rho.shape[1:] != (2, 2) or rho.shape[0] == 0:
            raise ValidationError(f"states must have shape (n, 2, 2) with n >= 1, got {rho.shape}")
        delivery = self.request(
            link, rho.shape[0], purpose=purpose, min_fidelity=min_fidelity, at_s=at_s, order=order
        )
        return teleport_pauli(rho, delivery.bell), delivery

    def distill_key(
        self,
        link,
        pairs,
        *,
        at_s: float | None = None,
        order: str = "oldest",
        rng: np.random.Generator | None = None,
    ) -> KeyYield:
        """Measure pairs on ``link`` by BBM92 and deposit the secret bits into the link's key pool.

        ``pairs`` is a count (taken in ``order``) or a sequence of pair ids; they are consumed with purpose
        ``key`` and measured at ``at_s`` (default now). See :mod:`ceas.network.qkd`.
        """
        k = self.link_index(link)
        delivery = self.consume(k, pairs, purpose="key", at_s=at_s, order=order)
        result = bbm92(delivery.bell, rng or self._op_rng)
        self.key_pools[k].deposit(result.secret_bits)
        return result

    def verify(
        self,
        link,
        k: int,
        *,
        rng: np.random.Generator | None = None,
        method: str = "qber",
        confidence: float = 0.95,
        at_s: float | None = None,
    ) -> VerificationResult:
        """Sacrifice ``k`` randomly chosen live pairs on ``link`` and estimate its fidelity with a confidence bound.

        Pairs are chosen uniformly at random among those alive at ``at_s`` (so a node cannot tell which pairs are
        tested), consumed with purpose ``verification`` and measured at ``at_s``. See
        :mod:`ceas.network.verification`.

        Raises
        ------
        ProtocolError
            Fewer than ``k`` live pairs are held (nothing is consumed then).
        """
        index = self.link_index(link)
        k = check_int("k", k, 1, self.capacity)
        lookup("verification test", method, ("qber", "chsh"))
        confidence = check_real("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
        at = self._at(at_s)
        rng = rng or self._op_rng
        inv = self.inventory
        alive = np.flatnonzero(inv.eligible(at, 0.25)[index])
        if alive.size < k:
            raise ProtocolError(
                f"link {index} holds {alive.size} live pairs, verification needs k = {k}"
            )
        chosen = np.zeros_like(inv.occupied)
        chosen[index, rng.choice(alive, size=k, replace=False)] = True
        delivery = inv.take(chosen, "verification", at)
        return run_verification(delivery.bell, rng, method=method, confidence=confidence)
