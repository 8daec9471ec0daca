r"""Channels: each QPU's end-to-end connection to the broker, over one link or swapped along a path (SPEC §4).

The broker schedules per **channel**, not per link: channel k joins QPU k to the broker along the most reliable path
of the topology (:func:`~ceas.network.topology.most_reliable_path` over :func:`~ceas.network.links.annotate_links`),
a tuple of link indices from the QPU to the broker. In the star every channel is its one link (channel k is link k),
and everything below reduces to the link-level bookkeeping exactly: no extra random draw, the same arrays.

**One round's stream** (:func:`serve`). A channel demand of D end-to-end pairs for a purpose becomes D pairs on every
hop. A link shared by several channels carries the sum of their demands and hands its delivered pairs to the channels
in channel order (the lower index first). On every link the demands are served in the priority order key, payload,
verification -- a single-hop channel's demand before the multi-hop channels' demand of the same purpose -- with
stored pairs first and then each pair the moment it is heralded (:meth:`~ceas.network.network.QuantumNetwork.advance`);
the ledger records a multi-hop channel's hop pairs as consumed for ``swap``. Per channel and purpose, the j-th pairs
of its hops are swapped the moment the last of them is available, each hop pair having decayed in its memory from its
herald (or, for a stored pair, from the start of the round) to that moment
(:func:`~ceas.network.werner.bell_decay`); the Bell vectors multiply along the path
(:func:`~ceas.network.swapping.swap_bell`, for Werner pairs :math:`w = \prod_i w_i(a_i)`). The end-to-end pair is
lost when

* a hop pair waited past its cutoff (:func:`~ceas.network.werner.cutoff_age` of its fidelity when it became
  available): a *cutoff failure*;
* one of the H - 1 Bell measurements fails: probability :math:`1 - p_s^{H-1}` with ``network.swap_success``
  :math:`p_s`, drawn from the round's Generator (only for multi-hop channels, only when :math:`p_s < 1`): a *swap
  failure*.

Hop pairs of a channel left without partners on its other hops at the end of the round are *unmatched*: consumed by
the ledger, useless. An end-to-end pair is used at its swap time (payload teleported, test or BBM92 measurement done
at once), so it does not decay further.

**What the policy sees** (:class:`Channels`): one row per channel with effective physics -- fresh fidelity from the
product of the hops' fresh Werner parameters, coherence of the two end memories
(:func:`~ceas.network.links.link_coherence_s` of the QPU's and the broker's), the cutoff age of that fresh fidelity,
and the bottleneck rate (the slowest hop's) times :math:`p_s^{H-1}`. Only single-hop channels show stored pairs (their
link's); a multi-hop channel has no stored end-to-end pairs, as it swaps at herald.

Approximations, stated: the rate ignores contention on shared links (channels earlier in the order are served first);
a hop pair waiting for its partners is not counted against its link's memory slots (the ledger frees the slot at
herald); pairs are matched by order of availability, not re-planned when one hop is slow; a hop pair's cutoff is
judged from its fidelity when it became available (exact for fresh pairs, which start at :math:`F_0`).

Key is per channel: BBM92 on end-to-end pairs into a per-channel key pool held by the broker's state; a single-hop
channel's pool is its link's pool (so the star is unchanged).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ceas.errors import ConfigError
from ceas.network.inventory import Delivery
from ceas.network.links import annotate_links, link_coherence_s
from ceas.network.network import QuantumNetwork, StreamDemand
from ceas.network.swapping import swap_bell, swap_werner
from ceas.network.topology import broker_node, most_reliable_path, qpu_nodes
from ceas.network.werner import bell_decay, cutoff_age, fidelity_from_werner, werner_from_fidelity
from ceas.scheduling.views import PURPOSES

PRIORITY = ("key", "payload", "verification")
"""Order in which a link serves fresh requests (see :func:`serve`)."""


@dataclass(frozen=True, eq=False)
class Channels:
    """The channels of a network, one per QPU, and their effective physics (arrays of shape (C,) unless stated).

    Attributes
    ----------
    hops : tuple of C tuples of int
        Link indices from QPU k to the broker.
    n_hops : (C,) int
        Links per channel.
    link_channel : (L,) int
        The channel whose only hop is each link (-1 where none is).
    f0 : (C,) float
        Fidelity of a fresh end-to-end pair, :math:`(3\\prod_i w_{0,i} + 1)/4`.
    t_coh_s : (C,) float
        Coherence time of the two end memories (QPU and broker), seconds.
    cutoff_s : (C,) float
        Usable-age cutoff of a fresh end-to-end pair, seconds.
    rate_hz : (C,) float
        Bottleneck heralding rate times :math:`p_s^{H-1}`, end-to-end pairs per second.
    link_t_coh_s : (L,) float
        Coherence time of each link's pairs (their decay while they wait for a swap), seconds.
    f_min : float
        Fidelity at the cutoff (``network.memory.f_min``).
    swap_success : float
        Probability :math:`p_s` that one Bell-state measurement succeeds.
    """

    hops: tuple[tuple[int, ...], ...]
    n_hops: np.ndarray
    link_channel: np.ndarray
    f0: np.ndarray
    t_coh_s: np.ndarray
    cutoff_s: np.ndarray
    rate_hz: np.ndarray
    link_t_coh_s: np.ndarray
    f_min: float
    swap_success: float

    @property
    def n(self) -> int:
        """Number of channels C (= QPUs = training nodes)."""
        return len(self.hops)

    @property
    def n_links(self) -> int:
        return int(self.link_channel.size)

    @property
    def multi(self) -> np.ndarray:
        """Which channels swap along more than one link, (C,) bool."""
        return self.n_hops > 1

    @cached_property
    def _hop_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (channel, link) hop as two flat int64 arrays, channel order (the per-round sums below are then
        one array operation instead of a Python loop over channels)."""
        chan = np.repeat(np.arange(self.n, dtype=np.int64), self.n_hops)
        link = np.array([h for hops in self.hops for h in hops], np.int64).reshape(-1)
        return chan, link

    def link_demand(self, pairs: np.ndarray, *, multi: bool) -> np.ndarray:
        """Pairs per link, (L,) int64, for ``pairs`` (C,) end-to-end pairs per channel of the single-hop channels
        (``multi=False``) or of the multi-hop ones (``multi=True``), on every hop of each."""
        out = np.zeros(self.n_links, np.int64)
        pairs = np.asarray(pairs, np.int64)
        chan, link = self._hop_table
        sel = (self.n_hops[chan] > 1) == multi
        np.add.at(out, link[sel], pairs[chan[sel]])
        return out

    def link_any(self, flags: np.ndarray) -> np.ndarray:
        """(L,) bool: links on the path of any channel whose ``flags`` (C,) is true."""
        out = np.zeros(self.n_links, bool)
        chan, link = self._hop_table
        out[link[np.asarray(flags, bool)[chan]]] = True
        return out


