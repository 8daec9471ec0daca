r"""Heralded generation as a Bernoulli process on each link's attempt grid, sampled by geometric waiting times.

Link :math:`l` makes attempts at times :math:`n\,\tau_l` (:math:`\tau_l = L_l/c`, integer :math:`n \ge 1`), each
succeeding independently with probability :math:`p_l`. The number of attempts between successes is geometric,
:math:`G \sim \mathrm{Geom}(p_l)` on {1, 2, ...}, so instead of stepping through every attempt we draw the gaps
directly and only ever touch successful attempts. Each link keeps the index of its next success (``pending``);
by memorylessness, switching a link on draws that index afresh from the current time.

All links are sampled at once: the gaps of every link sit in one flat array (segments in link order), so the cost
is a few numpy passes over the successes, with no Python loop over links or attempts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Arrivals", "first_success", "sample_arrivals"]

OFF = -1
"""``pending`` value of a link whose generation is switched off."""


@dataclass(frozen=True)
class Arrivals:
    """Successful attempts in a window, grouped by link (CSR layout).

    Attributes
    ----------
    offsets : ndarray, shape (n_links + 1,)
        Link ``l``'s arrivals are entries ``offsets[l]:offsets[l+1]`` of the arrays below, in time order.
    link : ndarray, shape (n,)
        Link index of each arrival.
    attempt : ndarray, shape (n,)
        Attempt index n of each arrival (its time is ``attempt * tau``).
    time_s : ndarray, shape (n,)
        Heralding time of each arrival, seconds.
    """

    offsets: np.ndarray
    link: np.ndarray
    attempt: np.ndarray
    time_s: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        """Arrivals per link, shape (n_links,)."""
        return np.diff(self.offsets)

    @property
    def local_index(self) -> np.ndarray:
        """Rank of each arrival within its link, shape (n,)."""
        return np.arange(self.link.size) - self.offsets[self.link]


def first_success(
    rng: np.random.Generator, p: np.ndarray, tau_s: np.ndarray, t_s: float | np.ndarray
) -> np.ndarray:
    """Attempt index of the first success strictly after time ``t_s`` on each link, shape (n_links,).

    The first attempt after ``t_s`` is ``floor(t_s / tau) + 1``; the number of attempts up to and including the
    first success is Geom(p).
    """
    start = np.floor(np.asarray(t_s, dtype=float) / tau_s).astype(np.int64) + 1
    return start + rng.geometric(p) - 1


def sample_arrivals(
    rng: np.random.Generator,
    p: np.ndarray,
    tau_s: np.ndarray,
    pending: np.ndarray,
    t_end_s: float,
) -> tuple[Arrivals, np.ndarray]:
    """All successes with time <= ``t_end_s`` on every link, and the new pending successes.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the geometric gaps.
    p : ndarray, shape (n_links,)
        Success probability per attempt, in (0, 1].
    tau_s : ndarray, shape (n_links,)
        Attempt period, seconds.
    pending : ndarray of int64, shape (n_links,)
        Attempt index of each link's next success (already drawn), or ``OFF`` (-1) for a link not generating.
    t_end_s : float
        End of the window, seconds.

    Returns
    -------
    arrivals : Arrivals
        The successes with ``attempt * tau <= t_end_s``, grouped by link, in time order.
    pending : ndarray of int64, shape (n_links,)
        Each link's first success after ``t_end_s`` (``OFF`` where generation is off).
    """
    n_links = p.size
    pending = pending.copy()
    pieces_link: list[np.ndarray] = []
    pieces_attempt: list[np.ndarray] = []
    active = np.flatnonzero((pending != OFF) & (pending * tau_s <= t_end_s))
    while active.size:
        pa, ta, start = p[active], tau_s[active], pending[active]
        # expected further successes before the window ends, plus a margin of ~6 sigma: one pass almost always
        mu = np.maximum(t_end_s / ta - start, 0.0) * pa
        size = np.ceil(mu + 6.0 * np.sqrt(mu) + 8.0).astype(np.int64) + 1
        seg_link = np.repeat(active, size)
        seg_start = np.cumsum(size) - size
        gaps = rng.geometric(np.repeat(pa, size))
        gaps[seg_start] = 0  # the first candidate is the pending success itself
        csum = np.cumsum(gaps)
        candidate = np.repeat(start - csum[seg_start], size) + csum
        inside = candidate * np.repeat(ta, size) <= t_end_s
        n_in = np.add.reduceat(inside.astype(np.int64), seg_start)
        pieces_link.append(seg_link[inside])
        pieces_attempt.append(candidate[inside])
        done = n_in < size
        pending[active[done]] = candidate[(seg_start + n_in)[done]]
        # links whose candidates all fell inside continue from their last success
        more = ~done
        last = candidate[seg_start[more] + size[more] - 1]
        pending[active[more]] = last + rng.geometric(pa[more])
        active = active[more][pending[active[more]] * ta[more] <= t_end_s]
    if pieces_link:
        link = np.concatenate(pieces_link)
        attempt = np.concatenate(pieces_attempt)
        if len(pieces_link) > 1:
            order = np.lexsort((attempt, link))
            link, attempt = link[order], attempt[order]
    else:
        link = np.zeros(0, dtype=np.int64)
        attempt = np.zeros(0, dtype=np.int64)
    offsets = np.zeros(n_links + 1, dtype=np.int64)
    np.cumsum(np.bincount(link, minlength=n_links), out=offsets[1:])
    arrivals = Arrivals(offsets=offsets, link=link, attempt=attempt, time_s=attempt * tau_s[link])
    return arrivals, pending
