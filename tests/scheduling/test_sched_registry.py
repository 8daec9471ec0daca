"""Registry (unknown names suggest the closest), the [scheduling] params section, and a user's one-file policy."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest

from ceas.errors import ConfigError, UnknownNameError
from ceas.scheduling import (
    Decision,
    SchedulingParams,
    check_policy,
    make_policy,
    policy_names,
    register_policy,
)


def test_builtin_names():
    assert {"ceas", "random", "oblivious", "greedy-fidelity", "value-iteration"} <= set(
        policy_names()
    )


def test_unknown_policy_suggests_closest_name():
    with pytest.raises(UnknownNameError) as err:
        make_policy("cea")
    assert str(err.value).startswith(
        "scheduling policy 'cea' is unknown (did you mean 'ceas'?); allowed: one of ceas, "
    )
    with pytest.raises(UnknownNameError) as err:
        make_policy("greedy")
    assert "did you mean 'greedy-fidelity'?" in str(err.value)


def test_value_iteration_needs_an_instance():
    with pytest.raises(ConfigError, match="needs model=FiniteMDP"):
        make_policy("value-iteration")


def test_user_policy_in_one_file_is_registered_and_checked():
    @register_policy("test-nobody")
    class Nobody:
        name = "test-nobody"

        def __init__(self, params, **context):
            self.params = params

        def __call__(self, inventory, nodes, rng):
            return Decision(
                participants=[],
                requests=np.zeros((inventory.n_links, 3)),
                generate=np.zeros(inventory.n_links, bool),
            )

    assert "test-nobody" in policy_names()
    policy = make_policy("test-nobody", SchedulingParams(participants=2))
    check_policy(policy)
    assert SchedulingParams(policy="test-nobody").policy == "test-nobody"
    with pytest.raises(ConfigError, match="already registered"):
        register_policy("test-nobody")(lambda params: None)


def test_params_defaults_follow_the_spec():
    p = SchedulingParams()
    assert (p.policy, p.participants, p.payload_copies, p.round_s) == ("ceas", 10, 4, 1.0)
    assert p.vi_tolerance == 1e-8
    for name, field in SchedulingParams.model_fields.items():
        assert field.description, f"{name} has no description"


def _bounds():
    for name, field in SchedulingParams.model_fields.items():
        for meta in field.metadata:
            for attr, delta in (("ge", -1), ("gt", 0), ("le", 1), ("lt", 0)):
                bound = getattr(meta, attr, None)
                if bound is not None:
                    step = 1 if field.annotation is int else 1e-9 * max(1.0, abs(bound))
                    yield name, bound + delta * step if delta else bound
    yield "policy", "not-a-policy"


@pytest.mark.parametrize(("name", "value"), list(_bounds()))
def test_every_bound_and_option_is_enforced(name, value):
    with pytest.raises(pydantic.ValidationError) as err:
        SchedulingParams(**{name: value})
    assert err.value.errors()[0]["loc"] == (name,)


def test_unknown_policy_in_params_names_the_closest():
    with pytest.raises(pydantic.ValidationError) as err:
        SchedulingParams(policy="randm")
    assert "did you mean 'random'?" in str(err.value)


def test_extra_keys_fail_and_params_are_frozen():
    with pytest.raises(pydantic.ValidationError, match="extra"):
        SchedulingParams(particpants=3)
    p = SchedulingParams()
    with pytest.raises(pydantic.ValidationError):
        p.participants = 3
