r"""The CEAS scheduling MDP (Definition 3, SPEC §5) on a binned time grid: state, action, transition and reward.

One link per node (a star around the broker). Time advances in decision epochs of one round :math:`\tau`; a pair
stored for b rounds sits in age bin b and has fidelity :math:`F(b\tau)`. Link l keeps pairs in bins
:math:`0, \dots, B_l - 1` with :math:`B_l = \min(\text{age\_bins}, \lfloor a_{cut,l}/\tau \rfloor + 1)`: a pair that would
reach bin :math:`B_l` is past its cutoff and expires.

**State** :class:`MDPState`: pairs per link and age bin, key-pool level per link (in steps of ``key_step_bits``),
readiness per node, round index (the phase).

**Action** :class:`MDPAction`: participants (at most m, ready), and per link the stored pairs (by age bin) and fresh
on-demand pairs used as payload, as verification tests and for key; generation on/off.

**One round** (:meth:`SchedulingMDP.step`), in order:

1. The chosen pairs are consumed; fresh pairs are heralded on demand (the link's wait is ``n / rate_hz`` seconds).
2. Key pairs are measured (BBM92): a pair of age bin b adds :math:`q_{l,b} = \lfloor y(F)/\text{step} \rfloor`
   steps, up to the pool capacity K; pairs whose bits do not fit (or yield nothing) are wasted.
3. A participant is *served* when it got its full payload (``payload_pairs``) and verification (``verification_pairs``)
   and its pool pays ``tag_steps``; its learning utility enters the reward (:mod:`ceas.scheduling.reward`). An
   unserved participant's pairs are wasted.
4. Stored pairs age one bin; those past the cutoff expire.
5. A generating link heralds :math:`n \sim \text{Poisson}(\text{arrivals}_l)` new pairs (age bin 0). When the M slots
   overflow, the oldest pairs are evicted (a fresh pair is worth more), excess arrivals too.
6. Readiness is redrawn, :math:`\text{ready}_k \sim \text{Bernoulli}(\text{ready\_prob}_k)`.

Reward: :math:`r = U - \lambda_w (\text{wasted} + \text{expired} + \text{evicted}) - \lambda_l \ell / \tau` with
:math:`\ell = \frac1m \sum_l n^{\text{fresh}}_l / \text{rate}_l` the mean on-demand wait per participant slot.

The same vectorised functions serve the simulation (rows = links), the exact enumeration of
:class:`~ceas.scheduling.finite.FiniteMDP` (rows = candidate per-link actions) and the gymnasium env, so the three agree
by construction; the tests check the simulation's frequencies against the enumerated transition probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ceas.errors import ValidationError
from ceas.network.werner import (
    bbm92_key_fraction,
    cutoff_age,
    fidelity_at_age,
    werner_from_fidelity,
)
from ceas.scheduling.params import SchedulingParams

_MODEL_HAS_NO_DEADLINE = {
    "round_deadline": False,
    "key_confidence": 0.5,
    "background_key": False,
    "selection": "top",
}
"""Policy settings that match this model: fresh pairs always arrive (late), mean key yields (see MDPSpec.params)."""
from ceas._lazy import lazy_import
from ceas.scheduling.reward import harmonic_mean_v2, utility_scale
from ceas.scheduling.validate import validate_decision
from ceas.scheduling.views import Decision, InventoryView, NodeView

stats = lazy_import("scipy.stats")

__all__ = ["MDPAction", "MDPSpec", "MDPState", "PostDecision", "RoundOutcome", "SchedulingMDP"]


@dataclass(frozen=True, kw_only=True, eq=False)
class MDPSpec:
    """Parameters of one binned instance (L nodes, one link each).

    Parameters
    ----------
    f0, t_coh_s : (L,) float
        Fresh-pair fidelity and memory coherence time (s) per link.
    slots : (L,) int
        Memory slots M per link (>= 1).
    arrivals : (L,) float
        Mean pairs heralded per round while generating (> 0); also sets ``rate_hz = arrivals / round_s``.
    trust, phi : (L,) float
        Node trust in [0, 1] and stamp value φ at visibility 1 (>= 0).
    ready_prob : (L,) float
        Probability a node is ready in a round, in (0, 1].
    payload_pairs, verification_pairs : int
        Pairs per participant per round for the payload (>= 1) and for verification (>= 0).
    tag_steps : int
        Key steps a participant's tags cost per round (>= 0).
    key_step_bits : float
        Bits per key step (> 0).
    key_levels : int
        Pool capacity K in steps (>= tag_steps).
    key_init : int
        Initial pool level in steps (pre-shared seed key), in [0, K].
    f_min : float
        Fidelity at the usable-age cutoff (SPEC §4: 0.8).
    params : SchedulingParams
        m (participants), reward weights, round duration, discount, age_bins. This model serves fresh pairs on
        demand however long they take (the wait is a latency cost, step 1 below), its key yields are their mean,
        and it charges every fresh pair's wait, a non-participant's too, as latency. The ``ceas`` policy's hedges
        against the broker's synchronous round -- ``round_deadline``, the ``key_confidence`` margin and
        ``background_key`` -- guard against risks the model does not have, so they are switched off here (a policy
        evaluated on the model plans for the model); the broker's measurements cover them.
    """

    f0: np.ndarray
    t_coh_s: np.ndarray
    slots: np.ndarray
    arrivals: np.ndarray
    trust: np.ndarray
    phi: np.ndarray
    ready_prob: np.ndarray
    payload_pairs: int = 1
    verification_pairs: int = 0
    tag_steps: int = 1
    key_step_bits: float = 0.1
    key_levels: int = 3
    key_init: int = 3
    f_min: float = 0.8
    params: SchedulingParams = field(default_factory=SchedulingParams)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "params", self.params.model_copy(update=_MODEL_HAS_NO_DEADLINE))
        n = np.asarray(self.f0).shape[0]
        for name, dtype in (
            ("f0", float),
            ("t_coh_s", float),
            ("slots", np.int64),
            ("arrivals", float),
            ("trust", float),
            ("phi", float),
            ("ready_prob", float),
        ):
            arr = np.array(getattr(self, name), dtype=dtype).reshape(-1)
            if arr.shape[0] != n:
                raise ValidationError(
                    f"{name} must have one entry per link ({n}), got {arr.shape[0]}"
                )
            arr.setflags(write=False)
            set_(self, name, arr)
        checks = (
            ("f0", self.f0, (self.f0 > self.f_min) & (self.f0 <= 1), f"({self.f_min}, 1]"),
            ("t_coh_s", self.t_coh_s, self.t_coh_s > 0, "(0, inf)"),
            ("slots", self.slots, self.slots >= 1, "[1, inf)"),
            ("arrivals", self.arrivals, self.arrivals > 0, "(0, inf)"),
            ("trust", self.trust, (self.trust >= 0) & (self.trust <= 1), "[0, 1]"),
            ("phi", self.phi, self.phi >= 0, "[0, inf)"),
            (
                "ready_prob",
                self.ready_prob,
                (self.ready_prob > 0) & (self.ready_prob <= 1),
                "(0, 1]",
            ),
        )
        for name, arr, ok, interval in checks:
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                raise ValidationError(
                    f"{name} must be in {interval}, got {arr[i].item()!r} at link {i}"
                )
        ints = (
            ("payload_pairs", self.payload_pairs, 1),
            ("verification_pairs", self.verification_pairs, 0),
            ("tag_steps", self.tag_steps, 0),
            ("key_levels", self.key_levels, max(int(self.tag_steps), 0)),
            ("key_init", self.key_init, 0),
        )
        for name, value, lo in ints:
            if int(value) != value or value < lo:
                raise ValidationError(f"{name} must be an integer >= {lo}, got {value!r}")
        if self.key_init > self.key_levels:
            raise ValidationError(
                f"key_init must be in [0, key_levels = {self.key_levels}], got {self.key_init}"
            )
        if not self.key_step_bits > 0:
            raise ValidationError(f"key_step_bits must be > 0, got {self.key_step_bits!r}")

        tau = self.params.round_s
        cut = cutoff_age(self.f0, self.t_coh_s, f_min=self.f_min)
        natural = np.floor(cut / tau + 1e-12).astype(np.int64) + 1
        bins = np.minimum(natural, self.params.age_bins)
        width = int(bins.max())
        ages = np.arange(width) * tau
        fid = fidelity_at_age(self.f0[:, None], ages[None, :], self.t_coh_s[:, None])
        valid = np.arange(width)[None, :] < bins[:, None]
        v2 = np.where(valid, werner_from_fidelity(fid) ** 2, 1.0)
        steps = np.where(
            valid, np.floor(bbm92_key_fraction(fid) / self.key_step_bits + 1e-9), 0
        ).astype(np.int64)
        fresh_steps = np.floor(bbm92_key_fraction(self.f0) / self.key_step_bits + 1e-9).astype(
            np.int64
        )
        max_key_requests = np.where(
            fresh_steps > 0, -(-self.key_levels // np.maximum(fresh_steps, 1)), 0
        ).astype(np.int64)
        view_cutoff = np.where(natural > bins, (bins - 1) * tau, cut)
        derived = {
            "cutoff_s": view_cutoff,
            "bins": bins,
            "bin_fidelity": np.where(valid, fid, 0.25),
            "bin_v2": v2,
            "bin_steps": steps,
            "bin_valid": valid,
            "fresh_steps": fresh_steps,
            "fresh_v2": werner_from_fidelity(self.f0) ** 2,
            "rate_hz": self.arrivals / tau,
            "max_key_requests": max_key_requests,
        }
        for name, arr in derived.items():
            arr = np.asarray(arr)
            arr.setflags(write=False)
            set_(self, name, arr)
        set_(
            self,
            "scale",
            utility_scale(self.trust, self.phi, np.ones(n), np.sqrt(self.fresh_v2), self.m),
        )

    @property
    def n_links(self) -> int:
        """Number of links (= nodes) L."""
        return int(self.f0.shape[0])

    @property
    def width(self) -> int:
        """Number of age-bin columns B = max_l B_l."""
        return int(self.bins.max())

    @property
    def m(self) -> int:
        """Participant budget m (capped at L)."""
        return min(self.params.participants, self.n_links)


@dataclass(frozen=True, kw_only=True, eq=False)
class MDPState:
    """State of the binned MDP.

    Parameters
    ----------
    counts : (L, B) int
        Stored pairs per link and age bin (bin b = age b*tau).
    key : (L,) int
        Key-pool level per link, in key steps.
    ready : (L,) bool
        Readiness per node.
    round : int
        Round index (phase).
    """

    counts: np.ndarray
    key: np.ndarray
    ready: np.ndarray
    round: int = 0


@dataclass(frozen=True, kw_only=True, eq=False)
class MDPAction:
    """Action of the binned MDP. Column B of the (L, B+1) arrays counts fresh on-demand pairs.

    Parameters
    ----------
    participate : (L,) bool
        Participant set.
    payload, verification, key : (L, B+1) int
        Pairs per age bin (last column: fresh) used as payload, as verification tests and for key.
    generate : (L,) bool
        Generation on/off per link.
    """

    participate: np.ndarray
    payload: np.ndarray
    verification: np.ndarray
    key: np.ndarray
    generate: np.ndarray


@dataclass(frozen=True, kw_only=True, eq=False)
class PostDecision:
    """What one round's decision leaves and earns, before the random part of the transition (rows are links)."""

    remaining: np.ndarray  # (R, B) stored pairs left
    key: np.ndarray  # (R,) pool after key production and tag spending
    generate: np.ndarray  # (R,) bool
    served: np.ndarray  # (R,) bool
    utility: np.ndarray  # (R,) normalised learning utility
    wasted: (
        np.ndarray
    )  # (R,) pairs consumed without result (unserved payload, key that did not fit)
    wait_s: np.ndarray  # (R,) on-demand wait of the link, seconds
    consumed: np.ndarray  # (R, 3) pairs consumed as payload, verification, key (stored + fresh)
    fresh: np.ndarray  # (R,) fresh on-demand pairs heralded


