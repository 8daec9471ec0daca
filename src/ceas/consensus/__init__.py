"""Consensus coordination layer (SPEC §2, §3, §6): fidelity stamps (Definition 1), robust fidelity-weighted
aggregation (Proposition 1 and robust rules), per-node trust, and agreement on the model without a trusted broker.

Modules
-------
stamps       the stamp, its weight φ = S·F_Q·v², verification against the broker's measurements, weight caps
aggregators  one callable per rule and the registry keyed by config name
robust       fidelity weighting wrapped around a robust rule; "no update" when nothing is accepted
checker      ``check_aggregator`` for user-supplied rules
trust        exponential moving average of agreement with the aggregate, sent to the scheduler
agreement    detectable Byzantine agreement on θ^(t+1)'s digest (echo/ready broadcast, rotating leaders)
params       the ``[consensus]`` config section
"""

from ceas.consensus.aggregators import (
    AGGREGATORS,
    Aggregator,
    CenteredClipping,
    GeometricMedian,
    GeometricMedianResult,
    Krum,
    Mean,
    MultiKrum,
    TrimmedMean,
    WeightedMean,
    WeightedMedian,
    make_aggregator,
    prepare_inputs,
    register_aggregator,
)
from ceas.consensus.agreement import DigestAgreement, model_digest
from ceas.consensus.checker import AggregatorCheckError, check_aggregator
from ceas.consensus.params import (
    ConsensusParams,
    aggregation_from_params,
    aggregator_from_params,
    trust_from_params,
)
from ceas.consensus.robust import AggregationResult, FidelityWeightedAggregation, bound_norms
from ceas.consensus.stamps import (
    FidelityStamp,
    StampIssue,
    VerifiedStamp,
    cap_weights,
    qfi_noise_bound,
    stamp_weight,
    tighten_claims,
    verify_stamp,
    verify_stamps,
)
from ceas.consensus.trust import TrustScores, TrustTracker, evidence_scores

__all__ = [
    "AGGREGATORS",
    "AggregationResult",
    "Aggregator",
    "AggregatorCheckError",
    "CenteredClipping",
    "ConsensusParams",
    "DigestAgreement",
    "FidelityStamp",
    "FidelityWeightedAggregation",
    "GeometricMedian",
    "GeometricMedianResult",
    "Krum",
    "Mean",
    "MultiKrum",
    "StampIssue",
    "TrimmedMean",
    "TrustScores",
    "TrustTracker",
    "VerifiedStamp",
    "WeightedMean",
    "WeightedMedian",
    "aggregation_from_params",
    "aggregator_from_params",
    "bound_norms",
    "cap_weights",
    "check_aggregator",
    "evidence_scores",
    "make_aggregator",
    "model_digest",
    "prepare_inputs",
    "qfi_noise_bound",
    "register_aggregator",
    "stamp_weight",
    "tighten_claims",
    "trust_from_params",
    "verify_stamp",
    "verify_stamps",
]
