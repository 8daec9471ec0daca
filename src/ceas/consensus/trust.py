r"""Per-node trust: an exponential moving average of each node's agreement with the round's aggregate (SPEC §3).

After each aggregation every participant k gets an agreement score :math:`a_k \in [0, 1]` and its trust moves
towards it, :math:`s_k \leftarrow (1-\rho) s_k + \rho a_k`; non-participants keep their trust. A reply that was
rejected (bad tag, replay, malformed) counts as :math:`a_k = 0` (:meth:`TrustTracker.penalize`). The scores go up to
the scheduler (:meth:`TrustTracker.snapshot`), whose reward weighs each node's φ by its trust (SPEC §5).

Agreement metrics
-----------------
``cosine``
    :math:`a_k = \max(0, \cos\angle(g_k, \hat g))`: direction only, so honest nodes with noisy but aligned
    gradients score high and sign-flipped or orthogonal ones score 0.
``distance``
    :math:`a_k = \min(1, \tilde d / d_k)` with :math:`d_k = \lVert g_k - \hat g\rVert` and :math:`\tilde d`
    the round's median distance: full agreement within the typical (honest-majority) spread, 1/10 at ten times
    it; scale-free.
``evidence`` (noise-aware, scale-free; CEAS default)
    Not an agreement with the (possibly corrupted) aggregate but a sequential outlier test. Each round, participant
    k gets three robust z-scores against the round's participants (median and MAD, so the honest majority's spread
    sets the scale, whatever its size), each signed so that negative is suspicious:

    * direction: :math:`z^{dir}_k` of :math:`c_k = \cos\angle(g_k, \hat r)`, the cosine with a reference direction
      (an EMA of the aggregates, ``reference_decay``), negative when k pulls against the consensus;
    * spread: minus :math:`z` of :math:`\log \lVert u_k - \tilde u\rVert`, with :math:`u_k = g_k/\lVert g_k\rVert`
      and :math:`\tilde u` the coordinate-wise median of the :math:`u`, negative when k points elsewhere than the
      bulk in any direction;
    * norm: minus :math:`z` of :math:`\log\lVert g_k\rVert`, negative when k is larger than the round's typical
      update (the lever of scaled and adaptive attacks).

    The first two are invariant to a node's own scale: an honest node whose QPU noise shrinks its gradient by
    :math:`a_k` and whose payload noise is proportional to its own scale (``broker.payload_scale = "node"``) gets
    the same direction and spread scores whatever :math:`a_k`. What a scale-invariant statistic cannot remove --
    a persistently lower signal-to-noise ratio (worse link, more shot noise) or a persistently smaller norm -- is a
    moderate, persistent offset of an honest node's mean z (measured: per-node means with sd 0.4-0.9, correlated
    with :math:`p_k`). The accumulation therefore tolerates it:

    * each round's z is clipped to :math:`[-c, c]` (``clip``; Huber-type bounded influence: one heavy-tailed round,
      measured 1 % quantiles of -4 to -16, cannot flag a node by itself);
    * an allowance :math:`\delta` (``allowance``; the reference value of a CUSUM chart) can be added, so a node
      whose mean z stays above :math:`-\delta` accumulates positive evidence whatever its persistent offset. Its
      default is 0: a Byzantine group that the schedule keeps picking inflates the round's MAD and sits at
      z ≈ −1, exactly where heterogeneous honest nodes sit, and any :math:`\delta \ge 0.25` let it through
      (measurements in docs/security.md).

    Evidence ages by rounds, not by participations, with forgetting :math:`\lambda = 1-\rho` per round for every
    node: :math:`S_k \leftarrow \lambda S_k + [k \in A_t](\operatorname{clip}(z_k, -c, c) + \delta)`,
    :math:`W_k \leftarrow \lambda^2 W_k + [k \in A_t]` (an exponentially weighted Stouffer sum), and
    :math:`Z_k = S_k/\sqrt{\max(W_k, 1)}`, which is N(0, 1) for a participant whose z-scores are. Trust is
    :math:`\prod_{j} \min(1, \Phi(Z^{j}_k)/\alpha)` over the three tests, times a rejection factor that
    :meth:`TrustTracker.penalize` lowers by :math:`\lambda` and an accepted reply moves back towards 1. A node the
    scheduler stops picking keeps :math:`Z` for about two rounds, then, once less than one observation's weight is
    left, its evidence fades by :math:`\lambda` per round: trust is not an absorbing state (a flagged node is never
    scheduled, so evidence that only moved with participations froze honest nodes at trust 0 for good), and a
    persistent deviant that is picked again is flagged again within a few participations. A node persistently
    :math:`\Delta > \delta` beyond the round's median reaches :math:`Z \approx -(\Delta - \delta)
    \sqrt{(1+\lambda)/(1-\lambda)}` (3 (Δ − δ) at ρ = 0.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ceas._lazy import lazy_import
from ceas._validate import check_array, check_int, check_real
from ceas.errors import ProtocolError, ValidationError

stats = lazy_import("scipy.stats")

__all__ = [
    "EVIDENCE_TESTS",
    "TRUST_METRICS",
    "TrustScores",
    "TrustTracker",
    "agreement_scores",
    "evidence_scores",
]

TRUST_METRICS = ("cosine", "distance", "evidence")
EVIDENCE_TESTS = ("direction", "spread", "norm")  # columns of evidence_scores
_MAD_TO_SD = 1.4826  # MAD of a normal sample / its standard deviation


def agreement_scores(
    updates: np.ndarray, aggregate: np.ndarray, metric: Literal["cosine", "distance"] = "cosine"
) -> np.ndarray:
    """Agreement of each update with the aggregate, in [0, 1] (vectorised over updates).

    Parameters
    ----------
    updates : ndarray (n, d)
        Participants' updates, gradient units.
    aggregate : ndarray (d,)
        The round's aggregate.
    metric : {"cosine", "distance"}
        See the module docstring.

    Returns
    -------
    ndarray (n,)
        Scores in [0, 1]. A zero update scores 0 under ``cosine`` (it says nothing); when every update equals the
        aggregate, ``distance`` gives all 1.
    """
    x = check_array("updates", updates, ndim=2)
    g = check_array("aggregate", aggregate, ndim=1)
    if g.shape[0] != x.shape[1]:
        raise ValidationError(
            f"aggregate must have shape ({x.shape[1]},) to match updates, got {g.shape}"
        )
    if metric == "cosine":
        tiny = np.finfo(float).tiny
        norms = np.linalg.norm(x, axis=1) * np.linalg.norm(g)
        cos = (x @ g) / np.maximum(norms, tiny)
        return np.clip(cos, 0.0, 1.0)
    if metric == "distance":
        dist = np.linalg.norm(x - g, axis=1)
        scale = float(np.median(dist)) if dist.size else 0.0
        if (
            scale <= 0.0
        ):  # at least half sit on the aggregate: they agree fully, the others not at all
            return (dist == 0).astype(float)
        return np.minimum(1.0, scale / np.maximum(dist, np.finfo(float).tiny))
    raise ValidationError(f"metric must be one of {', '.join(TRUST_METRICS)}, got {metric!r}")


def _robust_z(v: np.ndarray) -> np.ndarray:
    """(v - median) / (1.4826 MAD); all zeros when the MAD is 0 (no spread to judge against)."""
    centred = v - np.median(v)
    mad = _MAD_TO_SD * float(np.median(np.abs(centred)))
    return centred / mad if mad > 0 else np.zeros_like(v)


def evidence_scores(updates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-participant robust z-scores of one round (the ``evidence`` metric), negative = suspicious.

    Parameters
    ----------
    updates : ndarray (n, d)
        The round's participant updates, gradient units.
    reference : ndarray (d,)
        Reference direction (any scale; zero means "no direction", giving 0 for the direction score).

    Returns
    -------
    ndarray (n, 3)
        Column 0 (direction): robust z of the cosine with ``reference`` (negative = against it; a zero update has
        cosine 0). Column 1 (spread): minus the robust z of the log distance of the unit update to the
        coordinate-wise median of the unit updates (negative = pointing elsewhere than the bulk). Column 2 (norm):
        minus the robust z of the log norm (negative = larger than typical). Columns 0 and 1 do not change when a
        row is multiplied by a positive number. All zeros for n < 3, where no majority defines a spread.
    """
    x = check_array("updates", updates, ndim=2)
    r = check_array("reference", reference, ndim=1)
    if r.shape[0] != x.shape[1]:
        raise ValidationError(
            f"reference must have shape ({x.shape[1]},) to match updates, got {r.shape}"
        )
    n = x.shape[0]
    z = np.zeros((n, len(EVIDENCE_TESTS)))
    if n < 3:
        return z
    norms = np.linalg.norm(x, axis=1)
    unit = np.divide(x, norms[:, None], out=np.zeros_like(x), where=norms[:, None] > 0)
    r_norm = float(np.linalg.norm(r))
    if r_norm > 0:
        z[:, 0] = _robust_z(unit @ (r / r_norm))
    z[:, 1] = -_robust_log_z(np.linalg.norm(unit - np.median(unit, axis=0), axis=1))
    z[:, 2] = -_robust_log_z(norms)
    return z


