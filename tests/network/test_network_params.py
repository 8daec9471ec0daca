"""The [network] config section: SPEC defaults, presets, and bounds walked from the schema."""

import typing

import annotated_types
import pydantic
import pytest

from ceas.network.params import (
    LINK_PRESETS,
    LinkParams,
    MemoryParams,
    NetworkParams,
    TopologyParams,
)

MODELS = (TopologyParams, LinkParams, MemoryParams, NetworkParams)


def test_defaults_are_the_spec_values():
    p = NetworkParams()
    t, link, m = p.topology, p.link, p.memory
    assert (t.kind, t.n_nodes, t.length_min_km, t.length_max_km) == ("star", 50, 2.0, 40.0)
    assert (
        link.preset,
        link.scheme,
        link.eta0,
        link.alpha_db_per_km,
        link.theta,
        link.c_km_per_s,
    ) == (
        "paper",
        "single_click",
        0.5,
        0.2,
        0.05,
        2.0e5,
    )
    assert (m.slots, m.coherence_min_s, m.coherence_max_s, m.f_min, m.eviction) == (
        20,
        0.05,
        1.0,
        0.8,
        "oldest",
    )
    assert m.broker_coherence_s is None and p.swap_success == 1.0


def test_every_field_has_a_description():
    for model in MODELS:
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name}"


def test_presets_fill_unset_fields_and_explicit_fields_win():
    nv = LinkParams(preset="nv")
    assert nv.eta0 == LINK_PRESETS["nv"]["eta0"] and nv.theta == 0.1 and nv.scheme == "single_click"
    ion = LinkParams(preset="ion", eta0=0.3)
    assert ion.eta0 == 0.3 and ion.scheme == "double_click" and ion.double_click_fidelity == 0.94
    assert LinkParams(preset="paper") == LinkParams()
    for name, values in LINK_PRESETS.items():
        params = LinkParams(preset=name)
        assert {k: getattr(params, k) for k in values} == values


def _bounds(info):
    out = []
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Ge):
            out.append(("low", meta.ge, True))
        elif isinstance(meta, annotated_types.Gt):
            out.append(("low", meta.gt, False))
        elif isinstance(meta, annotated_types.Le):
            out.append(("high", meta.le, True))
        elif isinstance(meta, annotated_types.Lt):
            out.append(("high", meta.lt, False))
    return out


CASES = []
for _model in (TopologyParams, LinkParams, MemoryParams, NetworkParams):
    for _name, _info in _model.model_fields.items():
        for _side, _bound, _inclusive in _bounds(_info):
            CASES.append((_model, _name, _side, _bound, _inclusive))


@pytest.mark.parametrize(
    ("model", "name", "side", "bound", "inclusive"),
    CASES,
    ids=[f"{c[0].__name__}.{c[1]}-{c[2]}" for c in CASES],
)
def test_a_value_just_past_each_bound_is_rejected_naming_the_field(
    model, name, side, bound, inclusive
):
    is_int = model.model_fields[name].annotation in (int, int | None)
    step = 1 if is_int else max(abs(bound) * 1e-9, 1e-12)
    bad = (
        (bound - step if inclusive else bound)
        if side == "low"
        else (bound + step if inclusive else bound)
    )
    with pytest.raises(pydantic.ValidationError) as info:
        model(**{name: bad})
    assert name in {str(loc) for e in info.value.errors() for loc in e["loc"]}


def test_option_sets_reject_unknown_names():
    with pytest.raises(
        pydantic.ValidationError, match=r"topology 'nonsense' is unknown; allowed: one of graphml"
    ):
        TopologyParams(kind="nonsense")  # a registry name (plugins add kinds), not a Literal
    for model, name in [
        (LinkParams, "preset"),
        (LinkParams, "scheme"),
        (MemoryParams, "eviction"),
    ]:
        assert typing.get_origin(model.model_fields[name].annotation) is typing.Literal
        with pytest.raises(pydantic.ValidationError) as info:
            model(**{name: "nonsense"})
        assert info.value.errors()[0]["loc"] == (name,)


def test_unknown_keys_and_cross_field_rules():
    with pytest.raises(pydantic.ValidationError, match="extra"):
        MemoryParams(slot=3)
    with pytest.raises(
        pydantic.ValidationError,
        match=r"length_min_km = 50.0 is not allowed; allowed: float in \(0, "
        r"length_max_km = 40.0\]",
    ):
        TopologyParams(length_min_km=50)
    with pytest.raises(pydantic.ValidationError, match="coherence_min_s = 2.0 is not allowed"):
        MemoryParams(coherence_min_s=2.0)
    with pytest.raises(pydantic.ValidationError, match="graphml_path is missing"):
        TopologyParams(kind="graphml")


def test_frozen_and_nested_from_plain_data():
    p = NetworkParams.model_validate(
        {"topology": {"n_nodes": 7}, "link": {"preset": "ion"}, "memory": {"slots": 4}}
    )
    assert p.topology.n_nodes == 7 and p.link.scheme == "double_click" and p.memory.slots == 4
    with pytest.raises(pydantic.ValidationError):
        p.memory.slots = 5  # type: ignore[misc]
