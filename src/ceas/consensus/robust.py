"""Fidelity weighting wrapped around a robust rule: the *aggregate* half of a round (SPEC §3, CEAS aggregation).

Composition by wrapping, outermost first: authentication (``ceas.security``) marks which replies are accepted;
this wrapper drops the rejected ones and those with no verified weight, turns verified φ into capped weights
(:func:`~ceas.consensus.stamps.cap_weights`), and hands the rest to a robust rule from
:mod:`ceas.consensus.aggregators`. Every rejection keeps its reason; if nothing survives, or the rule's
precondition fails for the survivors, the outcome is "no update" with the reason, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ceas._validate import check_array, check_real
from ceas.consensus.aggregators import Aggregator
from ceas.consensus.stamps import cap_weights
from ceas.errors import ValidationError

__all__ = ["AggregationResult", "FidelityWeightedAggregation", "bound_norms"]

log = logging.getLogger(__name__)

REASON_NOT_FINITE = "update has non-finite entries"
REASON_ZERO_PHI = "verified phi is zero"


@dataclass(frozen=True)
class AggregationResult:
    """Outcome of one aggregation.

    Attributes
    ----------
    update : ndarray (d,) or None
        The aggregate; ``None`` means "no update" this round.
    weights : ndarray (n,)
        Weight each reply received (0 for rejected ones; sums to 1 when an update was made).
    accepted : ndarray (n,) of bool
        Replies that reached the rule.
    reasons : mapping row -> str
        Why each rejected reply was rejected.
    no_update_reason : str or None
        Why there is no update (None when there is one).
    """

    update: np.ndarray | None
    weights: np.ndarray
    accepted: np.ndarray
    reasons: Mapping[int, str] = field(default_factory=dict)
    no_update_reason: str | None = None

    @property
    def no_update(self) -> bool:
        """True when the round produced no update."""
        return self.update is None


def bound_norms(updates: np.ndarray) -> np.ndarray:
    """Rows scaled down to at most the median row norm, shape (n, d) -> (n, d); rows at or below it unchanged.

    With fewer than half of the rows Byzantine the median norm is an honest row's, so no row can carry more than an
    honest step's length into the rule (norm bounding, as in Sun et al. 2019, "Can you really backdoor federated
    learning?", with the bound taken from the round itself).
    """
    x = np.asarray(updates, dtype=np.float64)
    if x.shape[0] == 0:
        return x.copy()
    norms = np.linalg.norm(x, axis=1)
    tau = float(np.median(norms))
    scale = np.where(norms > tau, tau / np.where(norms > 0, norms, 1.0), 1.0)
    return x * scale[:, None]


@dataclass(frozen=True)
class FidelityWeightedAggregation:
    """Weights from verified stamps, capped at c/|A|, applied inside a robust rule.

    Parameters
    ----------
    rule : Aggregator
        The robust rule (e.g. ``TrimmedMean(0.3)``, the CEAS default).
    cap_c : float
        Weight cap c >= 1: no accepted reply gets more than c/|A| of the weight.
    weighting : bool
        False gives every accepted reply the same weight (the "CEAS without weighting" ablation).
    norm_bound : bool
        Scale each accepted update down to at most the median norm of the accepted updates before the rule
        (:func:`bound_norms`). Coordinate-wise rules bound every coordinate but not the step: a group that reaches
        half of a round's participants can still move the aggregate far, and one huge step can freeze an adaptive
        optimiser (Adam's second moment) for the rest of a run.
    """

    rule: Aggregator
    cap_c: float = 2.0
    weighting: bool = True
    norm_bound: bool = False

    def __post_init__(self) -> None:
        check_real("cap_c", self.cap_c, low=1.0)
        if not callable(self.rule):
            raise ValidationError(
                f"rule must be a callable aggregator, got {type(self.rule).__name__}"
            )

    def aggregate(
        self,
        updates: np.ndarray,
        phi: np.ndarray | None = None,
        *,
        accepted: np.ndarray | None = None,
        reasons: Mapping[int, str] | None = None,
    ) -> AggregationResult:
        """Reduce the accepted replies of a round.

        Parameters
        ----------
        updates : ndarray (n, d)
            One update per reply, in gradient units. Rows with NaN/inf are rejected, not fatal.
        phi : ndarray (n,), optional
            Verified φ per reply (>= 0); ``None`` treats all replies as equally confident.
        accepted : ndarray (n,) of bool, optional
            Replies that passed authentication upstream (default: all).
        reasons : mapping row -> str, optional
            Upstream reasons for the replies marked not accepted.

        Returns
        -------
        AggregationResult
        """
        x = np.array(updates, dtype=np.float64, copy=True)
        if x.ndim != 2:
            raise ValidationError(f"updates must be a 2-D array (n, d), got shape {x.shape}")
        n = x.shape[0]
        ok = (
            np.ones(n, dtype=bool)
            if accepted is None
            else np.array(accepted, dtype=bool, copy=True)
        )
        if ok.shape != (n,):
            raise ValidationError(
                f"accepted must have shape ({n},) to match updates, got {ok.shape}"
            )
        why: dict[int, str] = {int(k): str(v) for k, v in (reasons or {}).items()}
        for k in np.flatnonzero(~ok):
            why.setdefault(int(k), "rejected upstream")
        finite = np.isfinite(x).all(axis=1)
        for k in np.flatnonzero(ok & ~finite):
            why[int(k)] = REASON_NOT_FINITE
        ok &= finite
        if phi is None:
            p = np.ones(n)
        else:
            p = check_array("phi", phi, ndim=1, low=0.0)
            if p.shape != (n,):
                raise ValidationError(f"phi must have shape ({n},) to match updates, got {p.shape}")
        for k in np.flatnonzero(ok & (p <= 0)):
            why[int(k)] = REASON_ZERO_PHI
        ok &= p > 0

        weights = np.zeros(n)
        n_ok = int(ok.sum())
        log.info("aggregate: %d accepted, %d rejected", n_ok, n - n_ok)
        for k, reason in sorted(why.items()):
            log.debug("aggregate: reply %d rejected: %s", k, reason)
        if n_ok == 0:
            return self._none(weights, ok, why, f"no reply accepted (0 of {n})")
        w_ok = cap_weights(p[ok], self.cap_c) if self.weighting else np.full(n_ok, 1.0 / n_ok)
        rows = bound_norms(x[ok]) if self.norm_bound else x[ok]
        try:
            update = self.rule(rows, w_ok)
        except ValidationError as exc:  # e.g. too few survivors for the rule's tolerance
            return self._none(weights, ok, why, str(exc))
        weights[ok] = w_ok
        return AggregationResult(
            update=update, weights=weights, accepted=ok, reasons=MappingProxyType(why)
        )

    def as_rule(self) -> Aggregator:
        """The unweighted reduction ``(n, d) -> (d,)`` this aggregation applies (norm bound, then the rule): what an
        adaptive attacker that knows the aggregation rule simulates."""
        if not self.norm_bound:
            return self.rule

        def rule(updates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
            x = np.asarray(updates, dtype=np.float64)
            return (
                self.rule(bound_norms(x)) if weights is None else self.rule(bound_norms(x), weights)
            )

        return rule

    @staticmethod
    def _none(
        weights: np.ndarray, ok: np.ndarray, why: dict[int, str], reason: str
    ) -> AggregationResult:
        log.warning("aggregate: no update: %s", reason)
        return AggregationResult(
            update=None,
            weights=weights,
            accepted=ok,
            reasons=MappingProxyType(why),
            no_update_reason=reason,
        )
