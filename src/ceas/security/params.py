"""The ``[security]`` section of a run configuration: the adversary (Definition 4) and the defences' parameters.

Bounds and option sets sit on the fields, so the lead's config layer and its tests can walk them. Every default is
the SPEC default, or a [D] decision with its reason in ``description``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ceas._validate import _short

__all__ = ["SecurityParams"]


class SecurityParams(BaseModel):
    """The adversary (Definition 4) and the parameters of authentication and entanglement verification."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    byzantine_fraction: float = Field(
        0.2,
        ge=0.0,
        lt=0.5,
        description="SPEC §6: f of N nodes are Byzantine, default 20 %; robust rules need f < N/2.",
    )
    attacks: tuple[str, ...] = Field(
        ("alie", "stamp-inflation"),
        description="[D] the headline's coordinated attack: ALIE (stealthy against robust rules) with inflated "
        "stamps (aimed at fidelity weighting); empty means Byzantine nodes behave honestly. Any names registered "
        "in ceas.security.attacks.ATTACKS.",
    )
    attack_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="hyperparameters of the chosen attacks, one table per attack name, each checked against that "
        "attack's own Params; unset ones take the attack's defaults",
    )
    authentication: bool = Field(
        True,
        description="SPEC §6 defence 1: the broker accepts a reply only with a valid one-time MAC tag. false is the "
        "ablation 'CEAS without authentication' (SPEC §8): tags are not checked, so forged and impersonated "
        "replies of the current round reach the aggregation in the name of the node they claim; nodes still tag, "
        "so the key economy and the schedule are those of CEAS. Refused without Byzantine nodes, without a "
        "trusted broker and with split circuits.",
    )
    mac_refresh_messages: int = Field(
        1000,
        ge=1,
        description="SPEC §6: Poly1305 hash key r refreshed from the key pool every 1,000 messages.",
    )
    seed_key_bits: int = Field(
        4096,
        ge=256,
        multiple_of=8,
        description="SPEC §6: pre-shared seed key per link, as in deployed QKD; [D] 4,096 bits pays for 31 tags, "
        "so BBM92 must feed the pools within ~15 rounds and the policy has to plan key budgets.",
    )
    verification_pairs: int = Field(
        16,
        ge=1,
        description="SPEC §6: k pairs sacrificed per link per test; [D] 16 = 1/8 of a default payload (128 pairs) "
        "and detects a pair-less impostor with probability 1 - 2^-16.",
    )
    verification_confidence: float = Field(
        0.95,
        gt=0.0,
        lt=1.0,
        description="[D] two-sided level of the broker's confidence interval on a link's fidelity from its "
        "verification test; the upper bound caps the fidelity a node may claim.",
    )
    verification_bound: Literal["clopper-pearson", "hoeffding"] = Field(
        "clopper-pearson",
        description="[D] Clopper-Pearson is exact (coverage >= level) and tighter than Hoeffding at small k.",
    )
    max_stamp_bytes: int = Field(
        1024,
        ge=1,
        le=65535,
        description="[D] longest stamp the broker's verifier accepts (longer messages are rejected as malformed); "
        "a stamp is a few dozen bytes.",
    )

    @field_validator("attacks")
    @classmethod
    def _no_repeats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from ceas.security.attacks import ATTACKS

        for name in value:
            ATTACKS.check_name(name)
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(
                f"each attack may appear once, got {', '.join(repeated)} more than once"
            )
        return value

    @model_validator(mode="after")
    def _attack_params(self) -> SecurityParams:
        from ceas.security.attacks import ATTACKS

        checked = {}
        for name, values in self.attack_params.items():
            if name not in self.attacks:
                raise ValueError(
                    f"security.attack_params.{name}: {_short(values)} is not allowed with security.attacks = "
                    f"{list(self.attacks)}; allowed: tables for the chosen attacks (an attack not chosen never runs)"
                )
            hyper = ATTACKS.params(name, values, f"security.attack_params.{name}")
            checked[name] = hyper.model_dump(exclude_unset=True)
        object.__setattr__(self, "attack_params", checked)
        return self
