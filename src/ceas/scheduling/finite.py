r"""Exact solution of small binned instances: value iteration and exact policy evaluation (issue 5 acceptance).

The binned MDP (:mod:`ceas.scheduling.mdp`) factorises over links given the action: each link's next state depends
only on its own post-decision state, and the reward is a sum of per-link terms. Only the participant budget
:math:`|A_t| \le m` couples the links. :class:`FiniteMDP` uses this to stay exact at a small cost:

* per link, every state s (pairs per age bin, key level, readiness), every feasible per-link action, and the
  post-decision state y it leads to are enumerated once; actions reaching the same (y, participates) keep the best
  immediate reward (the others are dominated, as the future depends on y only);
* the expectation :math:`\bar V(y) = E[V(s') \mid y]` is a chain of per-link tensor contractions with the link's
  transition matrix :math:`P_l(s' \mid y)`;
* the maximisation over joint actions under the budget is done by variable elimination over links, carrying the
  number of participants still allowed:
  :math:`T_l(\dots, s_l, \dots, b) = \max_o r_l(s_l, o) + T_{l+1}(\dots, y_l(o), \dots, b - p_l(o))`.

Value iteration repeats the Bellman backup from V = 0 until the residual :math:`\max|TV - V|` falls below the
tolerance. Any policy registered in :mod:`ceas.scheduling.registry` is evaluated exactly on the same chain (its
decisions on every state, decoded by :meth:`~ceas.scheduling.mdp.SchedulingMDP.decode`), by iterating
:math:`V \leftarrow r^\pi + \gamma P^\pi V` to the same tolerance; randomised policies list their decisions through
``decision_distribution``, and a round-robin policy is evaluated on the state augmented with the round phase.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ceas._lazy import lazy_import
from ceas.errors import ProtocolError, ValidationError
from ceas.scheduling.mdp import MDPAction, MDPSpec, MDPState, SchedulingMDP

stats = lazy_import("scipy.stats")

__all__ = ["FiniteMDP", "PolicyValue", "ValueIterationResult"]


@dataclass(frozen=True)
class ValueIterationResult:
    """Outcome of :meth:`FiniteMDP.value_iteration`.

    Attributes
    ----------
    values : ndarray, shape (S_0, ..., S_{L-1})
        Optimal values V* per joint state.
    residual : float
        Bellman residual max|TV - V| of ``values``.
    iterations : int
        Backups performed.
    expected_return : float
        :math:`J^* = E_{s_0 \\sim \\mu_0} V^*(s_0)`, the optimal expected discounted reward from the initial state.
    """

    values: np.ndarray
    residual: float
    iterations: int
    expected_return: float


@dataclass(frozen=True)
class PolicyValue:
    """Exact value of one policy: ``values`` (phases, S_0, ..., S_{L-1}), the residual of the last sweep and
    ``expected_return`` J from the initial distribution at phase 0."""

    values: np.ndarray
    residual: float
    iterations: int
    expected_return: float


@dataclass
class _LinkTable:
    configs: np.ndarray  # (C, B) pair counts per age bin
    lookup: np.ndarray  # config code -> config index
    radix: int
    n_ready: int  # 1 (always ready) or 2
    state_config: np.ndarray  # (S,)
    state_key: np.ndarray
    state_ready: np.ndarray
    P: np.ndarray  # (Y, S) transition from post-decision state
    loss: np.ndarray  # (Y,) expected expired + evicted pairs
    opt_y: list[np.ndarray]  # per participation p in (0, 1): (S, O_p) post-decision index
    opt_r: list[np.ndarray]  # (S, O_p) expected reward, -inf padding
    opt_row: list[np.ndarray]  # (S, O_p) candidate row (for decoding), -1 padding
    candidates: MDPAction  # candidate per-link actions (rows)


def _keep_best(
    table: _LinkTable, st: np.ndarray, y: np.ndarray, reward: np.ndarray, part: np.ndarray
) -> None:
    """Keep the best candidate per (state, participates, post-decision state) in ``table.opt_*``."""
    order = np.lexsort((np.arange(st.shape[0]), -reward, y, part, st))
    keyed = np.stack([st[order], part[order], y[order]], axis=1)
    first = np.ones(order.shape[0], bool)
    first[1:] = (keyed[1:] != keyed[:-1]).any(axis=1)
    best = order[first]
    n_s = table.state_config.shape[0]
    for pv in (0, 1):
        rows = best[part[best] == pv]
        counts = np.bincount(st[rows], minlength=n_s)
        width = max(int(counts.max()) if counts.size else 0, 1)
        oy = np.zeros((n_s, width), dtype=np.int64)
        orr = np.full((n_s, width), -np.inf)
        orow = np.full((n_s, width), -1, dtype=np.int64)
        rows = rows[np.argsort(st[rows], kind="stable")]
        slot = np.arange(rows.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
        oy[st[rows], slot] = y[rows]
        orr[st[rows], slot] = reward[rows]
        orow[st[rows], slot] = rows
        table.opt_y.append(oy)
        table.opt_r.append(orr)
        table.opt_row.append(orow)


def _sub_vectors(c: np.ndarray, limit: int) -> np.ndarray:
    """All count vectors x with 0 <= x <= c elementwise and sum(x) <= limit, shape (K, len(c))."""
    grids = itertools.product(*(range(int(v) + 1) for v in c))
    out = np.array([g for g in grids if sum(g) <= limit], dtype=np.int64)
    return out.reshape(-1, c.shape[0])


class FiniteMDP:
    """Enumerated binned MDP for exact value iteration and policy evaluation.

    Parameters
    ----------
    spec : MDPSpec
        A small instance (a few links, slots, bins and key levels).
    max_states : int
        Refuse instances with more joint states than this (the solver's tensors scale with it).
    """

    def __init__(self, spec: MDPSpec, *, max_states: int = 2_000_000) -> None:
        self.spec = spec
        self.mdp = SchedulingMDP(spec)
        self.gamma = spec.params.discount
        self.m = spec.m
        self.budget = self.m < spec.n_links  # does |A| <= m bind?
        self.tables = [self._link_table(l) for l in range(spec.n_links)]
        self.shape = tuple(t.state_config.shape[0] for t in self.tables)
        n = int(np.prod(self.shape))
        if n > max_states:
            raise ValidationError(
                f"instance has {n} joint states, more than max_states = {max_states}"
            )
        self.n_states = n
        self.result: ValueIterationResult | None = None

    # ------------------------------------------------------------------------------------------- enumeration
    def _post_index(
        self, t: _LinkTable, remaining: np.ndarray, key: np.ndarray, gen: np.ndarray
    ) -> np.ndarray:
        code = (remaining * t.radix ** np.arange(remaining.shape[1])).sum(axis=1)
        return (t.lookup[code] * (self.spec.key_levels + 1) + key) * 2 + gen.astype(np.int64)

    def _link_values(
        self,
        t: _LinkTable,
        links: np.ndarray,
        counts: np.ndarray,
        key: np.ndarray,
        action: MDPAction,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Post-decision index and expected reward of per-link actions (rows)."""
        s = self.spec
        p = s.params
        post = self.mdp.post_decision(links, counts, key, action)
        y = self._post_index(t, post.remaining, post.key, post.generate)
        reward = (
            post.utility
            - p.waste_penalty * (post.wasted + t.loss[y])
            - p.latency_penalty * post.wait_s / (self.m * p.round_s)
        )
        return y, reward

    def _joint_values(self, state: MDPState, action: MDPAction) -> tuple[np.ndarray, np.ndarray]:
        """Per-link post-decision index and expected reward of a joint action, shapes (L,)."""
        p = self.spec.params
        links = np.arange(self.spec.n_links)
        post = self.mdp.post_decision(links, state.counts, state.key, action)
        y = np.array(
            [
                self._post_index(
                    t, post.remaining[l : l + 1], post.key[l : l + 1], post.generate[l : l + 1]
                )[0]
                for l, t in enumerate(self.tables)
            ]
        )
        loss = np.array([t.loss[y[l]] for l, t in enumerate(self.tables)])
        reward = (
            post.utility
            - p.waste_penalty * (post.wasted + loss)
            - p.latency_penalty * post.wait_s / (self.m * p.round_s)
        )
        return y, reward

    def _link_table(self, l: int) -> _LinkTable:
        """Link ``l``'s states, post-decision transitions and best candidate actions per (state, participation)."""
        s = self.spec
        configs, lookup, radix = self._link_configs(l)
        n_ready = 1 if s.ready_prob[l] >= 1.0 else 2
        grid = np.indices((configs.shape[0], s.key_levels + 1, n_ready)).reshape(3, -1)
        state_config, state_key = grid[0], grid[1]
        state_ready = grid[2].astype(bool) if n_ready == 2 else np.ones(grid.shape[1], bool)
        P, loss = self._link_transitions(l, configs, lookup, radix, n_ready, state_config.shape[0])
        st, action = self._link_candidates(l, configs, state_config, state_ready)
        table = _LinkTable(
            configs=configs,
            lookup=lookup,
            radix=radix,
            n_ready=n_ready,
            state_config=state_config,
            state_key=state_key,
            state_ready=state_ready,
            P=P,
            loss=loss,
            opt_y=[],
            opt_r=[],
            opt_row=[],
            candidates=action,
        )
        y, reward = self._link_values(
            table, np.full(st.shape[0], l), configs[state_config[st]], state_key[st], action
        )
        _keep_best(table, st, y, reward, action.participate.astype(np.int64))
        return table

    def _link_configs(self, l: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Every memory configuration of link ``l`` (pairs per age bin, (C, width)), its index lookup and radix."""
        s = self.spec
        b = s.width
        bins, slots = int(s.bins[l]), int(s.slots[l])
        radix = slots + 1
        configs = np.array(
            [
                c + (0,) * (b - bins)
                for c in itertools.product(range(radix), repeat=bins)
                if sum(c) <= slots
            ],
            dtype=np.int64,
        ).reshape(-1, b)
        lookup = np.full(radix**b, -1, dtype=np.int64)
        lookup[(configs * radix ** np.arange(b)).sum(axis=1)] = np.arange(configs.shape[0])
        return configs, lookup, radix

    def _link_transitions(
        self,
        l: int,
        configs: np.ndarray,
        lookup: np.ndarray,
        radix: int,
        n_ready: int,
        n_states: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Transition matrix from post-decision y = (remaining config, key, generate) to states, and pairs lost."""
        s = self.spec
        b, slots, k_levels = s.width, int(s.slots[l]), s.key_levels + 1
        bins = int(s.bins[l])
        n_c = configs.shape[0]
        ygrid = np.indices((n_c, k_levels, 2)).reshape(3, -1)
        y_conf, y_key, y_gen = ygrid
        n_arr = np.arange(slots + 1)
        lam = s.arrivals[l]
        pmf = stats.poisson.pmf(n_arr, lam)
        pmf[-1] = stats.poisson.sf(slots - 1, lam)
        n_y = y_conf.shape[0]
        rows_conf = np.repeat(configs[y_conf], slots + 1, axis=0)
        rows_n = np.tile(n_arr, n_y)
        rows_gen = np.repeat(y_gen, slots + 1).astype(bool)
        rows_p = np.where(rows_gen, np.tile(pmf, n_y), (rows_n == 0).astype(float))
        links = np.full(rows_conf.shape[0], l)
        nxt, _expired, _ = self.mdp.age_and_arrive(links, rows_conf, np.where(rows_gen, rows_n, 0))
        nxt_conf = lookup[(nxt * radix ** np.arange(b)).sum(axis=1)]
        rows_key = np.repeat(y_key, slots + 1)
        P = np.zeros((n_y, n_states))
        rp = s.ready_prob[l]
        ready_split = [(0, 1.0)] if n_ready == 1 else [(0, 1.0 - rp), (1, rp)]
        for r_idx, r_prob in ready_split:
            col = (nxt_conf * k_levels + rows_key) * n_ready + r_idx
            np.add.at(P, (np.repeat(np.arange(n_y), slots + 1), col), rows_p * r_prob)
        remaining = configs[y_conf]
        loss = remaining[:, bins - 1] + self.mdp.expected_evictions(
            np.full(n_y, l), remaining, y_gen.astype(bool)
        )
        return P, loss

    def _link_candidates(
        self, l: int, configs: np.ndarray, state_config: np.ndarray, state_ready: np.ndarray
    ) -> tuple[np.ndarray, MDPAction]:
        """Every candidate per-link action for every state: (state index per candidate, the candidates)."""
        s = self.spec
        b, slots = s.width, int(s.slots[l])
        cand = {"state": [], "part": [], "pay": [], "ver": [], "key": [], "gen": []}
        max_fresh_key = int(s.max_key_requests[l])
        for si in range(state_config.shape[0]):
            c = configs[state_config[si]]
            for part in (False, True) if state_ready[si] else (False,):
                pays = _sub_vectors(c, s.payload_pairs) if part else np.zeros((1, b), np.int64)
                for x in pays:
                    vers = (
                        _sub_vectors(c - x, s.verification_pairs)
                        if part
                        else np.zeros((1, b), np.int64)
                    )
                    for z in vers:
                        keys = _sub_vectors(c - x - z, slots)
                        for w in keys:
                            for f in range(max_fresh_key + 1):
                                for g in (False, True):
                                    cand["state"].append(si)
                                    cand["part"].append(part)
                                    cand["pay"].append(
                                        np.append(x, s.payload_pairs - x.sum() if part else 0)
                                    )
                                    cand["ver"].append(
                                        np.append(z, s.verification_pairs - z.sum() if part else 0)
                                    )
                                    cand["key"].append(np.append(w, f))
                                    cand["gen"].append(g)
        action = MDPAction(
            participate=np.array(cand["part"], bool),
            payload=np.array(cand["pay"], dtype=np.int64),
            verification=np.array(cand["ver"], dtype=np.int64),
            key=np.array(cand["key"], dtype=np.int64),
            generate=np.array(cand["gen"], bool),
        )
        return np.array(cand["state"]), action

    # ------------------------------------------------------------------------------------------- core operators
    def expect(self, values: np.ndarray) -> np.ndarray:
        """:math:`\\bar V(y) = E[V(s') \\mid y]` for every joint post-decision state, shape (Y_0, ..., Y_{L-1})."""
        out = values
        for l, t in enumerate(self.tables):
            out = np.moveaxis(np.tensordot(t.P, out, axes=([1], [l])), 0, l)
        return out

    def backup(self, values: np.ndarray) -> np.ndarray:
        """One Bellman optimality backup :math:`(TV)(s) = \\max_a r(s, a) + \\gamma E[V(s') \\mid s, a]`."""
        nb = self.m + 1 if self.budget else 1
        ev = self.gamma * self.expect(values)
        table = np.repeat(ev[..., None], nb, axis=-1)
        n_ax = table.ndim
        for l in reversed(range(len(self.tables))):
            t = self.tables[l]
            shifted = None
            if self.budget:
                pad = np.full(table.shape[:-1] + (1,), -np.inf)
                shifted = np.concatenate([pad, table[..., :-1]], axis=-1)
            shape = [1] * n_ax
            shape[l] = -1
            res = None
            for pv in (0, 1):
                src = table if (pv == 0 or not self.budget) else shifted
                oy, orr = t.opt_y[pv], t.opt_r[pv]
                for o in range(oy.shape[1]):
                    if not np.isfinite(orr[:, o]).any():
                        continue
                    cand = np.take(src, oy[:, o], axis=l)
                    cand += orr[:, o].reshape(shape)
                    res = cand if res is None else np.maximum(res, cand, out=res)
            table = res
        return table[..., -1]

    # ------------------------------------------------------------------------------------------- solving
    def initial_distribution(self) -> np.ndarray:
        """:math:`\\mu_0`: empty memories, pools at ``key_init``, readiness drawn; shape of the joint state space."""
        s = self.spec
        mu = np.ones(())
        for l, t in enumerate(self.tables):
            p = np.zeros(t.state_config.shape[0])
            empty = t.lookup[0]
            if t.n_ready == 1:
                p[(empty * (s.key_levels + 1) + s.key_init)] = 1.0
            else:
                base = (empty * (s.key_levels + 1) + s.key_init) * 2
                p[base] = 1.0 - s.ready_prob[l]
                p[base + 1] = s.ready_prob[l]
            mu = np.multiply.outer(mu, p)
        return mu

    def value_iteration(
        self, *, tol: float | None = None, max_iter: int | None = None
    ) -> ValueIterationResult:
        """Iterate :meth:`backup` from V = 0 until max|TV - V| < ``tol`` (default ``params.vi_tolerance``).

        Raises
        ------
        ProtocolError
            If the residual is still above ``tol`` after ``max_iter`` backups.
        """
        p = self.spec.params
        tol = p.vi_tolerance if tol is None else tol
        max_iter = p.vi_max_iterations if max_iter is None else max_iter
        values = np.zeros(self.shape)
        for it in range(1, max_iter + 1):
            new = self.backup(values)
            residual = float(np.max(np.abs(new - values)))
            values = new
            if residual < tol:
                break
        else:
            raise ProtocolError(
                f"value iteration did not reach residual {tol:g} in {max_iter} backups (last {residual:.3g})"
            )
        residual = float(np.max(np.abs(self.backup(values) - values)))
        j = float(np.sum(self.initial_distribution() * values))
        self.result = ValueIterationResult(values, residual, it, j)
        return self.result

    def _require_solved(self) -> ValueIterationResult:
        if self.result is None:
            raise ProtocolError("call value_iteration() before asking for optimal actions")
        return self.result

    # ------------------------------------------------------------------------------------------- states
    def state_index(self, state: MDPState) -> tuple[int, ...]:
        """Per-link state indices of a binned state."""
        s = self.spec
        out = []
        for l, t in enumerate(self.tables):
            code = int((state.counts[l] * t.radix ** np.arange(s.width)).sum())
            conf = int(t.lookup[code]) if code < t.lookup.shape[0] else -1
            if conf < 0:
                raise ValidationError(
                    f"link {l} holds {state.counts[l].tolist()}, not a state of this instance"
                )
            r_idx = int(bool(state.ready[l])) if t.n_ready == 2 else 0
            if t.n_ready == 1 and not state.ready[l]:
                raise ValidationError(
                    f"node {l} is never unready in this instance (ready_prob = 1)"
                )
            out.append((conf * (s.key_levels + 1) + int(state.key[l])) * t.n_ready + r_idx)
        return tuple(out)

    def state_at(self, index: tuple[int, ...], round_: int = 0) -> MDPState:
        """The binned state of per-link indices ``index``."""
        t = self.tables
        return MDPState(
            counts=np.stack([t[l].configs[t[l].state_config[i]] for l, i in enumerate(index)]),
            key=np.array([t[l].state_key[i] for l, i in enumerate(index)], dtype=np.int64),
            ready=np.array([t[l].state_ready[i] for l, i in enumerate(index)], dtype=bool),
            round=round_,
        )

    def optimal_action(self, state: MDPState) -> MDPAction:
        """A maximiser of the Bellman equation at ``state`` under the solved values (ties: first option)."""
        res = self._require_solved()
        ev = self.gamma * self.expect(res.values)
        idx = self.state_index(state)
        ys, rs, ps, rows = [], [], [], []
        for l, (t, si) in enumerate(zip(self.tables, idx)):
            y = np.concatenate([t.opt_y[0][si], t.opt_y[1][si]])
            r = np.concatenate([t.opt_r[0][si], t.opt_r[1][si]])
            pv = np.concatenate([np.zeros(t.opt_y[0].shape[1]), np.ones(t.opt_y[1].shape[1])])
            row = np.concatenate([t.opt_row[0][si], t.opt_row[1][si]])
            ok = np.isfinite(r)
            ys.append(y[ok])
            rs.append(r[ok])
            ps.append(pv[ok])
            rows.append(row[ok])
        q = ev[np.ix_(*ys)].copy()
        count = np.zeros(q.shape)
        for l in range(len(ys)):
            shape = [1] * len(ys)
            shape[l] = -1
            q += rs[l].reshape(shape)
            count = count + ps[l].reshape(shape)
        if self.budget:
            q[count > self.m] = -np.inf
        best = np.unravel_index(int(np.argmax(q)), q.shape)
        parts = {name: [] for name in ("participate", "payload", "verification", "key", "generate")}
        for l, o in enumerate(best):
            c = self.tables[l].candidates
            r = rows[l][o]
            for name, values in parts.items():
                values.append(np.asarray(getattr(c, name))[r])
        return MDPAction(**{k: np.array(v) for k, v in parts.items()})

    # ------------------------------------------------------------------------------------------- evaluation
    def evaluate(
        self,
        policy,
        *,
        phases: int = 1,
        seed: int = 0,
        tol: float | None = None,
        max_iter: int | None = None,
    ) -> PolicyValue:
        """Exact expected discounted reward of ``policy`` on this instance.

        Parameters
        ----------
        policy : Policy
            Called on :meth:`~ceas.scheduling.mdp.SchedulingMDP.views` of every joint state (and phase). A policy
            with ``decision_distribution`` is evaluated on its listed decisions; any other must be deterministic.
        phases : int
            Round phases to track (``nodes.round`` cycles through 0..phases-1); a round-robin over N nodes taking m
            per round needs N / gcd(N, m).
        seed : int
            Seed of the Generator handed to deterministic policies.

        Raises
        ------
        ValidationError
            If a decision is not executable, or a policy without ``decision_distribution`` is randomised.
        """
        p = self.spec.params
        tol = p.vi_tolerance if tol is None else tol
        max_iter = p.vi_max_iterations if max_iter is None else max_iter
        n, L = self.n_states, self.spec.n_links
        ys = [[] for _ in range(phases)]
        ws = [[] for _ in range(phases)]
        rewards = np.zeros((phases, n))
        name = getattr(policy, "name", type(policy).__name__)
        exact = hasattr(policy, "decision_distribution")
        for c in range(phases):
            for j, index in enumerate(np.ndindex(*self.shape)):
                state = self.state_at(index, c)
                inventory, nodes = self.mdp.views(state)
                if exact:
                    mix = policy.decision_distribution(inventory, nodes)
                else:
                    d = policy(inventory, nodes, np.random.default_rng(seed))
                    if j < 8 and d != policy(inventory, nodes, np.random.default_rng(seed + 1)):
                        raise ValidationError(
                            f"policy {name!r} is randomised; give it decision_distribution(inventory, nodes) "
                            "for exact evaluation"
                        )
                    mix = [(1.0, d)]
                y_row, w_row, r = [], [], 0.0
                for prob, decision in mix:
                    action = self.mdp.decode(state, decision, (inventory, nodes))
                    y_l, r_l = self._joint_values(state, action)
                    r += prob * float(r_l.sum())
                    y_row.append(y_l)
                    w_row.append(prob)
                rewards[c, j] = r
                ys[c].append(y_row)
                ws[c].append(w_row)
        width = max(len(row) for rows in ws for row in rows)
        y_arr = np.zeros((phases, n, width, L), dtype=np.int64)
        w_arr = np.zeros((phases, n, width))
        for c in range(phases):
            for j in range(n):
                k = len(ws[c][j])
                y_arr[c, j, :k] = ys[c][j]
                w_arr[c, j, :k] = ws[c][j]
        values = np.zeros((phases, n))
        for it in range(1, max_iter + 1):
            new = np.empty_like(values)
            for c in range(phases):
                ev = self.expect(values[(c + 1) % phases].reshape(self.shape))
                gathered = ev[tuple(y_arr[c, :, :, l] for l in range(L))]
                new[c] = rewards[c] + self.gamma * (w_arr[c] * gathered).sum(axis=1)
            residual = float(np.max(np.abs(new - values)))
            values = new
            if residual < tol:
                break
        else:
            raise ProtocolError(
                f"policy evaluation did not reach residual {tol:g} in {max_iter} sweeps"
            )
        j0 = float(np.sum(self.initial_distribution().ravel() * values[0]))
        return PolicyValue(values.reshape((phases,) + self.shape), residual, it, j0)
