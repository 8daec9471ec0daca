"""The [security] config section: SPEC defaults, bounds walked from the schema, unknown keys and names fail."""

from __future__ import annotations

import annotated_types as at
import pydantic
import pytest
from security_helpers import StubKeyPool

from ceas.security.attacks import ATTACKS
from ceas.security.mac import OneTimeMac
from ceas.security.params import SecurityParams
from ceas.security.verification import detection_probability


def test_spec_defaults():
    p = SecurityParams()
    assert p.byzantine_fraction == 0.2
    assert p.mac_refresh_messages == 1000
    assert set(p.attacks) <= set(ATTACKS)
    for model in (SecurityParams, *(ATTACKS.params_model(n) for n in ATTACKS.names())):
        for name, field in model.model_fields.items():
            assert field.description, (
                f"{model.__name__}.{name} needs a description giving its reason"
            )


def test_stated_reasons_hold():
    p = SecurityParams()
    assert OneTimeMac(StubKeyPool(p.seed_key_bits // 8)).messages_affordable() == 31
    assert detection_probability(p.verification_pairs, 0.5) == pytest.approx(1 - 2.0**-16)
    assert (
        ATTACKS.params_model("scaled-negative-mean")().negative_scale * 10 > 40
    )  # 10 Byzantine x c outweigh 40 honest in a mean


def _just_past(metadata):
    """Values just outside each numeric bound declared on a field."""
    for m in metadata:
        if isinstance(m, at.Ge):
            yield m.ge - (1 if isinstance(m.ge, int) else 1e-9)
        elif isinstance(m, at.Gt):
            yield m.gt
        elif isinstance(m, at.Le):
            yield m.le + (1 if isinstance(m.le, int) else 1e-9)
        elif isinstance(m, at.Lt):
            yield m.lt


@pytest.mark.parametrize("model", [SecurityParams])
def test_every_bound_is_enforced_and_names_the_field(model):
    walked = 0
    for name, field in model.model_fields.items():
        for bad in _just_past(field.metadata):
            with pytest.raises(pydantic.ValidationError) as caught:
                model(**{name: bad})
            assert caught.value.errors()[0]["loc"][0] == name
            walked += 1
    assert walked >= 8


def test_unknown_keys_names_and_repeats_fail():
    with pytest.raises(pydantic.ValidationError, match="byzantine_fracton"):
        SecurityParams(byzantine_fracton=0.1)
    with pytest.raises(
        pydantic.ValidationError, match="sign-flip"
    ):  # the error lists the allowed names
        SecurityParams(attacks=("signflip",))
    with pytest.raises(
        pydantic.ValidationError, match="each attack may appear once, got alie more than once"
    ):
        SecurityParams(attacks=("alie", "ipm", "alie"))
    with pytest.raises(pydantic.ValidationError):
        SecurityParams(pad_bits=128)  # the 128-bit pad is fixed by Poly1305, not a setting
    with pytest.raises(pydantic.ValidationError):
        SecurityParams(seed_key_bits=1001)  # whole bytes only


def test_frozen_and_nested():
    p = SecurityParams.model_validate(
        {"attacks": ["ipm", "replay"], "attack_params": {"ipm": {"ipm_epsilon": 0.5}}}
    )
    assert p.attacks == ("ipm", "replay") and p.attack_params == {"ipm": {"ipm_epsilon": 0.5}}
    with pytest.raises(pydantic.ValidationError):
        p.byzantine_fraction = 0.3
    assert set(ATTACKS.names()) >= {"alie", "ipm", "replay", "adaptive"}