def build_channels(net: QuantumNetwork, n_nodes: int) -> Channels:
    """The channels of ``net``: the most reliable path from each QPU (in node order) to the broker.

    Raises
    ------
    ConfigError
        The topology does not hold exactly ``n_nodes`` QPUs (a GraphML file fixes its own number).
    """
    G, table = net.graph, net.table
    qpus, broker = qpu_nodes(G), broker_node(G)
    if len(qpus) != n_nodes:
        raise ConfigError(
            f"network.topology: the graph has {len(qpus)} QPU nodes; allowed: training.nodes = {n_nodes} "
            "(one QPU per training node)"
        )
    annotated = annotate_links(G, net.link_params, net.memory_params)
    hops = tuple(
        tuple(
            net.link_index((u, v))
            for u, v in itertools.pairwise(most_reliable_path(annotated, q, broker))
        )
        for q in qpus
    )
    n_hops = np.array([len(h) for h in hops], np.int64)
    link_channel = np.full(net.n_links, -1, np.int64)
    for c, h in enumerate(hops):
        if len(h) == 1:
            link_channel[h[0]] = c
    f_min, p_s = float(net.memory_params.f_min), float(net.swap_success)
    f0, t_coh, cutoff, rate = (np.empty(len(hops)) for _ in range(4))
    t_broker = G.nodes[broker]["t_coh_s"]
    for c, h in enumerate(hops):
        idx = list(h)
        if len(h) == 1:  # the link itself (the star: the link table's own numbers)
            f0[c], t_coh[c] = table.f0[h[0]], table.t_coh_s[h[0]]
            cutoff[c], rate[c] = table.cutoff_s[h[0]], table.rate_hz[h[0]]
            continue
        f0[c] = fidelity_from_werner(swap_werner(*werner_from_fidelity(table.f0[idx])))
        t_coh[c] = link_coherence_s(G.nodes[qpus[c]]["t_coh_s"], t_broker)
        cutoff[c] = cutoff_age(f0[c], t_coh[c], f_min=f_min)
        rate[c] = table.rate_hz[idx].min() * p_s ** (len(h) - 1)
    return Channels(
        hops=hops,
        n_hops=n_hops,
        link_channel=link_channel,
        f0=f0,
        t_coh_s=t_coh,
        cutoff_s=cutoff,
        rate_hz=rate,
        link_t_coh_s=np.asarray(table.t_coh_s, float),
        f_min=f_min,
        swap_success=p_s,
    )


