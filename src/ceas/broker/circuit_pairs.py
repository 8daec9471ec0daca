r"""The Bell pairs a split circuit runs on (SPEC §7, Fig. 1b-c): QPU-to-QPU pairs swapped at the broker.

A replica of a unitary- or circuit-level scheme occupies K QPUs (:mod:`ceas.broker.replicas`); every run (one shot)
of its circuit consumes ``scheme.pairs_per_link[l]`` pairs on each of the scheme's links l = (i, j) between its QPUs.
A round of B samples, each estimated at 2P + 1 parameter-shifted points from S shots, is R = B·(2P+1)·S runs, so
link l must deliver ``D_l = pairs_per_link[l] · R`` pairs (:func:`ceas.partitions.pair_demand`, asserted against the
run's ledger by the tests).

**How one QPU-QPU pair is made.** QPUs i and j are joined through the broker: the pair is the entanglement swap of a
pair on QPU i's channel to the broker with one on QPU j's (:mod:`ceas.broker.channels` gives each channel's fresh
fidelity, rate, coherence and cutoff). Both channels generate; a heralded pair waits in memory for a partner on the
other channel, a newer herald replaces an older waiting pair on the same channel (the older one is discarded), and a
waiting pair past its cutoff age is discarded. The swap happens the moment a pair is heralded while a live partner
waits: the delivered pair has the Werner parameter :math:`w = w_0^{(i)} e^{-a_i/T_i}\, w_0^{(j)} e^{-a_j/T_j}`
(:func:`~ceas.network.swapping.swap_werner`, :func:`~ceas.network.werner.werner_at_age`) with one age 0. A channel
that serves d hops of its replica gives each a share 1/d of its rate (time-sharing), and every hop runs until its
demand is served: the circuit part of the round lasts as long as the slowest hop (``time_s``).

**What each run sees.** Run r uses the pairs of link l in delivery order (pairs ``[r·c, (r+1)·c)``, c = pairs per
run on l). The simulators take one visibility per pair slot of a run (``scheme.pair_shape``); every run of the round
is simulated at the mean, over the round's runs, of each slot's visibility. A run's outcome is affine in each
pair's visibility, so this is exact for the mean expectation when the slots' draws are independent (they are, up to
the order in which a link's pairs are handed out).

Approximations, stated: the circuit's pairs are not drawn from the network simulator's inventory (stored pairs and
memory slots of :class:`~ceas.network.QuantumNetwork` are left to payload, verification and key), and its clock is
not advanced over the circuit time; a pair is used the moment it is swapped (the runs are pipelined); the swap at the
broker always succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas.broker.channels import Channels
from ceas.network.swapping import swap_werner
from ceas.network.werner import fidelity_from_werner, werner_at_age, werner_from_fidelity


@dataclass(frozen=True)
class HopStream:
    """What one QPU-QPU hop delivered.

    Attributes
    ----------
    werner : (D,) float
        Werner parameter of each delivered pair at use, in delivery order.
    time_s : float
        Seconds until the D-th pair was delivered.
    generated : int
        Link pairs heralded on the two channels (used, or discarded by replacement or cutoff).
    """

    werner: np.ndarray
    time_s: float
    generated: int


def hop_stream(
    demand: int,
    rate_hz: tuple[float, float],
    w0: tuple[float, float],
    t_coh_s: tuple[float, float],
    cutoff_s: tuple[float, float],
    rng: np.random.Generator,
) -> HopStream:
    """Swap pairs of two channels (index 0 and 1) at the broker until ``demand`` end-to-end pairs exist.

    After a swap both memories are empty and both herald processes are memoryless, so the intervals between swaps
    are independent and identically distributed: all ``demand`` intervals are simulated at once, one herald per
    still-open interval per step.

    Parameters
    ----------
    demand : int
        End-to-end pairs to deliver, >= 0.
    rate_hz, w0, t_coh_s, cutoff_s : (float, float)
        Each channel's herald rate (Hz, its share for this hop), fresh Werner parameter, coherence time and cutoff age
        (seconds).
    rng : numpy.random.Generator
        Draws the herald times.

    Returns
    -------
    HopStream
    """
    if demand <= 0:
        return HopStream(werner=np.zeros(0), time_s=0.0, generated=0)
    total = float(rate_hz[0] + rate_hz[1])
    p1 = float(rate_hz[1]) / total
    cut = np.asarray(cutoff_s, float)
    clock = np.zeros(demand)  # time since the interval's start
    waiting = np.full((demand, 2), -np.inf)  # herald time of the pair waiting on each channel (-inf: none)
    age = np.zeros(demand)  # how long the partner waited at the swap
    waited = np.zeros(demand, np.int64)  # which channel's pair waited
    open_ = np.arange(demand)
    generated = 0
    while open_.size:
        clock[open_] += rng.exponential(1.0 / total, open_.size)
        side = (rng.random(open_.size) < p1).astype(np.int64)
        generated += open_.size
        now, other = clock[open_], 1 - side
        t_other = waiting[open_, other]
        live = now - t_other <= cut[other]  # a partner waits, within its cutoff (-inf: none)
        done = open_[live]
        age[done], waited[done] = (now - t_other)[live], other[live]
        stay = open_[~live]
        waiting[stay, other[~live]] = -np.inf  # a partner past its cutoff is discarded
        waiting[stay, side[~live]] = now[~live]  # an older pair on this side is replaced by the fresher one
        open_ = stay
    w0s, coh = np.asarray(w0, float), np.asarray(t_coh_s, float)
    werner = swap_werner(w0s[1 - waited], werner_at_age(w0s[waited], age, coh[waited]))
    return HopStream(werner=np.asarray(werner, float), time_s=float(clock.sum()), generated=generated)


@dataclass(frozen=True, eq=False)
class CircuitSupply:
    """The QPU-QPU pairs of one round's running replicas.

    Attributes
    ----------
    werner : (R, *pair_shape) float
        Per running replica, each pair slot's mean Werner parameter over the round's runs.
    runs : int
        Circuit runs per replica (samples × (2P+1) × shots).
    pairs : (R,) int
        End-to-end QPU-QPU pairs each replica consumed (= the analytic demand).
    time_s : (R,) float
        Seconds each replica's circuit runs took (its slowest hop).
    generated : int
        Link pairs heralded for them on the QPUs' channels.
    fidelity_sum : float
        Sum of the delivered pairs' fidelities at use (for the round's mean).
    """

    werner: np.ndarray
    runs: int
    pairs: np.ndarray
    time_s: np.ndarray
    generated: int
    fidelity_sum: float


def supply_circuit_pairs(
    scheme, channels: Channels, members: np.ndarray, runs: int, rng: np.random.Generator
) -> CircuitSupply:
    """Deliver the pairs of ``runs`` circuit runs to each replica in ``members`` (R, K) node ids (module docstring)."""
    n_rep = members.shape[0]
    slots = int(np.prod(scheme.pair_shape)) if scheme.links else 0
    slot_link = np.asarray(scheme.slot_link, dtype=np.int64)
    degree = np.zeros(scheme.n_qpus, np.int64)
    for a, b in scheme.links:
        degree[a] += 1
        degree[b] += 1
    w0 = werner_from_fidelity(channels.f0)
    werner = np.ones((n_rep, slots))
    pairs = np.zeros(n_rep, np.int64)
    time_s = np.zeros(n_rep)
    generated, fid_sum = 0, 0.0
    for r in range(n_rep):
        for l, ((a, b), per_run) in enumerate(zip(scheme.links, scheme.pairs_per_link)):
            na, nb = int(members[r, a]), int(members[r, b])
            hop = hop_stream(
                int(per_run) * runs,
                (channels.rate_hz[na] / degree[a], channels.rate_hz[nb] / degree[b]),
                (float(w0[na]), float(w0[nb])),
                (float(channels.t_coh_s[na]), float(channels.t_coh_s[nb])),
                (float(channels.cutoff_s[na]), float(channels.cutoff_s[nb])),
                rng,
            )
            # run-major: run r's pairs on this link are [r*c, (r+1)*c); column j is the link's j-th slot of a run
            per_slot = hop.werner.reshape(runs, int(per_run)).mean(axis=0)
            werner[r, np.flatnonzero(slot_link == l)] = per_slot
            pairs[r] += hop.werner.size
            time_s[r] = max(time_s[r], hop.time_s)
            generated += hop.generated
            fid_sum += float(np.sum(fidelity_from_werner(hop.werner)))
    return CircuitSupply(
        werner=werner.reshape(n_rep, *scheme.pair_shape) if slots else werner,
        runs=runs,
        pairs=pairs,
        time_s=time_s,
        generated=generated,
        fidelity_sum=fid_sum,
    )


def predicted_time_s(scheme, channels: Channels, members: np.ndarray, runs: int) -> np.ndarray:
    """What the scheduler is told a replica's circuit runs will take, seconds, shape (R,) for ``members`` (R, K).

    Per hop, D_l swaps of pairs heralded at the two channels' shares of their rates :math:`r_a, r_b`; without cutoffs
    the time between swaps has mean :math:`1/r_a + 1/r_b - 1/(r_a + r_b)` (the later of two exponential heralds), so
    the hop takes :math:`D_l` times that; the replica takes its slowest hop. Cutoffs only lengthen it (a lower bound).
    """
    degree = np.zeros(scheme.n_qpus, np.int64)
    for a, b in scheme.links:
        degree[a] += 1
        degree[b] += 1
    out = np.zeros(members.shape[0])
    for (a, b), per_run in zip(scheme.links, scheme.pairs_per_link):
        ra = channels.rate_hz[members[:, a]] / degree[a]
        rb = channels.rate_hz[members[:, b]] / degree[b]
        with np.errstate(divide="ignore"):
            gap = 1.0 / ra + 1.0 / rb - 1.0 / (ra + rb)
        out = np.maximum(out, int(per_run) * runs * gap)
    return out
