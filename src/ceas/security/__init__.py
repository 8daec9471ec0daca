"""Security layer of ceas (SPEC §6): one-time MACs from link key pools, authenticated envelopes and their
verifier, entanglement verification, and the Byzantine adversary (Definition 4) with its attacks.

Modules: :mod:`~ceas.security.mac` (Wegman–Carter tags), :mod:`~ceas.security.messages` (envelopes, ``Verifier``),
:mod:`~ceas.security.verification` (fidelity estimates and impostor detection), :mod:`~ceas.security.attacks`
(attacks, registry, ``CoordinatedAttack``), :mod:`~ceas.security.checks` (``check_attack``),
:mod:`~ceas.security.pairwise` (MACs for all-to-all agreement), :mod:`~ceas.security.params` (the ``[security]`` config
section).
"""

from ceas.security.attacks import (
    ATTACKS,
    ChannelView,
    CoordinatedAttack,
    RoundContext,
    StampClaims,
    choose_byzantine,
    make_adversary,
    make_attack,
    register_attack,
)
from ceas.security.checks import check_attack
from ceas.security.mac import KeyExhaustedError, KeySource, MacStatus, OneTimeMac, key_bits_needed
from ceas.security.messages import Reason, Signer, Verdict, Verifier, payload_digest
from ceas.security.pairwise import PairwiseAuthenticator
from ceas.security.params import SecurityParams
from ceas.security.verification import (
    FidelityEstimate,
    cap_claimed_fidelity,
    detection_probability,
    estimate_fidelity,
    sample_honest_test,
    sample_impostor_test,
)

__all__ = [
    "ATTACKS",
    "ChannelView",
    "CoordinatedAttack",
    "FidelityEstimate",
    "KeyExhaustedError",
    "KeySource",
    "MacStatus",
    "OneTimeMac",
    "PairwiseAuthenticator",
    "Reason",
    "RoundContext",
    "SecurityParams",
    "Signer",
    "StampClaims",
    "Verdict",
    "Verifier",
    "cap_claimed_fidelity",
    "check_attack",
    "choose_byzantine",
    "detection_probability",
    "estimate_fidelity",
    "key_bits_needed",
    "make_adversary",
    "make_attack",
    "payload_digest",
    "register_attack",
    "sample_honest_test",
    "sample_impostor_test",
]