def _robust_log_z(v: np.ndarray) -> np.ndarray:
    """Robust z of log v for v >= 0; zeros (log 0) are floored far inside the spread, all zeros if the median is 0."""
    scale = float(np.median(v))
    if scale <= 0:
        return np.zeros_like(v)
    return _robust_z(np.log(np.maximum(v, 1e-12 * scale)))


@dataclass(frozen=True)
class TrustScores:
    """The up-signal to the scheduler: every node's trust after round ``round``.

    Attributes
    ----------
    round : int
    scores : ndarray (N,)
        Trust in [0, 1] per node id (read-only).
    """

    round: int
    scores: np.ndarray


class TrustTracker:
    """Per-node trust: an EMA of agreement with the aggregate, or sequential outlier evidence (``evidence``).

    Parameters
    ----------
    rate : float
        EMA rate ρ in (0, 1]; trust reflects roughly the last 1/ρ participations.
    metric : {"cosine", "distance", "evidence"}
        Agreement metric (see :func:`agreement_scores`) or the evidence test (module docstring).
    initial : float
        Trust of a node never seen, in [0, 1].
    alpha : float
        ``evidence`` only: one-sided level in (0, 0.5] below which accumulated evidence lowers trust.
    reference_decay : float
        ``evidence`` only: the reference direction is ``decay * previous + (1 - decay) * aggregate``, in [0, 1).
    allowance : float
        ``evidence`` only: δ >= 0 added to every clipped z-score, in robust-sd units: the persistent mean offset a
        node may have on each test without losing trust (0 by default, see the module docstring).
    clip : float
        ``evidence`` only: c > 0, each round's z-score is clipped to [-c, c] before it is accumulated.

    Attributes
    ----------
    scores_ : ndarray (N,)
        Learned state: current trust per node; exists after :meth:`reset`.

    Examples
    --------
    >>> t = TrustTracker(rate=0.5).reset(3)
    >>> t.update([0, 2], np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([1.0, 0.0])).tolist()
    [1.0, 0.0]
    >>> t.scores_.tolist()
    [1.0, 1.0, 0.5]
    """

    def __init__(
        self,
        rate: float = 0.2,
        metric: Literal["cosine", "distance"] = "cosine",
        initial: float = 1.0,
        alpha: float = 0.05,
        reference_decay: float = 0.5,
        allowance: float = 0.0,
        clip: float = 3.0,
    ) -> None:
        self.rate = check_real("rate", rate, low=0.0, high=1.0, low_open=True)
        if metric not in TRUST_METRICS:
            raise ValidationError(
                f"metric must be one of {', '.join(TRUST_METRICS)}, got {metric!r}"
            )
        self.metric = metric
        self.initial = check_real("initial", initial, low=0.0, high=1.0)
        self.alpha = check_real("alpha", alpha, low=0.0, high=0.5, low_open=True)
        self.reference_decay = check_real("reference_decay", reference_decay, low=0.0, high=1.0)
        if self.reference_decay >= 1.0:
            raise ValidationError(f"reference_decay must be < 1, got {reference_decay}")
        self.allowance = check_real("allowance", allowance, low=0.0)
        self.clip = check_real("clip", clip, low=0.0, low_open=True)

    # -- learned state --------------------------------------------------------------------------------------
    def reset(self, n_nodes: int) -> TrustTracker:
        """Start every one of ``n_nodes`` nodes at the initial trust; returns self."""
        n_nodes = check_int("n_nodes", n_nodes, low=1)
        self.scores_ = np.full(n_nodes, self.initial)
        if self.metric == "evidence":
            self.evidence_ = np.zeros((n_nodes, len(EVIDENCE_TESTS)))  # weighted sums of shifted z
            self.evidence_weight_ = np.zeros(n_nodes)  # their weights, sum of lambda^(2j)
            self.acceptance_ = np.full(n_nodes, self.initial)  # rejection factor (penalize)
            self.reference_: np.ndarray | None = None
        return self

    def _evidence_trust(self) -> None:
        # less than one observation's weight left (an idle node): the sum itself, fading by lambda per round
        z = self.evidence_ / np.sqrt(np.maximum(self.evidence_weight_, 1.0))[:, None]
        level = np.minimum(1.0, stats.norm.cdf(z) / self.alpha).prod(axis=1)
        self.scores_ = np.clip(self.acceptance_ * level, 0.0, 1.0)

    def _scores(self, method: str) -> np.ndarray:
        try:
            return self.scores_
        except AttributeError:
            raise ProtocolError(
                f"TrustTracker.{method}() needs learned state: call reset(n_nodes) first"
            ) from None

    def _nodes(self, nodes: Any, method: str) -> np.ndarray:
        scores = self._scores(method)
        idx = np.asarray(nodes)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise ValidationError(
                f"nodes must be a 1-D sequence of integer node ids, got {nodes!r:.60}"
            )
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= scores.size):
            raise ValidationError(
                f"nodes must be ids in [0, {scores.size - 1}], got {idx[(idx < 0) | (idx >= scores.size)][:3].tolist()}"
            )
        if np.unique(idx).size != idx.size:
            raise ValidationError(f"nodes must be distinct, got {idx.tolist()}")
        return idx

    # -- updates ----------------------------------------------------------------------------------------------
    def update(self, nodes: Any, updates: np.ndarray, aggregate: np.ndarray) -> np.ndarray:
        """Move the trust of ``nodes`` towards their agreement with ``aggregate``.

        Parameters
        ----------
        nodes : sequence of int (n,)
            Distinct node ids, one per row of ``updates``.
        updates : ndarray (n, d)
            Their updates this round.
        aggregate : ndarray (d,)
            The round's aggregate.

        Returns
        -------
        ndarray (n,)
            The agreement scores used.
        """
        idx = self._nodes(nodes, "update")
        if self.metric == "evidence":
            return self._update_evidence(idx, updates, aggregate)
        a = agreement_scores(updates, aggregate, self.metric)
        if a.shape != idx.shape:
            raise ValidationError(f"updates must have one row per node ({idx.size}), got {a.size}")
        self.scores_[idx] = (1.0 - self.rate) * self.scores_[idx] + self.rate * a
        return a

    def _update_evidence(
        self, idx: np.ndarray, updates: np.ndarray, aggregate: np.ndarray
    ) -> np.ndarray:
        g = check_array("aggregate", aggregate, ndim=1)
        ref = (
            g
            if self.reference_ is None
            else self.reference_decay * self.reference_ + (1.0 - self.reference_decay) * g
        )
        z = evidence_scores(updates, ref)
        if z.shape[0] != idx.size:
            raise ValidationError(
                f"updates must have one row per node ({idx.size}), got {z.shape[0]}"
            )
        lam = 1.0 - self.rate
        # evidence ages by rounds, not by participations: every node forgets, participants then add this round's
        self.evidence_ *= lam
        self.evidence_weight_ *= lam**2
        self.evidence_[idx] += np.clip(z, -self.clip, self.clip) + self.allowance
        self.evidence_weight_[idx] += 1.0
        self.acceptance_[idx] = lam * self.acceptance_[idx] + self.rate
        self.reference_ = ref
        self._evidence_trust()
        shifted = np.clip(z, -self.clip, self.clip) + self.allowance
        return np.minimum(1.0, stats.norm.cdf(shifted) / self.alpha).prod(axis=1)

    def penalize(self, nodes: Any) -> None:
        """Count a rejected reply (bad tag, replay, malformed stamp) as zero agreement."""
        idx = self._nodes(nodes, "penalize")
        if self.metric == "evidence":
            self.acceptance_[idx] = (1.0 - self.rate) * self.acceptance_[idx]
            self._evidence_trust()
            return
        self.scores_[idx] = (1.0 - self.rate) * self.scores_[idx]

    def snapshot(self, round: int) -> TrustScores:
        """The trust signal for the scheduler after round ``round`` (a read-only copy)."""
        scores = self._scores("snapshot").copy()
        scores.setflags(write=False)
        return TrustScores(round=check_int("round", round, low=0), scores=scores)

    # -- checkpointing -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters and learned state, as plain data for a checkpoint."""
        state: dict[str, Any] = {
            "rate": self.rate,
            "metric": self.metric,
            "initial": self.initial,
            "alpha": self.alpha,
            "reference_decay": self.reference_decay,
            "allowance": self.allowance,
            "clip": self.clip,
            "scores_": self._scores("state_dict").tolist(),
        }
        if self.metric == "evidence":
            state["evidence_"] = self.evidence_.tolist()
            state["evidence_weight_"] = self.evidence_weight_.tolist()
            state["acceptance_"] = self.acceptance_.tolist()
            state["reference_"] = None if self.reference_ is None else self.reference_.tolist()
        return state

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> TrustTracker:
        """Rebuild a tracker saved by :meth:`state_dict`."""
        tracker = cls(
            rate=state["rate"],
            metric=state["metric"],
            initial=state["initial"],
            alpha=state.get("alpha", 0.05),
            reference_decay=state.get("reference_decay", 0.5),
            allowance=state.get("allowance", 0.0),
            clip=state.get("clip", 3.0),
        )
        tracker.scores_ = check_array("scores_", state["scores_"], ndim=1, low=0.0, high=1.0)
        if tracker.metric == "evidence":
            tracker.evidence_ = check_array("evidence_", state["evidence_"], ndim=2)
            if tracker.evidence_.shape != (tracker.scores_.size, len(EVIDENCE_TESTS)):
                raise ValidationError(
                    f"evidence_ must have shape ({tracker.scores_.size}, {len(EVIDENCE_TESTS)}) (one column per "
                    f"test: {', '.join(EVIDENCE_TESTS)}), got {tracker.evidence_.shape}"
                )
            tracker.evidence_weight_ = check_array(
                "evidence_weight_", state["evidence_weight_"], ndim=1, low=0.0
            )
            tracker.acceptance_ = check_array(
                "acceptance_", state["acceptance_"], ndim=1, low=0.0, high=1.0
            )
            ref = state["reference_"]
            tracker.reference_ = None if ref is None else check_array("reference_", ref, ndim=1)
        return tracker
