"""The learning layer's config section: SPEC defaults, strict keys, bounds on the fields."""

from __future__ import annotations

import pydantic
import pytest
from annotated_types import Ge, Gt, Le

from ceas.qnn import CircuitSpec, QNNParams


def test_defaults_are_the_spec_defaults():
    p = QNNParams()
    assert (p.n_qubits, p.n_layers, p.entangler, p.reupload, p.loss) == (4, 4, "ring", False, "bce")
    assert p.output_scale == 4.0 and p.qfi_refresh_every == 5
    assert p.circuit() == CircuitSpec(4, 4, "ring", 2, False)
    assert p.circuit(3).n_classes == 3
    for name, field in QNNParams.model_fields.items():
        assert field.description, f"{name} has no description"


def test_unknown_keys_and_options_fail():
    with pytest.raises(pydantic.ValidationError, match="extra_forbidden"):
        QNNParams(n_qbits=4)
    with pytest.raises(pydantic.ValidationError, match="ring"):
        QNNParams(entangler="star")
    with pytest.raises(pydantic.ValidationError):
        QNNParams().model_copy(update={"n_qubits": 5}).__setattr__("n_qubits", 6)


@pytest.mark.parametrize("name", [n for n, f in QNNParams.model_fields.items() if f.metadata])
def test_every_bound_is_enforced(name):
    """Walk the constraints declared on each field: a value just past each bound is rejected."""
    field = QNNParams.model_fields[name]
    integral = field.annotation is int
    step = 1 if integral else 1e-9
    for c in field.metadata:
        if isinstance(c, Ge):
            bad = c.ge - step
        elif isinstance(c, Gt):
            bad = c.gt
        elif isinstance(c, Le):
            bad = c.le + step
        else:
            continue
        with pytest.raises(pydantic.ValidationError):
            QNNParams(**{name: bad})
