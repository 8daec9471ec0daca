"""Security layer of ceas (SPEC §6): one-time MACs from link key pools, authenticated envelopes and their
verifier, entanglement verification, and the Byzantine adversary (Definition 4) with its attacks.

Modules: :mod:`~ceas.security.mac` (Wegman–Carter tags), :mod:`~ceas.security.messages` (envelopes, ``Verifier``),
:mod:`~ceas.security.verification` (fidelity estimates and impostor detection), :mod:`~ceas.security.attacks`
(attacks, registry, ``CoordinatedAttack``), :mod:`~ceas.security.checks` (``check_attack``),
:mod:`~ceas.security.pairwise` (MACs for all-to-all agreement), :mod:`~ceas.security.params` (the ``[security]`` config
section).
"""

from typing import TYPE_CHECKING

from ceas._lazy import lazy_exports

if TYPE_CHECKING:
    # the names below are imported on first use (PEP 562): `import ceas.security.params` and the like (what checking a
    # config needs) then no longer import every module of the layer
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
    from ceas.security.mac import (
        KeyExhaustedError,
        KeySource,
        MacStatus,
        OneTimeMac,
        key_bits_needed,
        poly1305_tag,
        poly1305_verify,
    )
    from ceas.security.messages import Reason, Signer, Verdict, Verifier, payload_digest
    from ceas.security.pairwise import PairwiseAuthenticator
    from ceas.security.params import SecurityParams
    from ceas.security.verification import (
        FidelityEstimate,
        cap_claimed_fidelity,
        detection_probability,
        error_probability,
        estimate_fidelity,
        fidelity_from_errors,
        impostor_pass_probability,
        sample_honest_test,
        sample_impostor_test,
    )

_EXPORTS = {
    "ATTACKS": "ceas.security.attacks",
    "ChannelView": "ceas.security.attacks",
    "CoordinatedAttack": "ceas.security.attacks",
    "RoundContext": "ceas.security.attacks",
    "StampClaims": "ceas.security.attacks",
    "choose_byzantine": "ceas.security.attacks",
    "make_adversary": "ceas.security.attacks",
    "make_attack": "ceas.security.attacks",
    "register_attack": "ceas.security.attacks",
    "check_attack": "ceas.security.checks",
    "KeyExhaustedError": "ceas.security.mac",
    "KeySource": "ceas.security.mac",
    "MacStatus": "ceas.security.mac",
    "OneTimeMac": "ceas.security.mac",
    "key_bits_needed": "ceas.security.mac",
    "poly1305_tag": "ceas.security.mac",
    "poly1305_verify": "ceas.security.mac",
    "Reason": "ceas.security.messages",
    "Signer": "ceas.security.messages",
    "Verdict": "ceas.security.messages",
    "Verifier": "ceas.security.messages",
    "payload_digest": "ceas.security.messages",
    "PairwiseAuthenticator": "ceas.security.pairwise",
    "SecurityParams": "ceas.security.params",
    "FidelityEstimate": "ceas.security.verification",
    "cap_claimed_fidelity": "ceas.security.verification",
    "detection_probability": "ceas.security.verification",
    "error_probability": "ceas.security.verification",
    "estimate_fidelity": "ceas.security.verification",
    "fidelity_from_errors": "ceas.security.verification",
    "impostor_pass_probability": "ceas.security.verification",
    "sample_honest_test": "ceas.security.verification",
    "sample_impostor_test": "ceas.security.verification",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


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
    "error_probability",
    "estimate_fidelity",
    "fidelity_from_errors",
    "impostor_pass_probability",
    "key_bits_needed",
    "make_adversary",
    "make_attack",
    "payload_digest",
    "poly1305_tag",
    "poly1305_verify",
    "register_attack",
    "sample_honest_test",
    "sample_impostor_test",
]
