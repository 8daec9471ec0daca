"""The ``[security]`` section of a run configuration: the adversary (Definition 4) and the defences' parameters.

Bounds and option sets sit on the fields, so the lead's config layer and its tests can walk them. Every default is
the SPEC default, or a [D] decision with its reason in ``description``.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ATTACK_NAMES", "AttackName", "AttackParams", "SecurityParams"]

AttackName = Literal[
    "sign-flip",
    "scaled-negative-mean",
    "alie",
    "ipm",
    "gaussian",
    "label-flip",
    "stamp-inflation",
    "replay",
    "forgery",
    "impersonation",
    "equivocation",
    "pair-hoarding",
    "adaptive",
]
ATTACK_NAMES: tuple[str, ...] = get_args(AttackName)
"""Every attack name a config may use (the keys of :data:`ceas.security.attacks.ATTACKS`)."""


class AttackParams(BaseModel):
    """Hyperparameters of the attacks (each used only by the attack named in its field)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    negative_scale: float = Field(
        10.0,
        gt=0.0,
        description="scaled-negative-mean sends -c*mu; [D] c = 10 overwhelms a plain mean of 40 honest updates "
        "(10 * 10 > 40) while being an order of magnitude outside the honest cloud.",
    )
    alie_z: float | None = Field(
        None,
        gt=0.0,
        description="ALIE sends mu - z*sigma; None derives z from n and f as in Baruch et al. (NeurIPS 2019): "
        "s = floor(n/2 + 1) - f, z = Phi^-1((n - s)/n).",
    )
    ipm_epsilon: float = Field(
        0.1,
        gt=0.0,
        description="IPM sends -eps*mu; eps = 0.1 as in Xie et al. (UAI 2019): small enough to stay inside the "
        "honest cloud, so distance-based rules keep it, yet it turns the mean's inner product with mu negative.",
    )
    gaussian_mean: float = Field(
        0.0, description="gaussian attack: mean of N(m, s^2 I); ByzFL default 0."
    )
    gaussian_std: float = Field(1.0, gt=0.0, description="gaussian attack: std s; ByzFL default 1.")
    equivocation_split: float = Field(
        0.5,
        gt=0.0,
        lt=1.0,
        description="equivocation: fraction of receivers sent the malicious update (the rest get the honest "
        "mean); [D] 1/2 maximises disagreement between receivers.",
    )
    equivocation_inner: Literal["sign-flip", "scaled-negative-mean", "alie", "ipm", "gaussian"] = (
        Field(
            "sign-flip",
            description="equivocation: the gradient attack sent to the targeted receivers.",
        )
    )
    hoarding_multiplier: float = Field(
        4.0,
        ge=1.0,
        description="pair-hoarding: Byzantine nodes request this multiple of the pairs they need; [D] 4x drains a "
        "20-slot link memory (SPEC §4) in a quarter of the time.",
    )
    stamp_qfi: float = Field(
        1.0,
        gt=0.0,
        description="stamp-inflation claims this QFI per parameter; 1 is the largest a Pauli-rotation parameter "
        "allows (F_Q = 4 Var(sigma/2) <= 1).",
    )
    adaptive_direction: Literal["unit", "sign", "std"] = Field(
        "unit",
        description="adaptive: perturbation p in mu + gamma*p: -mu/|mu| (unit), -sign(mu) or -std "
        "(Shejwalkar & Houmansadr, NDSS 2021).",
    )
    adaptive_gamma_max: float = Field(
        100.0,
        gt=0.0,
        description="adaptive: largest scale gamma tried; [D] far past any honest norm.",
    )
    adaptive_steps: int = Field(
        24,
        ge=1,
        le=64,
        description="adaptive: scales tried, gamma_max * 2^-j for j < steps; [D] 24 halvings reach 6e-6 gamma_max.",
    )
    injected_per_node: int = Field(
        1,
        ge=0,
        le=1000,
        description="replay/forgery/impersonation: messages injected per Byzantine node per round; [D] one, as "
        "many as an honest node sends.",
    )


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
        "in ceas.security.attacks.ATTACKS (built-in: ATTACK_NAMES).",
    )
    attack: AttackParams = Field(
        default_factory=AttackParams, description="attack hyperparameters."
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

        unknown = [name for name in value if name not in ATTACKS]
        if unknown:
            raise ValueError(
                f"{unknown[0]!r} is not allowed; allowed: names of {', '.join(ATTACKS)}"
            )
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(
                f"each attack may appear once, got {', '.join(repeated)} more than once"
            )
        return value
