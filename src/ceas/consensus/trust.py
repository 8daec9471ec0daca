"""Per-node trust: an exponential moving average of each node's agreement with the round's aggregate (SPEC §3).

After each aggregation every participant k gets an agreement score :math:`a_k \\in [0, 1]` and its trust moves
towards it, :math:`s_k \\leftarrow (1-\\rho) s_k + \\rho a_k`; non-participants keep their trust. A reply that was
rejected (bad tag, replay, malformed) counts as :math:`a_k = 0` (:meth:`TrustTracker.penalize`). The scores go up to
the scheduler (:meth:`TrustTracker.snapshot`), whose reward weighs each node's φ by its trust (SPEC §5).

Agreement metrics
-----------------
``cosine``
    :math:`a_k = \\max(0, \\cos\\angle(g_k, \\hat g))`: direction only, so honest nodes with noisy but aligned
    gradients score high and sign-flipped or orthogonal ones score 0.
``distance``
    :math:`a_k = \\min(1, \\tilde d / d_k)` with :math:`d_k = \\lVert g_k - \\hat g\\rVert` and :math:`\\tilde d`
    the round's median distance: full agreement within the typical (honest-majority) spread, 1/10 at ten times
    it; scale-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ceas.consensus._validate import check_array, check_int, check_real
from ceas.errors import ProtocolError, ValidationError

__all__ = ["TRUST_METRICS", "TrustScores", "TrustTracker", "agreement_scores"]

TRUST_METRICS = ("cosine", "distance")


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
    """Exponential moving average of agreement with the aggregate, one score per node.

    Parameters
    ----------
    rate : float
        EMA rate ρ in (0, 1]; trust reflects roughly the last 1/ρ participations.
    metric : {"cosine", "distance"}
        Agreement metric (see :func:`agreement_scores`).
    initial : float
        Trust of a node never seen, in [0, 1].

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
    ) -> None:
        self.rate = check_real("rate", rate, low=0.0, high=1.0, low_open=True)
        if metric not in TRUST_METRICS:
            raise ValidationError(
                f"metric must be one of {', '.join(TRUST_METRICS)}, got {metric!r}"
            )
        self.metric = metric
        self.initial = check_real("initial", initial, low=0.0, high=1.0)

    # -- learned state --------------------------------------------------------------------------------------
    def reset(self, n_nodes: int) -> TrustTracker:
        """Start every one of ``n_nodes`` nodes at the initial trust; returns self."""
        n_nodes = check_int("n_nodes", n_nodes, low=1)
        self.scores_ = np.full(n_nodes, self.initial)
        return self

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
        a = agreement_scores(updates, aggregate, self.metric)
        if a.shape != idx.shape:
            raise ValidationError(f"updates must have one row per node ({idx.size}), got {a.size}")
        self.scores_[idx] = (1.0 - self.rate) * self.scores_[idx] + self.rate * a
        return a

    def penalize(self, nodes: Any) -> None:
        """Count a rejected reply (bad tag, replay, malformed stamp) as zero agreement."""
        idx = self._nodes(nodes, "penalize")
        self.scores_[idx] = (1.0 - self.rate) * self.scores_[idx]

    def snapshot(self, round: int) -> TrustScores:
        """The trust signal for the scheduler after round ``round`` (a read-only copy)."""
        scores = self._scores("snapshot").copy()
        scores.setflags(write=False)
        return TrustScores(round=check_int("round", round, low=0), scores=scores)

    # -- checkpointing -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters and learned state, as plain data for a checkpoint."""
        return {
            "rate": self.rate,
            "metric": self.metric,
            "initial": self.initial,
            "scores_": self._scores("state_dict").tolist(),
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> TrustTracker:
        """Rebuild a tracker saved by :meth:`state_dict`."""
        tracker = cls(rate=state["rate"], metric=state["metric"], initial=state["initial"])
        tracker.scores_ = check_array("scores_", state["scores_"], ndim=1, low=0.0, high=1.0)
        return tracker