@dataclass(frozen=True, eq=False)
class EndToEnd:
    """The end-to-end pairs one purpose received during the round's stream, per channel (tuples of C arrays).

    Attributes
    ----------
    bell : (n_c, 4) arrays
        Bell-diagonal vector of each pair at use.
    time_s : (n_c,) arrays
        Moment of use (heralding for one hop, the swap for several), seconds since the network was built.
    hop_time_s : (n_c, H_c) arrays
        When each of its hop pairs became available (heralded, or the round's start for a stored pair).
    hop_bell : (n_c, H_c, 4) arrays
        Bell vector of each hop pair at ``hop_time_s``.
    """

    bell: tuple[np.ndarray, ...]
    time_s: tuple[np.ndarray, ...]
    hop_time_s: tuple[np.ndarray, ...]
    hop_bell: tuple[np.ndarray, ...]

    def werner(self, c: int) -> np.ndarray:
        """Werner parameter at use of channel ``c``'s pairs, (n_c,)."""
        return werner_from_fidelity(np.clip(self.bell[c][:, 0], 0.25, 1.0))


@dataclass(frozen=True, eq=False)
class Stream:
    """What :func:`serve` delivered: per purpose the end-to-end pairs, and the round's link and swap counts.

    Attributes
    ----------
    delivered : dict of str to EndToEnd
        Keyed by purpose (:data:`PRIORITY`).
    generated, expired, evicted : int
        Link pairs generated, expired and evicted during the round, all links.
    swapped : int
        End-to-end pairs made by swapping (multi-hop channels).
    cutoff_failures, swap_failures : int
        End-to-end pairs lost because a hop pair waited past its cutoff, or a Bell measurement failed.
    unmatched : int
        Hop pairs consumed without partners on the channel's other hops.
    """

    delivered: dict[str, EndToEnd]
    generated: int
    expired: int
    evicted: int
    swapped: int
    cutoff_failures: int
    swap_failures: int
    unmatched: int


@dataclass(frozen=True, eq=False)
class _Joined:
    bell: np.ndarray
    time_s: np.ndarray
    hop_time_s: np.ndarray
    hop_bell: np.ndarray
    cutoff_failures: int
    swap_failures: int
    unmatched: int


def join_hops(
    times: list[np.ndarray],
    bells: list[np.ndarray],
    t_coh_s: np.ndarray,
    *,
    f_min: float,
    swap_success: float,
    rng: np.random.Generator,
) -> _Joined:
    """Swap the j-th pairs of H hops into end-to-end pairs (module docstring).

    Parameters
    ----------
    times : H arrays (n_h,)
        When each hop's pairs became available, in order, seconds.
    bells : H arrays (n_h, 4)
        Their Bell vectors then.
    t_coh_s : (H,) float
        Coherence time of each hop's pairs, seconds.
    f_min, swap_success : float
        Cutoff fidelity and Bell-measurement success probability.
    rng : numpy.random.Generator
        Draws the swap outcomes (only when ``swap_success < 1``).
    """
    H = len(times)
    n = min(t.size for t in times)
    unmatched = int(sum(t.size for t in times)) - n * H
    T = np.stack([t[:n] for t in times], axis=1).reshape(n, H)
    B = np.stack([b[:n] for b in bells], axis=1).reshape(n, H, 4)
    t_coh = np.asarray(t_coh_s, float)[None, :]
    t_swap = T.max(axis=1) if n else np.zeros(0)
    wait = t_swap[:, None] - T
    decayed = bell_decay(B, wait, t_coh)
    dead = (wait > cutoff_age(B[..., 0], t_coh, f_min=f_min)).any(axis=1)
    bell = decayed[:, 0]
    for h in range(1, H):
        bell = swap_bell(bell, decayed[:, h])
    ok = np.ones(n, bool)
    if swap_success < 1.0 and n:
        ok = rng.random(n) < swap_success ** (H - 1)
    keep = ~dead & ok
    return _Joined(
        bell=bell[keep],
        time_s=t_swap[keep],
        hop_time_s=T[keep],
        hop_bell=B[keep],
        cutoff_failures=int(dead.sum()),
        swap_failures=int((~dead & ~ok).sum()),
        unmatched=unmatched,
    )


