r"""``ceas``: decoherence-aware scheduling by expected utility per pair (SPEC §5).

Every stored pair gets an *alternative value* -- what it is worth if no participant uses it now:

* a pair that will be past its cutoff at the next decision (age + tau > cutoff) can only be measured for key now,
  worth :math:`\kappa\,y` (y its key bits, :math:`\kappa` the link's price of a key bit) if it yields bits and the pool
  has room, else it is lost (:math:`-\lambda_w`);
* a pair that survives may also be kept, worth :math:`\gamma \max(s',\ \kappa y')` next round at its decayed
  visibility v' and yield y', where s' is its payload surplus then (for the nodes likely to take part).

A pair's payload *surplus* is what it saves over the alternative, a fresh on-demand pair:
:math:`s = u_k (v^2 - v_0^2) / D_k + c_k` -- the fidelity it costs against the latency it avoids -- with
:math:`u_k = \tau_k \phi_k / (v_{\phi,k}^2 Z)` the node's utility per unit v² and
:math:`c_k = \lambda_l / (m \tau\, \text{rate}_k)` the latency cost of one fresh pair. Node k's payload takes its
stored pairs with the largest positive :math:`s - \text{alternative}` and fresh pairs for the rest. So pairs near their
cutoff are used first (they have nothing else to be), fresher pairs are kept when they are worth more next round, and
old pairs are not forced into a payload they would spoil: use-before-expiry by expected utility.

Each ready node's plan -- payload by gain, verification from its cheapest pairs, tag key from near-cutoff conversions
then its cheapest bits then fresh pairs -- gives its score: expected utility (harmonic mean of v² over the payload)
minus the alternative value of the pairs it consumes and the latency cost of the fresh ones. m nodes with a positive
score take part: drawn without replacement with probability proportional to the score among the nodes the trust
test has not flagged (trust 1; flagged ones only if fewer than m remain) (``selection = "sample"``, the default), or
the m best (``"top"``). Without a trusted broker the drawn order is seated only while each new participant's
pairwise agreement keys with those seated pay an attempt (:func:`~ceas.scheduling.policies._common.seat`). Pairs
nobody takes are converted to key when they would otherwise expire (or when the pool is short of key and converting
now beats keeping), and links switch generation off when their node is unlikely to take part and their pool needs
no key, so pairs are not produced only to expire.

The key price :math:`\kappa` is the cheaper of a tag's share of the node's utility, :math:`u_k / \text{tag}_k`, and
the latency cost of distilling the bit from fresh pairs, while the pool holds fewer than ``key_reserve_rounds`` rounds
of tags; beyond that reserve, key is worth nothing extra.

In the broker a round has a deadline (``round_deadline``): a reply counts only if its fresh key and payload pairs
herald within τ, so a node's utility is weighted by that probability (Poisson with mean rate·τ) and a payload cut
short is waste. A tag's fresh key batch is sized to pay the tag with probability ``key_confidence``
(:func:`~ceas.network.qkd.pairs_for_bits`), and the links of nodes not taking part distil key as pairs herald
until their pool holds the reserve (``background_key``). The reduced MDP has none of these risks and switches them off.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np

from ceas._lazy import lazy_import
from ceas.network.qkd import pairs_for_bits
from ceas.network.werner import (
    bbm92_key_fraction,
    fidelity_at_age,
    fidelity_from_werner,
    werner_from_fidelity,
)
from ceas.scheduling.params import SchedulingParams
from ceas.scheduling.policies._common import (
    build_decision,
    eligible_nodes,
    frame,
    fresh_for_bits,
    seat,
    take_ranked,
    take_until,
)
from ceas.scheduling.registry import register_policy
from ceas.scheduling.reward import harmonic_mean_v2, utility_scale
from ceas.scheduling.views import Decision, InventoryView, NodeView

stats = lazy_import("scipy.stats")

__all__ = ["CeasPolicy"]

_EPS = 1e-9  # bits: absorbs rounding in pool levels (0.1 + 0.2 != 0.3)


def _pick_probability(
    potential: np.ndarray, fresh_score: np.ndarray, has_stock: np.ndarray, m: int
) -> np.ndarray:
    r"""Chance that each node is among the m picked at the next decision, given it then holds a stored pair.

    Node k (offering ``potential[k]`` when served from stock) loses its place to every node j whose all-fresh score
    already beats it, ``fresh_score[j] >= potential[k]``, and to every node j with more potential that also has stock
    (probability ``has_stock[j]``). The count of the latter is approximated by a binomial with their mean chance, so
    the whole computation is a few sorts: O(N log N). Shapes (N,).
    """
    n = potential.shape[0]
    fin = np.isfinite(potential)
    pot = np.where(fin, potential, -np.inf)
    fs = np.where(fin, fresh_score, -np.inf)
    h = np.where(fin, has_stock, 0.0)
    order = np.argsort(pot, kind="stable")
    sp = pot[order]
    cum_h = np.concatenate([[0.0], np.cumsum(h[order])])
    above = n - np.searchsorted(sp, pot, side="right")  # nodes with more potential
    s_above = cum_h[-1] - cum_h[n - above]
    order_f = np.argsort(fs, kind="stable")
    sf = fs[order_f]
    cum_hf = np.concatenate([[0.0], np.cumsum(h[order_f])])
    start = np.searchsorted(sf, pot, side="left")
    always = n - start - (fs >= pot)  # others whose fresh score beats k's potential
    s_always = cum_hf[-1] - cum_hf[start] - np.where(fs >= pot, h, 0.0)
    n_c = np.maximum(above - always, 0)
    mean = np.clip(s_above - s_always, 0.0, None)
    p_bar = np.clip(np.divide(mean, n_c, out=np.zeros(n), where=n_c > 0), 0.0, 1.0)
    free = m - 1 - always
    prob = np.where(free >= 0, stats.binom.cdf(np.maximum(free, 0), n_c, p_bar), 0.0)
    return np.where(fin, prob, 0.0)


def _completion_probability(pairs: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """P(at least ``pairs`` heralds in a round) with ``expected`` = rate·τ heralds on average, shape (N,).

    Heralds are geometric waits on the attempt grid with small p, so their count in τ is Poisson to O(p); no fresh
    pair needed means certainty.
    """
    need = np.asarray(pairs, dtype=float)
    return np.where(need > 0, stats.poisson.sf(need - 1.0, np.maximum(expected, 0.0)), 1.0)


def _safe_div(a: np.ndarray, b: np.ndarray, fill: float = 0.0) -> np.ndarray:
    b = np.asarray(b, dtype=float)
    ok = b > 0
    return np.where(ok, np.asarray(a, dtype=float) / np.where(ok, b, 1.0), fill)


@register_policy("ceas")
class CeasPolicy:
    """Decoherence-aware CEAS policy (see the module docstring for the rule).

    Parameters
    ----------
    params : SchedulingParams
        Uses ``participants``, ``round_s``, ``waste_penalty``, ``latency_penalty``, ``discount``,
        ``key_reserve_rounds``, ``convert_near_cutoff`` and ``generation_control``.
    """

    name = "ceas"

    def __init__(self, params: SchedulingParams) -> None:
        self.params = params

    def __call__(
        self, inventory: InventoryView, nodes: NodeView, rng: np.random.Generator
    ) -> Decision:
        fr = frame(inventory, nodes, self.params.round_s)
        groups = np.minimum(fr.pair_node, nodes.n_nodes - 1)
        nv = self._node_values(fr, inventory, nodes, groups)
        pv = self._pair_values(fr, inventory, nodes, groups, nv)
        plan = self._plans(fr, inventory, nodes, groups, nv, pv)
        part, seat_weights = self._select(plan.score, nodes, rng)
        decision = self._decide(fr, inventory, nodes, groups, nv, pv, plan, part)
        return decision if seat_weights is None else replace(decision, seat_weights=seat_weights)

    def _node_values(
        self, fr, inventory: InventoryView, nodes: NodeView, groups
    ) -> SimpleNamespace:
        """Node values: utility per unit v², latency cost per fresh pair, key price per bit, pick chance."""
        p = self.params
        m, tau = p.participants, p.round_s
        n = nodes.n_nodes
        mine = fr.usable
        d_pay = nodes.payload_pairs.astype(float)
        d_ver = nodes.verification_pairs
        scale = utility_scale(nodes.trust, nodes.phi, nodes.phi_visibility, np.sqrt(fr.v0sq), m)
        u = nodes.trust * nodes.phi / nodes.phi_visibility**2 / scale
        c_fresh = np.where(
            fr.rate > 0, p.latency_penalty / (m * tau * np.where(fr.rate > 0, fr.rate, 1.0)), np.inf
        )
        # the pool is short while below the reserve (capped by what the pool can hold)
        primary_cap = np.where(
            fr.has_link, inventory.key_capacity_bits[np.maximum(fr.primary, 0)], 0.0
        )
        target = np.minimum(p.key_reserve_rounds * nodes.tag_bits, primary_cap)
        short = fr.pool < target - _EPS
        # a key bit is worth what replacing it costs: distilling it from fresh pairs, or at most a tag's share of
        # the round's utility
        price = np.minimum(
            _safe_div(u, nodes.tag_bits, np.inf), _safe_div(c_fresh, fr.fresh_bits, np.inf)
        )
        price = np.where(fr.has_link & np.isfinite(price), price, 0.0)
        kappa_node = np.where(short & (nodes.tag_bits > 0), price, 0.0)
        # chance each node is picked at the next decision if it then holds a stored pair
        potential = np.where(d_pay > 0, u * fr.v0sq, u * nodes.phi_visibility**2)
        potential = np.where(fr.has_link, potential, -np.inf)
        fresh_score = potential - c_fresh * (d_pay + d_ver)
        survivors = np.bincount(groups[mine & ~fr.expiring], minlength=n)[:n]
        has_stock = 1.0 - np.exp(-(fr.rate * tau + survivors))
        pick = _pick_probability(potential, fresh_score, has_stock, m)
        return SimpleNamespace(
            u=u, c_fresh=c_fresh, target=target, price=price, kappa_node=kappa_node, pick=pick
        )

    def _pair_values(
        self, fr, inventory: InventoryView, nodes: NodeView, groups, nv: SimpleNamespace
    ) -> SimpleNamespace:
        """Per stored pair, its value outside a payload: convert now, keep for the next round, or lose it."""
        p = self.params
        tau, gamma, lam_w = p.round_s, p.discount, p.waste_penalty
        mine = fr.usable
        d_pay = nodes.payload_pairs.astype(float)
        u, c_fresh = nv.u, nv.c_fresh
        link = inventory.pair_link
        room = fr.room[link] > _EPS
        y = fr.pair_bits
        # key is worth kappa per bit only up to the shortage; it is filled first by pairs about to expire, then by
        # the oldest (they are worth least as payload). Further bits are worth nothing, but measuring a pair that
        # would expire still saves it from being wasted.
        on_primary = mine & (link == fr.primary[groups])
        shortage = np.where(
            on_primary & (nv.kappa_node[groups] > 0), nv.target[groups] - fr.pool[groups], 0.0
        )
        shortage_link = np.zeros(inventory.n_links)
        shortage_link[link[on_primary]] = shortage[on_primary]
        needed = take_until(
            link, fr.pair_v2 - 2.0 * fr.expiring, y, on_primary & (y > 0), shortage_link - _EPS
        )
        kappa = np.where(needed, nv.kappa_node[groups], 0.0)
        conv_now = np.where((y > 0) & room, kappa * y, -lam_w)
        f_next = fidelity_at_age(inventory.pair_fidelity, tau, inventory.t_coh_s[link])
        v2_next = werner_from_fidelity(f_next) ** 2
        raw = bbm92_key_fraction(inventory.pair_fidelity)
        y_next = _safe_div(y * bbm92_key_fraction(f_next), raw)
        # a pair's payload value is its saving over a fresh on-demand pair: fidelity lost vs latency avoided
        fresh_value = u * _safe_div(fr.v0sq, d_pay) - c_fresh
        surplus_next = u[groups] * _safe_div(v2_next, d_pay[groups]) - fresh_value[groups]
        conv_next = np.where((y_next > 0) & room, kappa * y_next, -lam_w)
        q = nv.pick[groups]
        keep_value = q * np.maximum(surplus_next, conv_next) + (1.0 - q) * conv_next
        keep = np.where(fr.expiring | ~mine, -np.inf, gamma * keep_value)
        # what a node's participation costs in stored pairs: their value to anything but its own later payload
        # (using its pair now rather than next round only brings the same use forward, at a better fidelity)
        alt_other = np.maximum(conv_now, np.where(fr.expiring | ~mine, -np.inf, gamma * conv_next))
        return SimpleNamespace(
            y=y,
            on_primary=on_primary,
            kappa=kappa,
            conv_now=conv_now,
            keep=keep,
            alt=np.maximum(conv_now, keep),
            alt_other=alt_other,
            fresh_value=fresh_value,
        )

    def _plans(
        self,
        fr,
        inventory: InventoryView,
        nodes: NodeView,
        groups,
        nv: SimpleNamespace,
        pv: SimpleNamespace,
    ) -> SimpleNamespace:
        """Each eligible node's plan as if it took part, and its score (expected utility less its costs)."""
        p = self.params
        tau = p.round_s
        n = nodes.n_nodes
        mine = fr.usable
        d_pay = nodes.payload_pairs.astype(float)
        d_ver = nodes.verification_pairs
        u, c_fresh, y, alt = nv.u, nv.c_fresh, pv.y, pv.alt
        ok = eligible_nodes(fr, nodes)
        gain = u[groups] * _safe_div(fr.pair_v2, d_pay[groups]) - pv.fresh_value[groups] - alt
        cand = mine & ok[groups]
        # a stored pair saves one fresh pair's latency whatever it serves, but only a payload pays for its lost
        # fidelity: verification (whose outcome does not depend on which pair) takes the oldest pairs cheaper than a
        # fresh one, the payload the rest with a strictly positive gain
        ver = take_ranked(groups, fr.pair_v2, cand & (alt < c_fresh[groups]), d_ver)
        pay = take_ranked(groups, -gain, cand & ~ver & (gain > _EPS), nodes.payload_pairs)
        n_pay = np.bincount(groups[pay], minlength=n)[:n]
        n_ver = np.bincount(groups[ver], minlength=n)[:n]
        fresh_pay = np.maximum(nodes.payload_pairs - n_pay, 0)
        fresh_ver = np.maximum(d_ver - n_ver, 0)
        convert = self._conversions(
            fr, inventory, ~(pay | ver) & mine, y, pv.kappa, pv.conv_now, pv.keep
        )
        conv_bits = np.bincount(groups[convert], weights=y[convert], minlength=n)[:n]
        deficit = np.maximum(nodes.tag_bits - fr.pool - conv_bits, 0.0)
        per_bit = _safe_div(alt, y, np.inf)
        cheap = per_bit < _safe_div(c_fresh, fr.fresh_bits, np.inf)[groups]
        key_stock = take_until(
            groups,
            per_bit,
            y,
            cand & pv.on_primary & ~(pay | ver | convert) & (y > 0) & cheap,
            deficit,
        )
        got = np.bincount(groups[key_stock], weights=y[key_stock], minlength=n)[:n]
        f_fresh = fidelity_from_werner(np.sqrt(fr.v0sq))
        fresh_key = pairs_for_bits(np.maximum(deficit - got, 0.0), f_fresh, p.key_confidence)
        key_ok = (deficit - got <= 1e-12) | (fr.fresh_bits > 0)
        fresh_total = fresh_pay + fresh_ver + fresh_key
        ok &= key_ok & ((fresh_total == 0) | (fr.rate > 0))

        inv_v2 = np.bincount(groups[pay], weights=1.0 / fr.pair_v2[pay], minlength=n)[:n]
        inv_v2 = inv_v2 + _safe_div(fresh_pay, fr.v0sq)
        v2 = np.where(
            d_pay > 0, harmonic_mean_v2(inv_v2, n_pay + fresh_pay), nodes.phi_visibility**2
        )
        used = pay | ver | key_stock
        lost = np.bincount(groups[used], weights=pv.alt_other[used], minlength=n)[:n]
        latency = np.where(fresh_total > 0, c_fresh * fresh_total, 0.0)
        # tags paid from the pool cost the bits that must be replaced before the node can pay its next tags
        before = fr.pool + conv_bits
        from_pool = np.minimum(nodes.tag_bits, before)
        below = np.clip(nodes.tag_bits - (before - from_pool), 0.0, from_pool)
        key_cost = nv.price * np.where(below > _EPS, below, 0.0)
        # a reply only counts if its tag key and payload arrive within the round (the broker serves key first): the
        # utility is expected, and a payload cut short wastes the pairs it did get
        p_done = (
            _completion_probability(fresh_pay + fresh_key, fr.rate * tau)
            if p.round_deadline
            else np.ones(n)
        )
        waste = p.waste_penalty * (1.0 - p_done) * np.minimum(fresh_pay, fr.rate * tau)
        score = np.where(ok, p_done * u * v2 - lost - latency - key_cost - waste, -np.inf)
        return SimpleNamespace(
            pay=pay,
            ver=ver,
            key_stock=key_stock,
            fresh_pay=fresh_pay,
            fresh_ver=fresh_ver,
            fresh_key=fresh_key,
            score=score,
        )

    def _select(
        self, score: np.ndarray, nodes: NodeView, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The participant mask (n,) -- m nodes by score, sampled or the top m -- and, for a sampled draw, the
        Plackett–Luce weights it was drawn with (n,) (0 = not eligible; None for the top m)."""
        m, n = self.params.participants, nodes.n_nodes
        if self.params.selection == "sample":
            # m nodes drawn without replacement with probability proportional to their (positive) score: the
            # Gumbel-top-k form of Plackett-Luce sampling. A node worth twice another is twice as likely to be drawn,
            # not certain to be: participation spreads over the nodes worth having (data coverage), and a node that
            # claims the most gains odds, not a seat in every round.
            positive = score > 0
            if np.any(nodes.work_s > 0):
                positive &= fastest_worth(score, nodes.work_s, m, self.params.round_s)
            # a node the trust test has flagged (trust below 1) is drawn only when fewer than m unflagged nodes are
            # worth a seat: otherwise a Byzantine node recovering trust would keep a chance in proportion to it
            unflagged = positive & (nodes.trust >= 1.0 - 1e-9)
            if int(unflagged.sum()) >= m:
                positive = unflagged
            keys = np.full(n, -np.inf)
            keys[positive] = np.log(score[positive]) + rng.gumbel(size=int(positive.sum()))
            ranked = np.lexsort((np.arange(n), -keys))
            # the drawn order, seated while the seats' pairwise agreement keys allow (trusted: the first m)
            drawn = seat(ranked[np.isfinite(keys[ranked])], m, nodes)
            # the draw weights tell the broker each seat's probability -- unless key-aware seating skipped nodes
            return drawn, (np.where(positive, score, 0.0) if nodes.pair_tags is None else None)
        else:
            if np.any(nodes.work_s > 0):
                score = np.where(fastest_worth(score, nodes.work_s, m, self.params.round_s), score, -np.inf)
            ranked = np.lexsort((np.arange(n), -score))
            return seat(ranked[score[ranked] > 0], m, nodes), None

    def _decide(
        self,
        fr,
        inventory: InventoryView,
        nodes: NodeView,
        groups,
        nv: SimpleNamespace,
        pv: SimpleNamespace,
        plan: SimpleNamespace,
        part: np.ndarray,
    ) -> Decision:
        """Participants keep their plan, everyone else's pairs may only be converted; generation and background key."""
        p = self.params
        tau, n = p.round_s, nodes.n_nodes
        mine = fr.usable
        y = pv.y
        keep_plan = mine & part[groups]
        pay = plan.pay & keep_plan
        ver = plan.ver & keep_plan
        key_stock = plan.key_stock & keep_plan
        convert = self._conversions(
            fr, inventory, ~(pay | ver | key_stock) & mine, y, pv.kappa, pv.conv_now, pv.keep
        )
        if p.generation_control:
            link_node = np.minimum(inventory.link_node, n - 1)
            valid = inventory.link_node < n
            # generate where a stored pair is likely used before its cutoff (saving a fresh pair's latency) more
            # than it is likely wasted, or where the pool needs key
            lifetime = np.floor(inventory.cutoff_s / tau + 1e-12) + 1.0
            q_life = 1.0 - (1.0 - nv.pick[link_node]) ** lifetime
            useful = q_life * nv.c_fresh[link_node] > (1.0 - q_life) * p.waste_penalty
            # A pair made now that cannot live until the next decision (cutoff < tau) can only serve this round's
            # requests, which the broker serves from fresh pairs anyway: generate only on request there.
            survives = inventory.cutoff_s >= tau
            generate = valid & survives & (useful | (nv.kappa_node[link_node] > 0))
        else:
            generate = np.ones(inventory.n_links, dtype=bool)
        background = None
        if p.background_key:
            # idle links top their pool up to the reserve with pairs measured as heralded (none can wait in memory
            # until the next decision), so a node is not priced out of a later round by its tag
            conv_idle = np.bincount(groups[convert], weights=y[convert], minlength=n)[:n]
            short_bits = np.where(part | ~fr.has_link, 0.0, nv.target - fr.pool - conv_idle)
            background = fresh_for_bits(np.maximum(short_bits, 0.0), fr.fresh_bits)
        masks = {"payload": pay, "verification": ver, "key": key_stock, "convert": convert}
        fresh = {"payload": plan.fresh_pay, "verification": plan.fresh_ver, "key": plan.fresh_key}
        return build_decision(inventory, nodes, fr, part, masks, fresh, generate, background)

    def _conversions(
        self,
        fr,
        inventory: InventoryView,
        free: np.ndarray,
        y: np.ndarray,
        kappa: np.ndarray,
        conv_now: np.ndarray,
        keep: np.ndarray,
    ) -> np.ndarray:
        """Free pairs measured for key now: those about to expire that still yield bits (use before expiry), and
        survivors whose bits are worth more now than keeping them; best yields first, up to the pool's room."""
        if not self.params.convert_near_cutoff:
            return np.zeros(y.shape[0], dtype=bool)
        want = free & (y > 0) & (fr.expiring | ((kappa > 0) & (conv_now > keep)))
        return take_until(inventory.pair_link, -y, y, want, fr.room - _EPS)


def fastest_worth(score: np.ndarray, work_s: np.ndarray, m: int, round_s: float) -> np.ndarray:
    """(N,) bool: the nodes a round whose length is set by its slowest participant should choose among.

    A synchronous round lasts max(τ, the slowest chosen node's ``work_s``). Among the nodes with a positive score,
    sorted by ``work_s``, the j fastest (j >= m, or all of them when fewer) give a round worth the sum of their m best
    scores per second of its length; the j with the most utility per second is kept (the largest on a tie). With equal
    scores that is the m fastest (and every node when no node's work outlasts τ); a slower node enters only when its
    score pays for the time it adds.
    """
    cand = np.flatnonzero(score > 0)
    keep = np.zeros(score.shape[0], bool)
    if cand.size <= m:
        keep[cand] = True
        return keep
    order = cand[np.lexsort((cand, work_s[cand]))]
    best_j, best = m, -np.inf
    for j in range(m, order.size + 1):
        top = np.sort(score[order[:j]])[-m:]
        value = top.sum() / max(round_s, float(work_s[order[j - 1]]))
        if value >= best:  # on a tie the larger set: more nodes to draw from (data coverage)
            best_j, best = j, value
    keep[order[:best_j]] = True
    return keep
