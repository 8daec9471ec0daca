r"""Heralded generation as a Bernoulli process on each link's attempt grid, sampled by geometric waiting times.

Link :math:`l` makes attempts at times :math:`n\,\tau_l` (:math:`\tau_l = L_l/c`, integer :math:`n \ge 1`), each
succeeding independently with probability :math:`p_l`. The number of attempts between successes is geometric,
:math:`G \sim \mathrm{Geom}(p_l)` on {1, 2, ...}, so instead of stepping through every attempt we draw the gaps
directly and only ever touch successful attempts. Each link keeps the index of its next success (``pending``);
by memorylessness, switching a link on draws that index afresh from the current time. A geometric gap is drawn as
:math:`1 + \lfloor E/\lambda \rfloor` with :math:`E \sim \mathrm{Exp}(1)` and :math:`\lambda = -\ln(1 - p)`, which has
exactly the geometric law.

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

    def subset(self, keep: np.ndarray, n_links: int) -> Arrivals:
        """The arrivals where ``keep`` (bool, shape (n,)) is true, still grouped by link in time order."""
        link = self.link[keep]
        offsets = np.zeros(n_links + 1, dtype=np.int64)
        np.cumsum(np.bincount(link, minlength=n_links), out=offsets[1:])
        return Arrivals(
            offsets=offsets, link=link, attempt=self.attempt[keep], time_s=self.time_s[keep]
        )


def first_success(
    rng: np.random.Generator, p: np.ndarray, tau_s: np.ndarray, t_s: float | np.ndarray
) -> np.ndarray:
    """Attempt index of the first success strictly after time ``t_s`` on each link, shape (n_links,).

    The first attempt after ``t_s`` is ``floor(t_s / tau) + 1``; the number of attempts up to and including the
    first success is Geom(p).
    """
    start = np.floor(np.asarray(t_s, dtype=float) / tau_s).astype(np.int64) + 1
    return start + rng.geometric(p) - 1


def _inverse_rate(p: np.ndarray) -> np.ndarray:
    """1 / lambda with lambda = -ln(1 - p): the scale that turns Exp(1) draws into Geom(p) draws."""
    with np.errstate(divide="ignore"):
        return -1.0 / np.log1p(-p)


def _geometric(rng: np.random.Generator, inverse_rate: np.ndarray) -> np.ndarray:
    """Geom(p) draws on {1, 2, ...}: ``1 + floor(E / lambda)`` with E ~ Exp(1), exact in law since
    P(floor(E / lambda) >= k) = exp(-k lambda) = (1 - p)^k; about 3x faster than ``Generator.geometric``."""
    draws = rng.standard_exponential(inverse_rate.size)
    draws *= inverse_rate
    gaps = draws.astype(np.int64)
    gaps += 1
    return gaps


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
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    active = np.flatnonzero((pending != OFF) & (pending * tau_s <= t_end_s))
    while active.size:
        pa, ta, start = p[active], tau_s[active], pending[active]
        # expected further successes before the window ends, plus a margin of ~6 sigma: one pass almost always
        mu = np.maximum(t_end_s / ta - start, 0.0) * pa
        size = np.ceil(mu + 6.0 * np.sqrt(mu) + 8.0).astype(np.int64) + 1
        seg_start = np.cumsum(size) - size
        gaps = _geometric(rng, np.repeat(_inverse_rate(pa), size))
        gaps[seg_start] = 0  # the first candidate is the pending success itself
        csum = np.cumsum(gaps)
        candidate = np.repeat(start - csum[seg_start], size) + csum
        time = candidate * np.repeat(ta, size)
        inside = time <= t_end_s
        n_in = np.diff(np.r_[0, np.cumsum(inside)][np.r_[seg_start, inside.size]])
        pieces.append((np.repeat(active, n_in), candidate[inside], time[inside]))
        done = n_in < size
        pending[active[done]] = candidate[(seg_start + n_in)[done]]
        # links whose candidates all fell inside continue from their last success
        more = ~done
        last = candidate[seg_start[more] + size[more] - 1]
        pending[active[more]] = last + rng.geometric(pa[more])
        active = active[more][pending[active[more]] * ta[more] <= t_end_s]
    if not pieces:
        link = np.zeros(0, dtype=np.int64)
        attempt = np.zeros(0, dtype=np.int64)
        time_s = np.zeros(0)
    elif len(pieces) == 1:
        link, attempt, time_s = pieces[0]
    else:
        link, attempt, time_s = (np.concatenate(x) for x in zip(*pieces))
        order = np.lexsort((attempt, link))
        link, attempt, time_s = link[order], attempt[order], time_s[order]
    offsets = np.zeros(n_links + 1, dtype=np.int64)
    np.cumsum(np.bincount(link, minlength=n_links), out=offsets[1:])
    return Arrivals(offsets=offsets, link=link, attempt=attempt, time_s=time_s), pending
