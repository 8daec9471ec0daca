r"""Link memories over a time window: cutoff expiry and eviction when full, resolved in closed form (SPEC §4).

Each link has ``M`` slots. During a window :math:`(t_0, t_1]` pairs arrive (heralded) at times :math:`t_1 < t_2 <
\dots`; a pair is **alive** at time :math:`t` while :math:`t < e` (its expiry, creation + cutoff age). Events are
processed in time order: at an arrival, pairs with :math:`e \le t` leave first (expired); then, if all ``M`` slots
are taken, the policy's victim among the stored pairs and the newcomer is **evicted**. At :math:`t_1`, pairs with
:math:`e \le t_1` expire. Nothing is consumed inside a window (the clock API consumes between windows).

Stepping through arrivals one by one in Python would dominate the simulator, so each policy resolves a whole window
with array operations, using that fresh arrivals on one link share one cutoff (expiries in arrival order):

* ``oldest`` (victim = earliest heralded). Arrival :math:`j` is evicted exactly at arrival :math:`j + M` if it
  is still alive then (:math:`t_{j+M} < e_j`); otherwise it expires or survives. A pair stored at :math:`t_0`
  (possibly purified, with its own expiry) is evicted at the first arrival :math:`k` at which it is alive and the
  pairs younger than it that are alive fill the other :math:`M - 1` slots.
* ``lowest_fidelity`` (victim = lowest current fidelity). On one link all pairs decay with the same T, so the
  lowest-fidelity pair is the one that expires first: the victim is the smallest expiry (ties: oldest). A pair is
  evicted at the arrival that makes the count of pairs with larger keys reach ``M``, if it is still alive then.

* ``block`` (admission control, no victim among the stored pairs): a newcomer that finds all ``M`` slots live is
  discarded (Erlang's loss system; see :class:`BlockWhenFull`).

All are checked against a plain event-by-event simulation in the tests. Policies follow :class:`EvictionPolicy`
and are registered in :data:`EVICTION_POLICIES` under their config name (``MemoryParams.eviction``).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ceas._validate import lookup

__all__ = [
    "EVICTION_POLICIES",
    "BlockWhenFull",
    "EvictionPolicy",
    "LowestFidelityFirst",
    "MemoryOutcome",
    "MemoryWindow",
    "OldestFirst",
    "get_eviction_policy",
    "sample_coherence_s",
]

_ROW_CHUNK_ELEMENTS = 1 << 22
"""Largest (rows x slots) block formed at once, to bound memory when M is large."""


def sample_coherence_s(
    rng: np.random.Generator, size: int, low_s: float, high_s: float
) -> np.ndarray:
    """Memory coherence times T log-uniform in [low_s, high_s] seconds, shape (size,)."""
    return np.exp(rng.uniform(np.log(low_s), np.log(high_s), size=size))


@dataclass(frozen=True)
class MemoryWindow:
    """The memories at the start of a window and the pairs that arrive during it.

    Attributes
    ----------
    t_end_s : float
        End of the window, seconds.
    occupied : ndarray of bool, shape (L, M)
        Which slots hold a pair at the start.
    created_s, expiry_s : ndarray, shape (L, M)
        Heralding time and expiry time (seconds) of the stored pairs (ignored where not occupied).
    pair_id : ndarray of int64, shape (L, M)
        Pair ids, the final tie-break of every ordering.
    offsets : ndarray of int64, shape (L + 1,)
        Arrivals of link ``l`` are entries ``offsets[l]:offsets[l+1]`` of the arrays below.
    time_s : ndarray, shape (n,)
        Heralding time of each arrival (increasing within a link, all > the stored pairs' creation times).
    arrival_expiry_s : ndarray, shape (n,)
        Expiry time of each arrival: time + the link's cutoff age (so non-decreasing within a link). An arrival
        with expiry <= its time never enters memory (it is expired on arrival).
    """

    t_end_s: float
    occupied: np.ndarray
    created_s: np.ndarray
    expiry_s: np.ndarray
    pair_id: np.ndarray
    offsets: np.ndarray
    time_s: np.ndarray
    arrival_expiry_s: np.ndarray

    @property
    def capacity(self) -> int:
        return self.occupied.shape[1]


@dataclass(frozen=True)
class MemoryOutcome:
    """Fate of every pair in a window; a pair neither evicted nor expired is held at the end.

    Attributes
    ----------
    start_evicted, start_expired : ndarray of bool, shape (L, M)
        Stored pairs evicted / expired during the window.
    arrival_evicted, arrival_expired : ndarray of bool, shape (n,)
        Arrivals evicted / expired during the window.
    """

    start_evicted: np.ndarray
    start_expired: np.ndarray
    arrival_evicted: np.ndarray
    arrival_expired: np.ndarray


class EvictionPolicy(Protocol):
    """Resolves one window of a link memory: which pairs are evicted, which expire."""

    def resolve(self, window: MemoryWindow) -> MemoryOutcome: ...


def _segments(window: MemoryWindow) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.diff(window.offsets)
    link = np.repeat(np.arange(counts.size), counts)
    local = np.arange(link.size) - window.offsets[link]
    return counts, link, local


def _row_chunks(n_rows: int, width: int) -> Iterator[tuple[int, int]]:
    step = max(1, _ROW_CHUNK_ELEMENTS // max(width, 1))
    for c0 in range(0, n_rows, step):
        yield c0, min(n_rows, c0 + step)


def _first_true_local(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Local index of the first True of ``mask`` within each link's segment (int64 max where none), (L,)."""
    pos = np.flatnonzero(mask)
    idx = np.searchsorted(pos, offsets[:-1])
    hit = idx < pos.size
    first = np.where(hit, pos[np.minimum(idx, max(pos.size - 1, 0))] if pos.size else 0, 0)
    hit &= first < offsets[1:]
    return np.where(hit, first - offsets[:-1], np.iinfo(np.int64).max)


def _sorted_start(
    window: MemoryWindow, primary: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-link order of the stored pairs by (primary, created, id), empty slots last.

    Returns the order (L, M), the sorted occupancy and the sorted expiry (-inf where empty).
    """
    occ = window.occupied
    order = np.lexsort(
        (window.pair_id, window.created_s, np.where(occ, primary, 0.0), ~occ), axis=1
    )
    occ_s = np.take_along_axis(occ, order, axis=1)
    exp_s = np.where(occ_s, np.take_along_axis(window.expiry_s, order, axis=1), -np.inf)
    return order, occ_s, exp_s


def _unsort(order: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    out = np.empty_like(sorted_values)
    np.put_along_axis(out, order, sorted_values, axis=1)
    return out


def _finish(window, start_evicted, arrival_evicted) -> MemoryOutcome:
    t_end = window.t_end_s
    return MemoryOutcome(
        start_evicted=start_evicted,
        start_expired=window.occupied & ~start_evicted & (window.expiry_s <= t_end),
        arrival_evicted=arrival_evicted,
        arrival_expired=~arrival_evicted & (window.arrival_expiry_s <= t_end),
    )


class OldestFirst:
    """Evict the pair heralded earliest (first in, first out); the default policy."""

    def resolve(self, window: MemoryWindow) -> MemoryOutcome:
        M = window.capacity
        t, e = window.time_s, window.arrival_expiry_s
        counts = np.diff(window.offsets)
        n = t.size
        if n:
            # arrivals: evicted at arrival j + M (same link) if still alive then
            g = np.arange(n)
            ahead = np.minimum(g + M, n - 1)
            arrival_evicted = (g + M < np.repeat(window.offsets[1:], counts)) & (t[ahead] < e)
        else:
            arrival_evicted = np.zeros(0, bool)
        order, occ_s, exp_s = _sorted_start(window, window.created_s)
        evicted_s = np.zeros_like(occ_s)
        if n and occ_s.any():
            evicted_s = self._start_evictions(window, counts, occ_s, exp_s)
        return _finish(window, _unsort(order, evicted_s), arrival_evicted)

    @staticmethod
    def _relevant_rows(window, counts, e_max, links) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arrivals that can decide a stored pair's fate: those before the link's last stored expiry, up to the
        first arrival k with alpha_k >= M - 1 (its M - 1 predecessors all alive), after which every stored pair
        is gone. Found on a short prefix of each link, lengthened only where it does not suffice."""
        M = window.capacity
        t, e = window.time_s, window.arrival_expiry_s
        off = window.offsets
        empty = np.zeros(0, np.int64)
        out_rows, out_link, out_local = [empty], [empty], [empty]
        width = 4 * M + 8
        todo = links
        while todo.size:
            P = np.minimum(counts[todo], width)
            p_off = np.r_[0, np.cumsum(P)]
            rl = np.repeat(todo, P)
            loc = np.arange(p_off[-1]) - np.repeat(p_off[:-1], P)
            rows = off[rl] + loc
            tr = t[rows]
            full = (loc >= M - 1) & (e[np.maximum(rows - (M - 1), 0)] > tr) & (e[rows] > tr)
            first_full = _first_true_local(full, p_off)
            last_t = t[off[todo] + P - 1]
            done = (
                (first_full < np.iinfo(np.int64).max)
                | (P == counts[todo])
                | (last_t >= e_max[todo])
            )
            idx = np.repeat(np.arange(todo.size), P)
            keep = done[idx] & (tr < e_max[rl]) & (loc <= first_full[idx])
            out_rows.append(rows[keep])
            out_link.append(rl[keep])
            out_local.append(loc[keep])
            todo = todo[~done]
            width *= 4
        return np.concatenate(out_rows), np.concatenate(out_link), np.concatenate(out_local)

    @staticmethod
    def _start_evictions(window, counts, occ_s, exp_s) -> np.ndarray:
        M = window.capacity
        t, e = window.time_s, window.arrival_expiry_s
        L = occ_s.shape[0]
        enters_all = e > t
        e_max = exp_s.max(axis=1)
        links = np.flatnonzero(occ_s.any(axis=1) & (counts > 0))
        rows, r_link, r_local = OldestFirst._relevant_rows(window, counts, e_max, links)
        if rows.size == 0:
            return np.zeros_like(occ_s)
        r_t = t[rows]
        # alpha_k: alive earlier arrivals at t_k^- = k - max(k - M, J_k), J_k = #{j : e_j <= t_k}
        m = rows.size
        vals = np.concatenate([e[rows], r_t])
        kind = np.concatenate(
            [np.zeros(m, np.int8), np.ones(m, np.int8)]
        )  # expiries sort before equal times
        owner = np.concatenate([r_link, r_link])
        srt = np.lexsort((kind, vals, owner))
        is_e = kind[srt] == 0
        cum_e = np.cumsum(is_e)
        seg_first = np.r_[0, np.flatnonzero(np.diff(owner[srt])) + 1]
        base = np.repeat(cum_e[seg_first] - is_e[seg_first], np.diff(np.r_[seg_first, 2 * m]))
        J = np.empty(m, np.int64)
        J[srt[~is_e] - m] = (cum_e - base)[~is_e]
        alpha = np.clip(r_local - np.maximum(r_local - M, J), 0, None)
        enters = enters_all[rows]
        alpha = np.where(enters, alpha, 0)

        width = occ_s.shape[1]
        first_row = np.full((L, width), np.iinfo(np.int64).max)
        for c0, c1 in _row_chunks(m, width):
            rl = r_link[c0:c1]
            alive = exp_s[rl] > r_t[c0:c1, None]
            younger = np.cumsum(alive[:, ::-1], axis=1)[:, ::-1] - alive
            cond = alive & (younger + alpha[c0:c1, None] >= M - 1) & enters[c0:c1, None]
            idx = np.where(cond, np.arange(c0, c1)[:, None], np.iinfo(np.int64).max)
            starts = np.r_[0, np.flatnonzero(np.diff(rl)) + 1]
            seg_min = np.minimum.reduceat(idx, starts, axis=0)
            links_here = rl[starts]
            first_row[links_here] = np.minimum(first_row[links_here], seg_min)
        return occ_s & (first_row < np.iinfo(np.int64).max)


class LowestFidelityFirst:
    """Evict the pair with the lowest current fidelity, i.e. the one that expires first (ties: oldest)."""

    def resolve(self, window: MemoryWindow) -> MemoryOutcome:
        M = window.capacity
        t, e = window.time_s, window.arrival_expiry_s
        counts, link, local = _segments(window)
        n = t.size
        L = window.occupied.shape[0]
        order, occ_s, exp_s = _sorted_start(window, window.expiry_s)
        n_occ = occ_s.sum(axis=1)
        rank = np.arange(occ_s.shape[1])[None, :]
        bigger_start = np.where(
            occ_s, n_occ[:, None] - 1 - rank, 0
        )  # stored pairs with a larger key

        e_max = exp_s.max(axis=1)
        rows = np.flatnonzero(e < e_max[link]) if n else np.zeros(0, np.int64)
        b = np.zeros(n, np.int64)  # stored pairs with a larger key than each arrival
        J = np.zeros(
            (L, occ_s.shape[1]), np.int64
        )  # arrivals with a smaller key than each stored pair
        width = occ_s.shape[1]
        for c0, c1 in _row_chunks(rows.size, width):
            rr = rows[c0:c1]
            rl = link[rr]
            bigger = exp_s[rl] > e[rr, None]  # -inf for empty slots never counts
            b[rr] = bigger.sum(axis=1)
            starts = np.r_[0, np.flatnonzero(np.diff(rl)) + 1]
            J[rl[starts]] += np.add.reduceat(bigger.astype(np.int64), starts, axis=0)

        if n:
            kstar = local + np.maximum(0, M - b)
            has = kstar < counts[link]
            at = np.where(has, window.offsets[link] + kstar, 0)
            arrival_evicted = has & (t[at] < e)
        else:
            arrival_evicted = np.zeros(0, bool)

        kstar_s = J + M - bigger_start - 1
        has_s = occ_s & (kstar_s < counts[:, None])
        at_s = np.where(has_s, window.offsets[:-1, None] + kstar_s, 0)
        evicted_s = has_s & (t[at_s] < exp_s) if n else np.zeros_like(occ_s)
        return _finish(window, _unsort(order, evicted_s), arrival_evicted)


class BlockWhenFull:
    r"""Admission control: a pair heralded while all M slots hold live pairs is discarded; nothing stored is evicted.

    The discarded newcomer is counted as evicted (it left because the memory was full). With Poisson heralds at rate
    λ and every admitted pair held until its cutoff a (a fixed holding time), each link is an M/G/M/M loss system:
    the fraction blocked is Erlang's :math:`B(A, M)` with offered load :math:`A = \lambda a` (insensitive to the
    holding-time law), and the carried rate is :math:`\lambda (1 - B)`.

    Admission depends on every earlier admission, so the window is resolved in two passes: an upper bound on the
    live pairs each arrival meets (all earlier arrivals admitted) clears, with array operations, every link that
    never fills; a short event loop (a heap of live expiries) runs only from the first arrival that may meet a full
    memory on the links that can.
    """

    def resolve(self, window: MemoryWindow) -> MemoryOutcome:
        M = window.capacity
        t, e, off = window.time_s, window.arrival_expiry_s, window.offsets
        blocked = np.zeros(t.size, bool)
        stored = np.where(window.occupied, window.expiry_s, -np.inf)
        for link in np.flatnonzero(np.diff(off) > 0):
            lo, hi = off[link], off[link + 1]
            tl, el = t[lo:hi], e[lo:hi]
            held = np.sort(stored[link][stored[link] > -np.inf])
            # live pairs met at each arrival if every earlier one had been admitted (expiries ascend on a link)
            earlier = np.arange(tl.size)
            bound = held.size - np.searchsorted(held, tl, side="right")
            bound += earlier - np.minimum(np.searchsorted(el, tl, side="right"), earlier)
            may_block = np.flatnonzero((bound >= M) & (el > tl))
            if may_block.size:
                j0 = int(may_block[0])
                blocked[lo + j0 : hi] = self._admit(held, tl, el, j0, M)
        return _finish(window, np.zeros_like(window.occupied), blocked)

    @staticmethod
    def _admit(held: np.ndarray, t: np.ndarray, e: np.ndarray, j0: int, M: int) -> np.ndarray:
        """Blocked flags of arrivals j0, j0+1, ... of one link, all arrivals before j0 admitted."""
        live = [float(x) for x in held] + [float(x) for x in e[:j0] if x > -np.inf]
        heapq.heapify(live)
        out = np.zeros(t.size - j0, bool)
        for k, (tj, ej) in enumerate(zip(t[j0:].tolist(), e[j0:].tolist())):
            while live and live[0] <= tj:  # pairs whose expiry has come leave first
                heapq.heappop(live)
            if ej <= tj:  # expired on arrival: never takes a slot
                continue
            if len(live) < M:
                heapq.heappush(live, ej)
            else:
                out[k] = True
        return out


EVICTION_POLICIES: dict[str, EvictionPolicy] = {
    "oldest": OldestFirst(),
    "lowest_fidelity": LowestFidelityFirst(),
    "block": BlockWhenFull(),
}
"""What a full memory does with a new pair, by config name (``MemoryParams.eviction``): evict the oldest stored pair
(``oldest``, the default), evict the one that expires first (``lowest_fidelity``), or discard the newcomer
(``block``)."""


def get_eviction_policy(name: str) -> EvictionPolicy:
    """The policy registered as ``name``; an unknown name raises UnknownNameError with the closest match."""
    return EVICTION_POLICIES[lookup("eviction policy", name, EVICTION_POLICIES)]