@dataclass(frozen=True, kw_only=True, eq=False)
class RoundOutcome:
    """Everything one simulated round produced (counts are per link, shape (L,))."""

    reward: float
    utility: float
    latency_s: float
    served: np.ndarray
    consumed: np.ndarray  # (L, 3)
    wasted: np.ndarray
    expired: np.ndarray
    evicted: np.ndarray
    generated: np.ndarray  # stored arrivals + fresh on-demand pairs


def _take_within(requested: np.ndarray, available: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Clip per-column counts to what is available, then the running total to ``limit`` (rows broadcast)."""
    take = np.minimum(np.maximum(requested, 0), available)
    before = np.cumsum(take, axis=1) - take
    return np.clip(limit[:, None] - before, 0, take)


class SchedulingMDP:
    """The binned scheduling MDP: simulation, views for policies, and decoding of their decisions.

    Parameters
    ----------
    spec : MDPSpec
        The instance.
    """

    def __init__(self, spec: MDPSpec) -> None:
        self.spec = spec

    # ----------------------------------------------------------------------------------------------- state helpers
    def initial_state(self, rng: np.random.Generator) -> MDPState:
        """Empty memories, pools at ``key_init``, readiness drawn from ``ready_prob``."""
        s = self.spec
        return MDPState(
            counts=np.zeros((s.n_links, s.width), dtype=np.int64),
            key=np.full(s.n_links, s.key_init, dtype=np.int64),
            ready=rng.random(s.n_links) < s.ready_prob,
            round=0,
        )

    def empty_action(self) -> MDPAction:
        """Nobody participates, nothing is used, every link generates."""
        s = self.spec
        z = np.zeros((s.n_links, s.width + 1), dtype=np.int64)
        return MDPAction(
            participate=np.zeros(s.n_links, bool),
            payload=z,
            verification=z,
            key=z,
            generate=np.ones(s.n_links, bool),
        )

    # ------------------------------------------------------------------------------------------- transition parts
    def post_decision(
        self, links: np.ndarray, counts: np.ndarray, key: np.ndarray, action: MDPAction
    ) -> PostDecision:
        """Deterministic part of a round for rows ``links`` (steps 1-3 of the module docstring).

        The action must be feasible (see :meth:`clip`); rows are independent, so the participant budget is the
        caller's business.
        """
        s = self.spec
        b = s.width
        pay, ver, kuse = action.payload, action.verification, action.key
        remaining = counts - pay[:, :b] - ver[:, :b] - kuse[:, :b]
        fresh = pay[:, b] + ver[:, b] + kuse[:, b]

        # key production, best-yield pairs first (fresh, then bins young to old); bits beyond the pool are lost
        q = np.concatenate([s.fresh_steps[links][:, None], s.bin_steps[links]], axis=1)
        n = np.concatenate([kuse[:, b : b + 1], kuse[:, :b]], axis=1)
        room = s.key_levels - key
        before = np.cumsum(n * q, axis=1) - n * q
        left = np.maximum(room[:, None] - before, 0)
        fits = np.where(q > 0, np.minimum(-(-left // np.maximum(q, 1)), n), 0)
        key_wasted = (n - fits).sum(axis=1)
        pool = key + np.minimum(room, (n * q).sum(axis=1))

        n_pay = pay.sum(axis=1)
        n_ver = ver.sum(axis=1)
        part = action.participate.astype(bool)
        served = (
            part
            & (n_pay == s.payload_pairs)
            & (n_ver == s.verification_pairs)
            & (pool >= s.tag_steps)
        )
        pool = pool - np.where(served, s.tag_steps, 0)
        inv_v2 = (pay[:, :b] / s.bin_v2[links]).sum(axis=1) + pay[:, b] / s.fresh_v2[links]
        v2 = harmonic_mean_v2(inv_v2, n_pay)
        utility = np.where(served, s.trust[links] * s.phi[links] * v2 / s.scale, 0.0)
        wasted = key_wasted + np.where(part & ~served, n_pay + n_ver, 0)
        consumed = np.stack([n_pay, n_ver, kuse.sum(axis=1)], axis=1)
        return PostDecision(
            remaining=remaining,
            key=pool,
            generate=action.generate.astype(bool),
            served=served,
            utility=utility,
            wasted=wasted,
            wait_s=fresh / s.rate_hz[links],
            consumed=consumed,
            fresh=fresh,
        )

    def age_and_arrive(
        self, links: np.ndarray, remaining: np.ndarray, arrivals: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Steps 4-5 for rows ``links``: age one bin, expire, add ``arrivals`` fresh pairs, evict the oldest.

        Returns
        -------
        counts : (R, B) int
            Stored pairs at the next decision.
        expired, evicted : (R,) int
            Pairs past the cutoff; pairs pushed out of full memory (including excess arrivals).
        """
        s = self.spec
        aged = np.zeros_like(remaining)
        aged[:, 1:] = remaining[:, :-1]
        past = ~s.bin_valid[links]
        # pairs shifted past their link's last bin expire, including those pushed off the last column
        expired = np.where(past, aged, 0).sum(axis=1) + remaining[:, -1]
        aged = np.where(past, 0, aged)
        slots = s.slots[links]
        new = np.minimum(arrivals, slots)
        capacity = slots - new
        before = np.cumsum(aged, axis=1) - aged
        kept = np.clip(capacity[:, None] - before, 0, aged)
        evicted = (aged - kept).sum(axis=1) + (arrivals - new)
        kept[:, 0] += new
        return kept, expired, evicted

    def expected_evictions(
        self, links: np.ndarray, remaining: np.ndarray, generate: np.ndarray
    ) -> np.ndarray:
        r"""Expected evictions :math:`E[(n - f)^+] = \lambda - \sum_{j=1}^{f} P(n \ge j)` for Poisson n, f free slots."""
        s = self.spec
        aged_total = remaining.sum(axis=1) - np.where(
            np.arange(remaining.shape[1])[None, :] == (s.bins[links] - 1)[:, None], remaining, 0
        ).sum(axis=1)
        free = s.slots[links] - aged_total
        lam = s.arrivals[links]
        j = np.arange(1, int(s.slots.max()) + 1)
        tail = stats.poisson.sf(j[None, :] - 1, lam[:, None])  # P(n >= j)
        used = np.where(j[None, :] <= free[:, None], tail, 0.0).sum(axis=1)
        return np.where(generate, lam - used, 0.0)

    # ------------------------------------------------------------------------------------------------ simulation
    def clip(self, state: MDPState, action: MDPAction) -> MDPAction:
        """Make any action of the env's action space feasible.

        Participants must be ready and at most m (lowest link indices kept); stored pairs are taken per bin up to
        what is there, payload first, then verification, then key; payload and verification only for participants
        and at most their demand; fresh key pairs at most ``max_key_requests``.
        """
        s = self.spec
        b = s.width
        part = np.asarray(action.participate, bool) & state.ready
        part &= np.cumsum(part) <= s.m
        avail = np.where(s.bin_valid, state.counts, 0)
        big = np.iinfo(np.int64).max // 4
        out = {}
        for name, limit in (
            ("payload", np.where(part, s.payload_pairs, 0)),
            ("verification", np.where(part, s.verification_pairs, 0)),
            ("key", np.full(s.n_links, big)),
        ):
            req = np.asarray(getattr(action, name), dtype=np.int64)
            fresh_cap = limit if name != "key" else s.max_key_requests
            cols = np.concatenate([avail, fresh_cap[:, None]], axis=1)
            take = _take_within(req, cols, limit)
            avail = avail - take[:, :b]
            out[name] = take
        return MDPAction(participate=part, generate=np.asarray(action.generate, bool), **out)

    def step(
        self, state: MDPState, action: MDPAction, rng: np.random.Generator
    ) -> tuple[MDPState, RoundOutcome]:
        """Simulate one round from ``state`` under a feasible ``action`` (use :meth:`clip` for arbitrary ones)."""
        s = self.spec
        links = np.arange(s.n_links)
        post = self.post_decision(links, state.counts, state.key, action)
        arrivals = np.where(post.generate, rng.poisson(s.arrivals), 0)
        counts, expired, evicted = self.age_and_arrive(links, post.remaining, arrivals)
        ready = rng.random(s.n_links) < s.ready_prob
        latency = float(post.wait_s.sum() / s.m)
        utility = float(post.utility.sum())
        waste = post.wasted + expired + evicted
        p = s.params
        reward = (
            utility - p.waste_penalty * float(waste.sum()) - p.latency_penalty * latency / p.round_s
        )
        outcome = RoundOutcome(
            reward=reward,
            utility=utility,
            latency_s=latency,
            served=post.served,
            consumed=post.consumed,
            wasted=post.wasted,
            expired=expired,
            evicted=evicted,
            generated=arrivals + post.fresh,
        )
        return MDPState(counts=counts, key=post.key, ready=ready, round=state.round + 1), outcome

    # ---------------------------------------------------------------------------------------- views and decoding
    def _pair_layout(self, state: MDPState) -> tuple[np.ndarray, np.ndarray]:
        """Link and age bin of each stored pair; ids are positions, oldest first on each link (ids grow with age)."""
        s = self.spec
        b = s.width
        rev = state.counts[:, ::-1]
        link = np.repeat(np.repeat(np.arange(s.n_links), b), rev.ravel())
        bins = np.repeat(np.tile(np.arange(b - 1, -1, -1), s.n_links), rev.ravel())
        return link, bins

    def views(self, state: MDPState) -> tuple[InventoryView, NodeView]:
        """The broker's views of ``state``; pair key yields are the MDP's quantised ones."""
        s = self.spec
        link, bins = self._pair_layout(state)
        tau = s.params.round_s
        inventory = InventoryView(
            link_node=np.arange(s.n_links),
            f0=s.f0,
            t_coh_s=s.t_coh_s,
            cutoff_s=s.cutoff_s,
            rate_hz=s.rate_hz,
            slots=s.slots,
            key_bits=state.key * s.key_step_bits,
            key_capacity_bits=np.full(s.n_links, s.key_levels * s.key_step_bits),
            pair_id=np.arange(link.shape[0]),
            pair_link=link,
            pair_age_s=bins * tau,
            pair_fidelity=s.bin_fidelity[link, bins],
            pair_key_bits=s.bin_steps[link, bins] * s.key_step_bits,
            fresh_key_bits=s.fresh_steps * s.key_step_bits,
            time_s=state.round * tau,
        )
        nodes = NodeView(
            ready=state.ready,
            trust=s.trust,
            phi=s.phi,
            phi_visibility=np.ones(s.n_links),
            payload_pairs=np.full(s.n_links, s.payload_pairs),
            verification_pairs=np.full(s.n_links, s.verification_pairs),
            tag_bits=np.full(s.n_links, s.tag_steps * s.key_step_bits),
            round=state.round,
        )
        return inventory, nodes

    def decode(
        self,
        state: MDPState,
        decision: Decision,
        views: tuple[InventoryView, NodeView] | None = None,
    ) -> MDPAction:
        """The :class:`MDPAction` of a policy's ``decision`` on :meth:`views` of ``state`` (validated first).

        Key distillation and near-cutoff conversion are the same measurement here, so both land in ``key``.
        ``views`` may pass the result of :meth:`views` for ``state`` to save rebuilding it.

        Raises
        ------
        ValidationError
            If the decision is not executable (see :func:`~ceas.scheduling.validate.validate_decision`) or asks for
            purification, which the binned MDP does not model.
        """
        s = self.spec
        inventory, nodes = self.views(state) if views is None else views
        validate_decision(decision, inventory, nodes, max_participants=s.m)
        if decision.purify.shape[0]:
            raise ValidationError(
                f"the binned MDP does not model purification; the decision asks to purify "
                f"{decision.purify.shape[0]} pair(s)"
            )
        link, bins = self._pair_layout(state)
        b = s.width

        def counts(ids: np.ndarray, column: int) -> np.ndarray:
            out = np.zeros((s.n_links, b + 1), dtype=np.int64)
            np.add.at(out, (link[ids], bins[ids]), 1)
            out[:, b] = decision.requests[:, column]
            return out

        participate = np.zeros(s.n_links, bool)
        participate[decision.participants] = True
        return MDPAction(
            participate=participate,
            payload=counts(decision.payload, 0),
            verification=counts(decision.verification, 1),
            key=counts(np.concatenate([decision.key, decision.convert]), 2),
            generate=decision.generate.copy(),
        )

    def encode(self, state: MDPState, action: MDPAction) -> Decision:
        """A :class:`Decision` on :meth:`views` of ``state`` that :meth:`decode` maps back to ``action``.

        Within a bin the oldest ids are taken first (all pairs of a bin are alike).
        """
        s = self.spec
        b = s.width
        _link, _bins = self._pair_layout(state)
        taken = {}
        cursor = np.zeros((s.n_links, b), dtype=np.int64)
        # position of the first pair of each (link, bin) in the id order
        first = np.zeros((s.n_links, b), dtype=np.int64)
        flat_first = np.cumsum(state.counts[:, ::-1].ravel()) - state.counts[:, ::-1].ravel()
        first[:, ::-1] = flat_first.reshape(s.n_links, b)
        for name in ("payload", "verification", "key"):
            n = np.asarray(getattr(action, name))[:, :b]
            l_idx, b_idx = np.nonzero(n)
            reps = n[l_idx, b_idx]
            starts = first[l_idx, b_idx] + cursor[l_idx, b_idx]
            offs = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
            taken[name] = np.repeat(starts, reps) + offs
            cursor[l_idx, b_idx] += reps
        requests = np.stack(
            [action.payload[:, b], action.verification[:, b], action.key[:, b]], axis=1
        )
        return Decision(
            participants=np.flatnonzero(action.participate),
            payload=taken["payload"],
            verification=taken["verification"],
            key=taken["key"],
            requests=requests,
            generate=np.asarray(action.generate, bool),
        )


def example_spec(
    n_nodes: int = 4, *, seed: int = 0, params: SchedulingParams | None = None
) -> MDPSpec:
    """A small heterogeneous instance (for the gymnasium env and examples), drawn from ``seed``.

    Memories are scaled up so pairs live a few rounds: at the SPEC's coherence times (0.05-1 s) and tau = 1 s every
    cutoff is shorter than a round, so no pair would survive to a later decision and the MDP would have one age bin.
    Here T ~ log-uniform [5, 20] s (2-4 age bins), 0.3-1.5 pairs per round, M = 2-4 slots, trust and φ in
    [0.5, 1], readiness 0.9, one payload pair per participant, tags of 2 steps of 0.1 bit, pools of 4 steps, and
    m = max(1, n_nodes // 4).
    """
    rng = np.random.default_rng(seed)
    if params is None:
        params = SchedulingParams(
            participants=max(1, n_nodes // 4), waste_penalty=0.05, latency_penalty=0.2
        )
    return MDPSpec(
        f0=np.full(n_nodes, 0.95),
        t_coh_s=np.exp(rng.uniform(np.log(5.0), np.log(20.0), n_nodes)),
        slots=rng.integers(2, 5, n_nodes),
        arrivals=rng.uniform(0.3, 1.5, n_nodes),
        trust=rng.uniform(0.5, 1.0, n_nodes),
        phi=rng.uniform(0.5, 1.0, n_nodes),
        ready_prob=np.full(n_nodes, 0.9),
        payload_pairs=1,
        verification_pairs=0,
        tag_steps=2,
        key_step_bits=0.1,
        key_levels=4,
        key_init=4,
        params=params,
    )
