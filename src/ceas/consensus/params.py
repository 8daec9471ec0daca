"""The ``[consensus]`` section of a run config: every tunable of the consensus layer, with its SPEC default and reason.

Bounds and option sets sit on the fields, so the config layer (and its fuzz tests) read them as data.
:func:`aggregator_from_params` and :func:`aggregation_from_params` build the layer's objects from a section.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ceas.consensus.aggregators import Aggregator, build_aggregator
from ceas.consensus.robust import FidelityWeightedAggregation
from ceas.consensus.trust import TrustTracker

__all__ = [
    "ConsensusParams",
    "aggregation_from_params",
    "aggregator_from_params",
    "trust_from_params",
]


class ConsensusParams(BaseModel):
    """Consensus-layer settings (SPEC §3 CEAS aggregation, §6 defences 3–5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    aggregator: str = Field(
        "trimmed-mean",
        description="SPEC §3: the CEAS default is the fidelity-weighted coordinate-wise trimmed mean; any name "
        "registered in ceas.consensus.aggregators.AGGREGATORS",
    )
    aggregator_params: dict[str, Any] = Field(
        default_factory=dict,
        description="hyperparameters of the chosen rule, checked against its own Params (e.g. trim for "
        "trimmed-mean, f and m for multi-krum); unset ones take the rule's defaults",
    )

    @field_validator("aggregator")
    @classmethod
    def _registered_rule(cls, value: str) -> str:
        from ceas.consensus.aggregators import AGGREGATORS

        return AGGREGATORS.check_name(value)

    fidelity_weighting: bool = Field(
        True,
        description="SPEC §3: weights from verified stamps; false = the 'CEAS without weighting' ablation",
    )
    stamp: Literal["paper", "mse"] = Field(
        "paper",
        description="SPEC §3 [D, revised twice after measurement]: what φ is. 'paper' = S·F̂_Q·v² (the default "
        "again since issue 12); 'mse' = 1 / the node's predicted mean-squared error of its update as delivered (shot "
        "variance, noise bias, payload scale, copies, visibility), which predicts the delivered error (Spearman "
        "0.98-0.99 in situ, benchmarks/stamp_calibration.py; 'paper': -0.13 to 0.14) but, used for seating and "
        "weights, rewards small updates: under IPM Byzantine nodes held 48 % of the aggregate weight with 20 % of the "
        "seats (paper stamps: 16 %), CEAS lost 9.1 points (worst seed 30.8) against 1.6 (4.5), and with label skew "
        "(alpha = 0.3) CEAS fell 31 points below FedAvg against 12 (benchmarks/label_skew.py, docs/security.md)",
    )
    inclusion_weighting: bool = Field(
        False,
        description="[D, issue 12] divide each participant's weight by its probability of being seated (Hájek / "
        "Horvitz-Thompson, from the policy's draw weights: ceas.scheduling.inclusion), so the aggregate estimates "
        "the average over all eligible nodes however unevenly the policy seats them. With label skew (Dirichlet "
        "alpha = 0.3) the ceas policy's seating alone cost 14.3 points against random seating, 1.9 with the "
        "correction (10 paired seeds, docs/security.md); with IID shards it changes nothing measurable. Needs a "
        "policy that draws its participants (ceas with selection = 'sample', random)",
    )
    norm_bound: bool = Field(
        True,
        description="[D] scale every accepted update down to at most the round's median update norm before the "
        "rule: coordinate-wise rules bound each coordinate, not the step, and one round in which a Byzantine group "
        "reached half the participants sent a step of norm 59 (honest ~0.7) that froze Adam's step size for the "
        "rest of the run (measured); false for plain FedAvg/median/Krum baselines",
    )
    weight_cap: float = Field(
        2.0,
        ge=1.0,
        le=1e6,
        description="[D] c in w_k <= c/|A|: an undetected stamp inflation gains at most 2x the fair share; the "
        "largest honest weight among 10 nodes (p ~ U[0, 0.2], F ~ U[0.8, 0.95]) is 1.5x (median) to 2x (99th "
        "pct.) the fair share",
    )
    trust_rate: float = Field(
        0.2,
        gt=0.0,
        le=1.0,
        description="[D] trust EMA rate: trust reflects about the last 5 participations",
    )
    trust_metric: Literal["cosine", "distance", "evidence"] = Field(
        "evidence",
        description="[D] issue 6: sequential robust outlier evidence (direction and distance z-scores against the "
        "round's median/MAD spread) instead of agreement with the aggregate: with quantum payloads the channel noise "
        "(sd ~0.5 per component at G = 1, S_p = 4) exceeds the honest signal, so agreement with one round's aggregate "
        "cannot tell a coordinated group from noise, and the group captured the schedule (measured: 4-9 Byzantine of "
        "10 participants per round under scaled-negative-mean with cosine trust). 'cosine' and 'distance' remain for "
        "the ablation",
    )
    trust_alpha: float = Field(
        0.05,
        gt=0.0,
        le=0.5,
        description="[D] evidence: one-sided level of the accumulated z-score below which trust falls (trust = "
        "min(1, Phi(Z)/alpha) per test); 0.05 leaves an honest node at full trust 95 % of the time per test, so "
        "about 4 of 40 honest nodes are ranked lower at any time, while a node 3 sd out keeps 3 % of its trust",
    )
    trust_reference_decay: float = Field(
        0.5,
        ge=0.0,
        lt=1.0,
        description="[D] evidence: reference direction = decay * previous + (1 - decay) * this round's aggregate; "
        "measured cosine with the true honest mean gradient (quick config, seed 0): quantum 0.22 for the aggregate "
        "alone, 0.28 with 0.5, 0.31 with 0.7; classical 0.93, 0.71, 0.61 -- 0.5 averages channel noise without "
        "losing the drifting direction",
    )
    trust_allowance: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="[D] evidence: CUSUM allowance delta added to each clipped z-score (robust sd units); 0 because "
        "a Byzantine group that the schedule keeps picking (4 of 10 participants, quick config seed 1) sits at "
        "z ~ -1 on the norm test, like a heterogeneous honest node: measured (3 seeds, quantum) delta = 0 / 0.25 / "
        "0.5 gives scaled-negative-mean +1.3 / -17.9 / -20.4 points and honest false positives 11 / 3 / 3 %",
    )
    trust_clip: float = Field(
        3.0,
        gt=0.0,
        le=100.0,
        description="[D] evidence: each round's z-score is clipped to [-c, c] before it is accumulated (Huber-type "
        "bounded influence): honest per-round z-scores have 1 % quantiles of -3 to -16, so one round must not flag "
        "a node on its own, while a persistent deviant at -3 still loses trust in 2-3 participations",
    )
    trust_initial: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="[D] new nodes start trusted; selection in round 1 then follows phi",
    )

    trusted_broker: bool = Field(
        True,
        description="SPEC §6 defence 5: true = the broker aggregates and applies the step (the paper's setting); "
        "false = the round's participants check the aggregate and agree on the new model's digest by detectable "
        "Byzantine agreement over pairwise links swapped at the broker node, paid from pairwise key pools; a round "
        "that cannot agree is not applied (docs/consensus.md)",
    )
    agreement_attempts: int = Field(
        4,
        ge=1,
        le=1000,
        description="[D] leaders tried per round before the round is recorded as not agreed: f + 1 = 4 leaders "
        "always include an honest one among m = 10 agreeing nodes with f = 3, the most n > 3f allows",
    )
    agreement_key_pairs: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="[D] most fresh pairs a participant's channel is asked for per round to refill its pairwise "
        "agreement keys for retries (swapped at the broker node, then BBM92): key pairs are served before payload "
        "pairs, so this bounds what agreement may take from training. 0 (off) by default: at the default physics a "
        "swapped pair yields ~0.04 secret bits, so one attempt would need ~3,500 swapped pairs per node pair, and "
        "topping up at 64 pairs per channel took payload pairs for no usable key (docs/consensus.md)",
    )

    @model_validator(mode="after")
    def _rule_params(self) -> ConsensusParams:
        from ceas.consensus.aggregators import AGGREGATORS

        hyper = AGGREGATORS.params(
            self.aggregator, self.aggregator_params, "consensus.aggregator_params"
        )
        object.__setattr__(self, "aggregator_params", hyper.model_dump(exclude_unset=True))
        return self

    @model_validator(mode="after")
    def _evidence_fields(self) -> ConsensusParams:
        if self.trust_metric != "evidence":
            default = ConsensusParams.model_construct()
            for name in ("trust_alpha", "trust_reference_decay", "trust_allowance", "trust_clip"):
                if getattr(self, name) != getattr(default, name):
                    raise ValueError(
                        f"consensus.{name}: {getattr(self, name)!r} is not allowed with consensus.trust_metric = "
                        f"{self.trust_metric!r}; allowed: {getattr(default, name)!r}, the default (only the "
                        "'evidence' metric reads it)"
                    )
        return self


