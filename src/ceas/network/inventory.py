r"""The entanglement inventory (Definition 2): a per-link ledger of the Bell pairs held in memory.

Each live pair is a record (id, link, creation time, Bell-diagonal vector at a reference time, memory slot), stored
column-wise in arrays of shape (n_links, slots) so every query is vectorised over links. Fidelity is computed
lazily at the moment of use,

.. math:: F(t) = \tfrac14 + (\lambda_{\Phi^+}(t_\mathrm{ref}) - \tfrac14)\,e^{-(t - t_\mathrm{ref})/T_l},

where :math:`t_\mathrm{ref}` is the heralding time, or the time of the last purification that rewrote the pair.
Every pair ends in exactly one of: **consumed** (with a purpose), **expired** (cutoff), **evicted** (memory full), or
is still **held**, so per link, always,

.. math:: \text{generated} = \text{consumed} + \text{expired} + \text{evicted} + \text{held}.

The inventory is bookkeeping only: :class:`~ceas.network.network.QuantumNetwork` owns the clock, validates every
request and then calls the mutating methods here, which therefore assume valid input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ceas.network.memory import MemoryOutcome, MemoryWindow
from ceas.network.werner import (
    _bell_decay,
    _cutoff_age,
    _fidelity_at_age,
    _werner_from_fidelity,
)

__all__ = [
    "PAIR_PURPOSES",
    "SELECTION_ORDERS",
    "Delivery",
    "EntanglementInventory",
    "InventoryCounters",
    "InventorySnapshot",
    "LinkSnapshot",
]

PAIR_PURPOSES = ("payload", "verification", "key", "swap", "purify", "teleport", "gate")
"""What a consumed pair was used for: quantum gradient payloads, verification tests, BBM92 key, entanglement
swapping, purification (sacrificed or failed), state teleportation (unitary-level partition), gate teleportation
(circuit-level partition)."""

SELECTION_ORDERS = ("oldest", "freshest", "expiring")
"""Which eligible pairs a request takes first: earliest heralded (FIFO), highest fidelity at use, or soonest to
expire (use before expiry)."""


@dataclass(frozen=True)
class Delivery:
    """Pairs handed out by the inventory, with their state at the moment of use.

    Attributes
    ----------
    purpose : str
        One of :data:`PAIR_PURPOSES`.
    link : ndarray of int64, shape (n,)
        Link index of each pair.
    pair_id : ndarray of int64, shape (n,)
        Ledger id of each pair.
    time_s : ndarray, shape (n,)
        Moment of use of each pair, seconds.
    bell : ndarray, shape (n, 4)
        Bell-diagonal vector at the moment of use (see :data:`ceas.network.werner.BELL_STATES`).
    """

    purpose: str
    link: np.ndarray
    pair_id: np.ndarray
    time_s: np.ndarray
    bell: np.ndarray

    @property
    def n(self) -> int:
        return int(self.link.size)

    @property
    def fidelity(self) -> np.ndarray:
        """Fidelity at use, shape (n,)."""
        return self.bell[:, 0]

    @property
    def werner(self) -> np.ndarray:
        """Werner parameter (visibility) w = (4F - 1)/3 at use, shape (n,)."""
        return _werner_from_fidelity(self.bell[:, 0])

    def counts(self, n_links: int) -> np.ndarray:
        """Pairs delivered per link, shape (n_links,)."""
        return np.bincount(self.link, minlength=n_links)

    @staticmethod
    def empty(purpose: str) -> Delivery:
        return Delivery(
            purpose,
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0),
            np.zeros((0, 4)),
        )

    @staticmethod
    def concatenate(parts: list[Delivery], purpose: str) -> Delivery:
        """One Delivery holding every pair of ``parts`` (sorted by link, then time)."""
        if not parts:
            return Delivery.empty(purpose)
        link = np.concatenate([p.link for p in parts])
        time = np.concatenate([p.time_s for p in parts])
        order = np.lexsort((time, link))
        return Delivery(
            purpose,
            link[order],
            np.concatenate([p.pair_id for p in parts])[order],
            time[order],
            np.concatenate([p.bell for p in parts])[order],
        )


@dataclass(frozen=True)
class InventoryCounters:
    """Cumulative pair counts per link, each of shape (n_links,).

    ``generated == consumed_total + expired + evicted + held`` holds entry-wise (see :attr:`residual`).
    """

    generated: np.ndarray
    expired: np.ndarray
    evicted: np.ndarray
    held: np.ndarray
    consumed: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def consumed_total(self) -> np.ndarray:
        total = np.zeros_like(self.generated)
        for counts in self.consumed.values():
            total = total + counts
        return total

    @property
    def residual(self) -> np.ndarray:
        """generated - consumed - expired - evicted - held per link: zero, always."""
        return self.generated - self.consumed_total - self.expired - self.evicted - self.held


@dataclass(frozen=True)
class InventorySnapshot:
    """Every link's held pairs at time ``at_s``, arrays of shape (n_links, slots) (NaN / -1 in empty slots).

    Attributes
    ----------
    at_s : float
        Time of the view, seconds.
    occupied : ndarray of bool
        Slot holds a pair.
    pair_id : ndarray of int64
        Ledger id (-1 where empty).
    age_s : ndarray
        Time since heralding, seconds.
    fidelity, werner : ndarray
        Fidelity and Werner parameter at ``at_s``.
    time_to_expiry_s : ndarray
        Seconds left before the cutoff discards the pair.
    cutoff_age_s : ndarray
        Age at which the pair expires (heralding to expiry), seconds.
    """

    at_s: float
    occupied: np.ndarray
    pair_id: np.ndarray
    age_s: np.ndarray
    fidelity: np.ndarray
    werner: np.ndarray
    time_to_expiry_s: np.ndarray
    cutoff_age_s: np.ndarray

    @property
    def held(self) -> np.ndarray:
        """Pairs held per link, shape (n_links,)."""
        return self.occupied.sum(axis=1)


@dataclass(frozen=True)
class LinkSnapshot:
    """One link's held pairs at time ``at_s``, oldest first, arrays of shape (n,) (``bell``: (n, 4)).

    Attributes mirror :class:`InventorySnapshot`, plus ``slot``, ``created_s`` (heralding time), ``bell`` (Bell vector
    at ``at_s``) and ``expiry_s`` (absolute expiry time).
    """

    link: int
    at_s: float
    pair_id: np.ndarray
    slot: np.ndarray
    created_s: np.ndarray
    age_s: np.ndarray
    bell: np.ndarray
    fidelity: np.ndarray
    werner: np.ndarray
    expiry_s: np.ndarray
    time_to_expiry_s: np.ndarray
    cutoff_age_s: np.ndarray

    @property
    def n(self) -> int:
        return int(self.pair_id.size)


class EntanglementInventory:
    """Definition 2: the ledger of live Bell pairs, vectorised over links.

    Parameters
    ----------
    t_coh_s : ndarray, shape (n_links,)
        Coherence time of a pair stored on each link, seconds (``inf`` allowed).
    slots : int
        Memory slots per link (M).
    f_min : float or ndarray, shape (n_links,)
        Minimum usable fidelity (per link, or one for all); sets the expiry of a purified pair (its cutoff age).
    """

    def __init__(self, t_coh_s: np.ndarray, slots: int, f_min: float | np.ndarray) -> None:
        self.t_coh_s = np.asarray(t_coh_s, dtype=float).copy()
        self.slots = int(slots)
        n_links = self.t_coh_s.size
        self.f_min = np.broadcast_to(np.asarray(f_min, dtype=float), (n_links,)).copy()
        shape = (n_links, self.slots)
        self.occupied = np.zeros(shape, bool)
        self.pair_id = np.full(shape, -1, np.int64)
        self.created_s = np.zeros(shape)
        self.ref_s = np.zeros(shape)
        self.bell = np.zeros(shape + (4,))
        self.expiry_s = np.zeros(shape)
        self.generated = np.zeros(n_links, np.int64)
        self.expired = np.zeros(n_links, np.int64)
        self.evicted = np.zeros(n_links, np.int64)
        self.consumed = {p: np.zeros(n_links, np.int64) for p in PAIR_PURPOSES}
        self.next_id = 0

    @property
    def n_links(self) -> int:
        return self.t_coh_s.size

    # ------------------------------------------------------------------------------------------------------------
    # lazy state at a time
    # ------------------------------------------------------------------------------------------------------------

    def fidelity_at(self, at_s: float) -> np.ndarray:
        """Fidelity of every slot at ``at_s`` (NaN where empty), shape (n_links, slots)."""
        f = _fidelity_at_age(self.bell[..., 0], at_s - self.ref_s, self.t_coh_s[:, None])
        return np.where(self.occupied, f, np.nan)

    def bell_at(self, at_s: float) -> np.ndarray:
        """Bell-diagonal vector of every slot at ``at_s``, shape (n_links, slots, 4)."""
        return _bell_decay(self.bell, at_s - self.ref_s, self.t_coh_s[:, None])

    def view(self, at_s: float) -> InventorySnapshot:
        """All links at once (see :class:`InventorySnapshot`)."""
        occ = self.occupied
        f = self.fidelity_at(at_s)
        nan = np.where(occ, 0.0, np.nan)
        return InventorySnapshot(
            at_s=float(at_s),
            occupied=occ.copy(),
            pair_id=np.where(occ, self.pair_id, -1),
            age_s=at_s - self.created_s + nan,
            fidelity=f,
            werner=_werner_from_fidelity(f),
            time_to_expiry_s=self.expiry_s - at_s + nan,
            cutoff_age_s=self.expiry_s - self.created_s + nan,
        )

    def link_view(self, link: int, at_s: float) -> LinkSnapshot:
        """One link, oldest pair first (see :class:`LinkSnapshot`)."""
        slots = np.flatnonzero(self.occupied[link])
        slots = slots[np.lexsort((self.pair_id[link, slots], self.created_s[link, slots]))]
        bell = self.bell_at(at_s)[link, slots]
        created = self.created_s[link, slots]
        expiry = self.expiry_s[link, slots]
        return LinkSnapshot(
            link=int(link),
            at_s=float(at_s),
            pair_id=self.pair_id[link, slots].copy(),
            slot=slots,
            created_s=created.copy(),
            age_s=at_s - created,
            bell=bell,
            fidelity=bell[:, 0],
            werner=_werner_from_fidelity(bell[:, 0]),
            expiry_s=expiry.copy(),
            time_to_expiry_s=expiry - at_s,
            cutoff_age_s=expiry - created,
        )

    def counters(self) -> InventoryCounters:
        """A snapshot of the cumulative counts (copies)."""
        return InventoryCounters(
            generated=self.generated.copy(),
            expired=self.expired.copy(),
            evicted=self.evicted.copy(),
            held=self.occupied.sum(axis=1),
            consumed=MappingProxyType({p: c.copy() for p, c in self.consumed.items()}),
        )

    # ------------------------------------------------------------------------------------------------------------
    # selection (pure) and consumption (mutating)
    # ------------------------------------------------------------------------------------------------------------

    def eligible(self, at_s: float, min_fidelity: float) -> np.ndarray:
        """Slots holding a pair alive at ``at_s`` with fidelity >= ``min_fidelity`` then, (n_links, slots)."""
        with np.errstate(invalid="ignore"):
            return self.occupied & (self.expiry_s > at_s) & (self.fidelity_at(at_s) >= min_fidelity)

    def rank(self, at_s: float, order: str, mask: np.ndarray) -> np.ndarray:
        """Slot indices per link, pairs in ``mask`` first in the given ``order`` (n_links, slots)."""
        if order == "oldest":
            primary = self.created_s
        elif order == "freshest":
            primary = -self.fidelity_at(at_s)
        else:  # expiring
            primary = self.expiry_s
        primary = np.where(mask, primary, 0.0)
        return np.lexsort((self.pair_id, self.created_s, primary, ~mask), axis=1)

    def select(
        self, counts: np.ndarray, at_s: float, min_fidelity: float, order: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Choose up to ``counts[l]`` eligible pairs per link in ``order``.

        Returns the chosen slots (bool, (n_links, slots)) and the number eligible per link (n_links,).
        """
        ok = self.eligible(at_s, min_fidelity)
        ranked = self.rank(at_s, order, ok)
        n_ok = ok.sum(axis=1)
        take = np.arange(self.slots)[None, :] < np.minimum(counts, n_ok)[:, None]
        chosen = np.zeros_like(ok)
        np.put_along_axis(chosen, ranked, take, axis=1)
        return chosen, n_ok

    def take(self, chosen: np.ndarray, purpose: str, at_s: float) -> Delivery:
        """Remove the ``chosen`` slots as consumed for ``purpose`` at ``at_s``; return what they delivered."""
        link, slot = np.nonzero(chosen)
        bell = self.bell_at(at_s)[link, slot]
        created = self.created_s[link, slot]
        order = np.lexsort((self.pair_id[link, slot], created, link))
        link, slot, bell = link[order], slot[order], bell[order]
        delivery = Delivery(
            purpose=purpose,
            link=link.astype(np.int64),
            pair_id=self.pair_id[link, slot].copy(),
            time_s=np.full(link.size, float(at_s)),
            bell=bell,
        )
        self.consumed[purpose] += np.bincount(link, minlength=self.n_links)
        self._clear(link, slot)
        return delivery

    def count_consumed(self, purpose: str, link: np.ndarray) -> None:
        """Count pairs consumed the moment they were heralded (they never entered the ledger)."""
        self.consumed[purpose] += np.bincount(link, minlength=self.n_links)

    def rewrite(self, link: int, slot: int, bell: np.ndarray, at_s: float) -> bool:
        """Give the pair in (link, slot) a new Bell vector as of ``at_s`` (after purification).

        Its expiry is recomputed from the new fidelity; if that is not above F_min the pair expires at once and
        ``False`` is returned.
        """
        self.bell[link, slot] = bell
        self.ref_s[link, slot] = at_s
        cutoff = _cutoff_age(bell[0], self.t_coh_s[link], self.f_min[link])
        self.expiry_s[link, slot] = at_s + cutoff
        if not cutoff > 0:
            self.expired[link] += 1
            self._clear(np.array([link]), np.array([slot]))
            return False
        return True

    def _clear(self, link: np.ndarray, slot: np.ndarray) -> None:
        self.occupied[link, slot] = False
        self.pair_id[link, slot] = -1

    # ------------------------------------------------------------------------------------------------------------
    # windows of generation, expiry and eviction
    # ------------------------------------------------------------------------------------------------------------

    def window(self, t_end_s: float, offsets, time_s, arrival_expiry_s) -> MemoryWindow:
        """The memories' current state with the arrivals of a window, for an eviction policy to resolve."""
        return MemoryWindow(
            t_end_s=float(t_end_s),
            occupied=self.occupied,
            created_s=self.created_s,
            expiry_s=self.expiry_s,
            pair_id=self.pair_id,
            offsets=offsets,
            time_s=time_s,
            arrival_expiry_s=arrival_expiry_s,
        )

    def absorb(
        self,
        outcome: MemoryOutcome,
        offsets: np.ndarray,
        link: np.ndarray,
        time_s: np.ndarray,
        pair_id: np.ndarray,
        fresh_bell: np.ndarray,
        expiry_s: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Apply a resolved window: drop evicted and expired pairs, store the surviving arrivals.

        Parameters
        ----------
        outcome : MemoryOutcome
            The policy's verdict on the window built by :meth:`window`.
        offsets : ndarray of int64, shape (n_links + 1,)
            Arrivals of link ``l`` are entries ``offsets[l]:offsets[l+1]`` of the arrays below.
        link, time_s, pair_id, expiry_s : ndarray, shape (n,)
            The arrivals that entered memory (grouped by link, in time order): link, heralding time, id, expiry.
        fresh_bell : ndarray, shape (n_links, 4)
            Bell vector of a freshly heralded pair on each link.

        Returns
        -------
        expired, evicted : ndarray of int64, shape (n_links,)
            Pairs that expired / were evicted in this window.
        """
        expired = outcome.start_expired.sum(axis=1) + _segment_sum(outcome.arrival_expired, offsets)
        evicted = outcome.start_evicted.sum(axis=1) + _segment_sum(outcome.arrival_evicted, offsets)
        self.expired += expired
        self.evicted += evicted
        gone_link, gone_slot = np.nonzero(outcome.start_evicted | outcome.start_expired)
        self._clear(gone_link, gone_slot)

        keep = np.flatnonzero(~(outcome.arrival_evicted | outcome.arrival_expired))
        if keep.size:
            s_link = link[keep]
            per_link = np.bincount(s_link, minlength=self.n_links)
            first = np.cumsum(per_link) - per_link
            rank = np.arange(keep.size) - first[s_link]
            free = np.argsort(self.occupied, axis=1, kind="stable")  # empty slots first
            if np.any(per_link > (~self.occupied).sum(axis=1)):  # pragma: no cover - a policy bug
                raise RuntimeError("eviction policy left more pairs than memory slots")
            slot = free[s_link, rank]
            s_time = time_s[keep]
            self.occupied[s_link, slot] = True
            self.pair_id[s_link, slot] = pair_id[keep]
            self.created_s[s_link, slot] = s_time
            self.ref_s[s_link, slot] = s_time
            self.bell[s_link, slot] = fresh_bell[s_link]
            self.expiry_s[s_link, slot] = expiry_s[keep]
        return expired, evicted


def _segment_sum(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Number of True entries of ``mask`` in each segment ``offsets[l]:offsets[l+1]``, shape (n_links,)."""
    csum = np.zeros(mask.size + 1, np.int64)
    np.cumsum(mask, out=csum[1:])
    return csum[offsets[1:]] - csum[offsets[:-1]]
