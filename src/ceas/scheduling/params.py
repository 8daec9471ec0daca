"""The ``[scheduling]`` section of a run configuration: the policy and the weights of the MDP's reward (SPEC §5).

Bounds and option sets sit on the fields, so the lead's config layer and its tests can walk them. Every default is the
SPEC default, or a [D] decision with its reason in ``description``. The number of verification pairs k and the tag
cost per message are security parameters (:class:`ceas.security.params.SecurityParams`); the broker passes them to the
policy through :class:`~ceas.scheduling.views.NodeView`, so they are not repeated here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["SchedulingParams"]


class SchedulingParams(BaseModel):
    """Scheduling policy, participant budget and reward weights of the CEAS scheduling MDP (Definition 3)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: str = Field(
        "ceas",
        min_length=1,
        description="registry name of the scheduling policy (SPEC §5): ceas, random, oblivious, greedy-fidelity, "
        "value-iteration, or a user's registered policy.",
    )
    policy_params: dict[str, Any] = Field(
        default_factory=dict,
        description="hyperparameters of the chosen policy, checked against its own Params (built-in policies read "
        "the fields of this section instead and declare none)",
    )
    participants: int = Field(
        10, ge=1, le=100_000, description="SPEC §5: participant set A_t of size m = 10 (of N = 50)."
    )
    payload_copies: int = Field(
        4,
        ge=1,
        le=1024,
        description="SPEC §4: S_p = 4 measured copies per gradient component, so a payload needs P*S_p pairs.",
    )
    round_s: float = Field(
        1.0, gt=0.0, le=3600.0, description="SPEC §4: synchronous rounds of duration tau = 1 s."
    )
    waste_penalty: float = Field(
        1e-3,
        ge=0.0,
        description="lambda_w per pair expired, evicted or consumed without result; [D] 1e-3 ~ what one pair earns as "
        "payload in the default round (utility 1 / (m*P*S_p) = 1/1280), so wasting a pair costs what it could earn.",
    )
    latency_penalty: float = Field(
        0.1,
        ge=0.0,
        description="lambda_l per round of mean participant wait for fresh pairs; [D] waiting a whole round costs 10 % "
        "of the round's utility: synchronous training tolerates delay better than gradient noise.",
    )
    discount: float = Field(
        0.95,
        gt=0.0,
        lt=1.0,
        description="[D] gamma of the discounted MDP (value iteration, gymnasium env): a 20-round horizon, about "
        "the time trust scores take to settle.",
    )
    age_bins: int = Field(
        4,
        ge=1,
        le=16,
        description="[D] most age bins (of width tau) of the binned MDP; pairs older than the last bin count as past "
        "their cutoff. Four keep exact value iteration enumerable on reduced instances.",
    )
    key_confidence: float = Field(
        0.95,
        ge=0.5,
        lt=1.0,
        description="ceas: fresh key pairs are requested so the batch pays its tag with this probability; [D] 0.95 -- "
        "asking for the mean count leaves about half of the tags unpaid (BBM92's yield varies +-20 % per batch).",
    )
    key_reserve_rounds: float = Field(
        2.0,
        ge=0.0,
        description="ceas: key bits are worth their share of a round's utility while a link's pool holds fewer than "
        "this many rounds of tags; [D] 2 rounds ride out one bad round of distillation.",
    )
    convert_near_cutoff: bool = Field(
        True,
        description="ceas: measure pairs that would expire before the next decision for key (SPEC §5); off for the "
        "ablation.",
    )
    selection: Literal["top", "sample"] = Field(
        "sample",
        description="ceas: m nodes drawn without replacement with probability proportional to their score among "
        "those with full trust ('sample'), or the m best scores ('top'). [D] sample -- measured (docs/results.md): "
        "'top' seats the same best-scoring nodes every round, which under label skew (Dirichlet 0.5) cost 12 points "
        "and let an adversary holding the least noisy QPUs take 3.6 of 10 seats per round (sign flip, paper "
        "config); drawing also among flagged nodes cost classical payloads 9.5 points under the adaptive attack.",
    )
    round_deadline: bool = Field(
        True,
        description="ceas: fresh pairs count only if they herald within the round (the broker's synchronous round "
        "drops a reply whose payload or tag key is late), so a node's utility is weighted by that probability and "
        "a payload cut short is waste. The reduced MDP (which serves fresh pairs late, at a latency cost) sets it "
        "false.",
    )
    background_key: bool = Field(
        True,
        description="ceas: links of nodes not taking part distil fresh pairs into key (measured as heralded, so "
        "none wait to expire) until the pool holds key_reserve_rounds of tags; [D] on -- once the pre-shared seed "
        "key is spent, a tag costs ~440 fresh pairs, more than a slow link heralds in a round next to its payload.",
    )
    generation_control: bool = Field(
        True,
        description="ceas: switch generation off on links whose pairs would only expire (SPEC §5 action); off keeps "
        "every link generating, for the ablation.",
    )
    vi_tolerance: float = Field(
        1e-8,
        gt=0.0,
        le=1e-2,
        description="value iteration stops when the Bellman residual max|TV - V| falls below this (issue 5: 1e-8).",
    )
    vi_max_iterations: int = Field(
        100_000,
        ge=1,
        description="value iteration gives up (ProtocolError) after this many sweeps.",
    )

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        from ceas.scheduling.registry import policy_names, unknown_policy_message

        if value not in policy_names():
            raise ValueError(unknown_policy_message(value))
        return value

    @model_validator(mode="after")
    def _policy_params(self) -> SchedulingParams:
        from ceas.scheduling.registry import POLICIES

        hyper = POLICIES.params(self.policy, self.policy_params, "scheduling.policy_params")
        object.__setattr__(self, "policy_params", hyper.model_dump(exclude_unset=True))
        return self
