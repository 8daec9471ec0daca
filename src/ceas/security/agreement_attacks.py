"""Attacks on agreement without a trusted broker (SPEC §6 defence 5; surface ``agreement``).

With ``consensus.trusted_broker = false`` the round's participants agree on the new model's digest by echo/ready
broadcast (:mod:`ceas.consensus.agreement`). The Byzantine participants of a round may then act in the agreement:

=========================  ===================================================================================
name                       what the Byzantine participants do
=========================  ===================================================================================
``equivocating-leader``    as leader, propose the honest digest to half of the honest nodes and another to the
                           rest; as followers, back each half's value
``conflicting-votes``      send every node both an echo (and a ready) for the honest digest and for another
``silent-agreement``       send nothing in the agreement (a Byzantine leader stalls its attempt)
``wrong-digest``           as aggregator (leader), propose the digest of a model the accepted replies do not give,
                           and echo and ready it
=========================  ===================================================================================

These classes only name the behaviour (``behaviour``, a key of ``ceas.consensus.agreement.BEHAVIOURS``): the
broker builds it with the digest the adversary pushes, so the security layer does not import the consensus layer.
They are registered in :data:`ceas.security.attacks.ATTACKS` (imported there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel

from ceas.security.attacks import register_attack

__all__ = [
    "ConflictingVotesAttack",
    "EquivocatingLeaderAttack",
    "SilentAgreementAttack",
    "WrongDigestAttack",
]


@dataclass(frozen=True)
class _AgreementAttack:
    surface: ClassVar[str] = "agreement"
    name: ClassVar[str]
    behaviour: ClassVar[str]

    @classmethod
    def from_params(cls, params: BaseModel | None = None, **_: object) -> _AgreementAttack:
        return cls()


@register_attack
@dataclass(frozen=True)
class EquivocatingLeaderAttack(_AgreementAttack):
    """A Byzantine leader proposes different digests to two halves of the honest nodes (split brain)."""

    name: ClassVar[str] = "equivocating-leader"
    behaviour: ClassVar[str] = "equivocating-leader"


@register_attack
@dataclass(frozen=True)
class ConflictingVotesAttack(_AgreementAttack):
    """Byzantine nodes send conflicting echoes and readies (two digests to every receiver)."""

    name: ClassVar[str] = "conflicting-votes"
    behaviour: ClassVar[str] = "conflicting-votes"


@register_attack
@dataclass(frozen=True)
class SilentAgreementAttack(_AgreementAttack):
    """Byzantine nodes stay silent in the agreement (a Byzantine leader's attempt stalls)."""

    name: ClassVar[str] = "silent-agreement"
    behaviour: ClassVar[str] = "silent"


@register_attack
@dataclass(frozen=True)
class WrongDigestAttack(_AgreementAttack):
    """A Byzantine aggregator (leader) proposes the digest of a wrong model."""

    name: ClassVar[str] = "wrong-digest"
    behaviour: ClassVar[str] = "wrong-digest"