def aggregator_from_params(params: ConsensusParams, byzantine_fraction: float = 0.2) -> Aggregator:
    """The robust rule named by ``params.aggregator`` with its hyperparameters from ``params.aggregator_params``.

    ``byzantine_fraction`` is the run's one Byzantine fraction (``security.byzantine_fraction``): rules that need f
    (Krum, Multi-Krum) use f = floor(fraction * n) of the updates they receive unless their own ``f`` is set.
    """
    return build_aggregator(
        params.aggregator, params.aggregator_params, byzantine_fraction=byzantine_fraction
    )


def aggregation_from_params(
    params: ConsensusParams, byzantine_fraction: float = 0.2
) -> FidelityWeightedAggregation:
    """Capped fidelity weighting around the configured rule (the broker's aggregate step)."""
    return FidelityWeightedAggregation(
        aggregator_from_params(params, byzantine_fraction),
        cap_c=params.weight_cap,
        weighting=params.fidelity_weighting or params.inclusion_weighting,
        norm_bound=params.norm_bound,
    )


def trust_from_params(params: ConsensusParams) -> TrustTracker:
    """A trust tracker with the section's rate, metric and initial trust (call ``reset(n_nodes)`` next)."""
    return TrustTracker(
        rate=params.trust_rate,
        metric=params.trust_metric,
        initial=params.trust_initial,
        alpha=params.trust_alpha,
        reference_decay=params.trust_reference_decay,
        allowance=params.trust_allowance,
        clip=params.trust_clip,
    )