def serve(
    net: QuantumNetwork,
    channels: Channels,
    requests: np.ndarray,
    generate: np.ndarray,
    round_s: float,
    rng: np.random.Generator,
) -> Stream:
    """Run the network for ``round_s`` seconds, serving ``requests`` (C, 3) fresh end-to-end pairs per channel and
    purpose (columns :data:`~ceas.scheduling.views.PURPOSES`) as they become available (module docstring).

    A link generates all round where a channel through it has ``generate`` (C,) set; elsewhere only until its
    requests are served (:meth:`~ceas.network.network.QuantumNetwork.advance`, ``stop_when_served``).
    """
    need = {p: np.asarray(requests)[:, PURPOSES.index(p)] for p in PRIORITY}
    multi = channels.multi.any()
    demands = []
    for p in PRIORITY:
        demands.append(StreamDemand(pairs=channels.link_demand(need[p], multi=False), purpose=p))
        if multi:
            demands.append(
                StreamDemand(pairs=channels.link_demand(need[p], multi=True), purpose="swap")
            )
    link_gen = channels.link_any(generate)
    on = link_gen | (np.sum([d.pairs for d in demands], axis=0) > 0)
    if on.any():
        net.set_generation(on, True)
    if (~on).any():
        net.set_generation(~on, False)
    rep = net.advance(round_s, demands, stop_when_served=~link_gen)
    per = 2 if multi else 1
    delivered, counts = {}, np.zeros(3, np.int64)
    swapped = 0
    for i, p in enumerate(PRIORITY):
        parts = _single_hop(channels, rep.deliveries[per * i])
        if multi:
            joined = _multi_hop(channels, rep.deliveries[per * i + 1], need[p], rng)
            for c, j in joined.items():
                parts[c] = (j.bell, j.time_s, j.hop_time_s, j.hop_bell)
                counts += (j.cutoff_failures, j.swap_failures, j.unmatched)
                swapped += j.time_s.size
        delivered[p] = EndToEnd(*(tuple(x[i] for x in parts) for i in range(4)))
    return Stream(
        delivered=delivered,
        generated=int(rep.generated.sum()),
        expired=int(rep.expired.sum()),
        evicted=int(rep.evicted.sum()),
        swapped=int(swapped),
        cutoff_failures=int(counts[0]),
        swap_failures=int(counts[1]),
        unmatched=int(counts[2]),
    )


_EMPTY: dict[int, tuple[np.ndarray, ...]] = {}


def _empty(H: int) -> tuple[np.ndarray, ...]:
    """(bell, time, hop time, hop bell) of a channel of H hops that received nothing (zero-size arrays, shared:
    most channels receive nothing in a round, and nothing can be written into a zero-size array)."""
    if H not in _EMPTY:
        _EMPTY[H] = (np.zeros((0, 4)), np.zeros(0), np.zeros((0, H)), np.zeros((0, H, 4)))
    return _EMPTY[H]


def _single_hop(channels: Channels, d: Delivery) -> list[tuple[np.ndarray, ...]]:
    """Per channel (bell, time, hop time, hop bell) of a single-hop delivery (empty for every other channel)."""
    parts = [_empty(h) for h in channels.n_hops.tolist()]
    links = d.link
    if links.size and np.all(links[1:] >= links[:-1]):
        # sorted by link (as Delivery.concatenate leaves it): each link's pairs are one slice, in the same order
        cut = (np.flatnonzero(links[1:] != links[:-1]) + 1).tolist()
        for lo, hi in zip([0, *cut], [*cut, links.size]):
            bell, time = d.bell[lo:hi], d.time_s[lo:hi]
            parts[int(channels.link_channel[links[lo]])] = (
                bell,
                time,
                time[:, None],
                bell[:, None, :],
            )
        return parts
    for link in np.unique(links):
        sel = links == link
        bell, time = d.bell[sel], d.time_s[sel]
        parts[int(channels.link_channel[link])] = (bell, time, time[:, None], bell[:, None, :])
    return parts


def _multi_hop(
    channels: Channels, d: Delivery, need: np.ndarray, rng: np.random.Generator
) -> dict[int, _Joined]:
    """Hand each link's swap pairs to its multi-hop channels in channel order, then join each channel's hops."""
    # d is sorted by link, then time: each link's pairs are one slice, in order of availability
    start = np.searchsorted(d.link, np.arange(channels.n_links + 1))
    cursor = start[:-1].copy()
    out = {}
    for c in np.flatnonzero(channels.multi & (need > 0)):
        times, bells = [], []
        for h in channels.hops[c]:
            lo = cursor[h]
            hi = min(lo + int(need[c]), start[h + 1])
            cursor[h] = hi
            times.append(d.time_s[lo:hi])
            bells.append(d.bell[lo:hi])
        out[int(c)] = join_hops(
            times,
            bells,
            channels.link_t_coh_s[list(channels.hops[c])],
            f_min=channels.f_min,
            swap_success=channels.swap_success,
            rng=rng,
        )
    return out
