"""CircuitSpec validation, readout rules, the entangler registry and the CNOT basis permutation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qnn_dense_reference import cnot, entangler_pairs

from ceas.errors import UnknownNameError, ValidationError
from ceas.qnn import CircuitSpec, Entangler, register_entangler
from ceas.qnn.circuit import ENTANGLERS, cnot_permutation, get_entangler, z_signs


def test_parameter_count_and_shapes():
    spec = CircuitSpec(n_qubits=5, n_layers=3)
    assert spec.n_params == 2 * 3 * 5
    assert spec.dim == 32
    assert spec.n_outputs == 1


@pytest.mark.parametrize(
    ("entangler", "n", "classes", "expected"),
    [
        ("ring", 4, 2, (0,)),
        ("linear", 4, 2, (3,)),
        ("all_to_all", 4, 2, (3,)),
        ("ring", 4, 3, (0, 1, 2)),
        ("linear", 5, 3, (2, 3, 4)),
        ("all_to_all", 3, 3, (0, 1, 2)),
        ("ring", 1, 2, (0,)),
    ],
)
def test_default_readout_follows_the_light_cone(entangler, n, classes, expected):
    spec = CircuitSpec(n_qubits=n, n_layers=1, entangler=entangler, n_classes=classes)
    assert spec.readout_qubits == expected
    assert spec.n_outputs == len(expected)


def test_ring_pairs_small_cases():
    assert CircuitSpec(1, 1, "ring").cnot_pairs == ()
    assert CircuitSpec(2, 1, "ring").cnot_pairs == ((0, 1), (1, 0))
    assert CircuitSpec(4, 1, "ring").cnot_pairs == ((0, 1), (1, 2), (2, 3), (3, 0))
    assert CircuitSpec(4, 1, "linear").cnot_pairs == ((0, 1), (1, 2), (2, 3))
    assert CircuitSpec(3, 1, "all_to_all").cnot_pairs == ((0, 1), (0, 2), (1, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_qubits": 0, "n_layers": 1}, "n_qubits must be an integer in [1, 24], got 0"),
        ({"n_qubits": 2.0, "n_layers": 1}, "n_qubits must be an integer in [1, 24], got 2.0"),
        ({"n_qubits": 3, "n_layers": 0}, "n_layers must be an integer in [1, inf), got 0"),
        (
            {"n_qubits": 3, "n_layers": 1, "n_classes": 1},
            "n_classes must be an integer in [2, inf)",
        ),
        ({"n_qubits": 3, "n_layers": 1, "n_classes": 4}, "n_classes must be in [2, n_qubits = 3]"),
        ({"n_qubits": 3, "n_layers": 1, "reupload": 1}, "reupload must be a bool, got 1"),
    ],
)
def test_invalid_specs_name_the_field_and_value(kwargs, message):
    with pytest.raises(ValidationError) as err:
        CircuitSpec(**kwargs)
    assert message in str(err.value)


def test_unknown_entangler_suggests_closest_name():
    with pytest.raises(UnknownNameError) as err:
        CircuitSpec(3, 1, entangler="rnig")
    assert "did you mean 'ring'" in str(err.value)
    assert "allowed: one of all_to_all, linear, ring" in str(err.value)


def test_registered_entangler_is_usable_and_checked():
    name = "test_reverse_chain"
    register_entangler(
        Entangler(name, lambda n: tuple((q + 1, q) for q in range(n - 1)), readout="first")
    )
    try:
        spec = CircuitSpec(3, 1, entangler=name)
        assert spec.cnot_pairs == ((1, 0), (2, 1))
        assert spec.readout_qubits == (0,)
        register_entangler(Entangler(name, lambda n: ((0, 0),), readout="first"))
        with pytest.raises(ValidationError, match="distinct qubits"):
            CircuitSpec(3, 1, entangler=name)
    finally:
        ENTANGLERS.pop(name)
    with pytest.raises(UnknownNameError):
        get_entangler(name)


def test_single_cnot_truth_table():
    # CNOT(0, 1) on 2 qubits, wire 0 most significant: |10> -> |11>, |11> -> |10>
    assert list(cnot_permutation(2, ((0, 1),))) == [0, 1, 3, 2]
    # CNOT(1, 0): |01> -> |11>, |11> -> |01>
    assert list(cnot_permutation(2, ((1, 0),))) == [0, 3, 2, 1]


@pytest.mark.parametrize("entangler", ["ring", "linear", "all_to_all"])
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_permutation_equals_product_of_cnot_matrices(entangler, n):
    perm = cnot_permutation(n, tuple(entangler_pairs(entangler, n)))
    dense = np.eye(2**n)
    for c, t in entangler_pairs(entangler, n):
        dense = np.real(cnot(c, t, n)) @ dense
    expected = np.zeros((2**n, 2**n))
    expected[perm, np.arange(2**n)] = 1.0  # C|j> = |perm[j]>
    np.testing.assert_array_equal(dense, expected)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 7),
    pairs=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=10),
)
def test_any_cnot_sequence_is_a_bijection_and_inverts_in_reverse(n, pairs):
    pairs = tuple((c, t) for c, t in pairs if c < n and t < n and c != t)
    perm = cnot_permutation(n, pairs)
    assert sorted(perm) == list(range(2**n))
    back = cnot_permutation(n, tuple(reversed(pairs)))  # every CNOT is its own inverse
    np.testing.assert_array_equal(back[perm], np.arange(2**n))


def test_z_signs_match_bits():
    z = z_signs(3)
    assert z.shape == (8, 3)
    # |011> : wire 0 is 0 (+1), wires 1 and 2 are 1 (-1)
    np.testing.assert_array_equal(z[0b011], [1, -1, -1])


def test_readout_qubit_chosen_independently_of_the_entangler():
    from qnn_dense_reference import expval_z, state

    from ceas.qnn import QNNSimulator

    # default unchanged: the field unset reproduces the entangler's choice
    assert CircuitSpec(4, 2, "linear").readout_qubits == (3,)
    assert CircuitSpec(4, 2, "linear", readout_qubit=None) == CircuitSpec(4, 2, "linear")
    # <Z_0> on a linear circuit can now be asked for, and it matches a dense reference
    spec = CircuitSpec(4, 2, "linear", readout_qubit=0)
    assert spec.readout_qubits == (0,)
    rng = np.random.default_rng(4)
    theta = rng.uniform(0, 2 * np.pi, (1, spec.n_params))
    x = rng.uniform(0, np.pi, (1, 3, 4))
    sim = QNNSimulator(spec)
    e = sim.expval(theta, x)[0, :, 0]
    ref = [expval_z(state(theta[0], xb, 4, 2, "linear"), 0, 4) for xb in x[0]]
    np.testing.assert_allclose(e, ref, atol=1e-12)
    jac = sim.jacobian(theta, x)[0, :, 0].reshape(3, 2, 4, 2)  # (B, L, n, 2)
    # qubit 0 is never a CNOT target there: no other qubit's last-layer gate reaches Z_0, and with one layer
    # its light cone holds only its own parameters (why the default reads out the last qubit)
    assert np.all(np.abs(jac[:, 1, 1:]) < 1e-12) and np.all(np.abs(jac[:, :, 0, 0]) > 0)
    one = CircuitSpec(4, 1, "linear", readout_qubit=0)
    jac1 = QNNSimulator(one).jacobian(theta[:, :8], x)[0, :, 0].reshape(3, 4, 2)
    assert np.all(np.abs(jac1[:, 1:]) < 1e-12)
    # several outputs: consecutive qubits from the first
    assert CircuitSpec(5, 1, "ring", n_classes=3, readout_qubit=1).readout_qubits == (1, 2, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"readout_qubit": 4}, "readout_qubit must be an integer in [0, 3], got 4"),
        ({"readout_qubit": -1}, "readout_qubit must be an integer in [0, 3], got -1"),
        ({"readout_qubit": 2, "n_classes": 3}, "readout_qubit must be an integer in [0, 1], got 2"),
        ({"readout_qubit": True}, "readout_qubit must be an integer in [0, 3], got True"),
    ],
)
def test_readout_qubit_is_validated(kwargs, message):
    with pytest.raises(ValidationError) as err:
        CircuitSpec(4, 1, **kwargs)
    assert message in str(err.value)


def test_readout_qubit_config_field():
    from ceas.config import load_config
    from ceas.errors import ConfigError

    cfg = load_config("quick", ["model.readout_qubit=2"])
    assert cfg.model.circuit().readout_qubits == (2,)
    assert load_config("quick", []).model.circuit().readout_qubits == (0,)
    with pytest.raises(ConfigError, match="model.readout_qubit: 4 is not allowed"):
        load_config("quick", ["model.readout_qubit=4"])


def test_two_qubit_ring_uses_both_directions_so_qubit_0_sees_qubit_1():
    from ceas.qnn import QNNSimulator

    spec = CircuitSpec(2, 1, "ring")
    assert spec.cnot_pairs == (
        (0, 1),
        (1, 0),
    )  # the convention: the closing CNOT(1, 0) is kept for n = 2
    rng = np.random.default_rng(2)
    theta = rng.uniform(0, 2 * np.pi, (1, spec.n_params))
    x = rng.uniform(0, np.pi, (1, 4, 2))
    jac = QNNSimulator(spec).jacobian(theta, x)[0, :, 0].reshape(4, 1, 2, 2)
    assert np.all(np.abs(jac[:, 0, 1, 0]) > 1e-9)  # ∂<Z_0>/∂(RY on qubit 1) is not identically zero
