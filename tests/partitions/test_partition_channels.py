"""The pair channels of the partition schemes against simulations of the protocols themselves."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.errors import ValidationError
from ceas.network.teleportation import teleport_pauli, teleport_qubit
from ceas.network.werner import werner_bell_vector
from ceas.partitions import _density as dm
from ceas.partitions import (
    remote_cnot_error_probs,
    teleport_error_probs,
    werner_pauli_mixture,
)

from . import partition_dense_reference as ref

PAULI = {"I": ref.I2, "X": ref.X, "Y": ref.Y, "Z": ref.Z}


def random_density(dim: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim))
    rho = a @ a.conj().T
    return rho / np.trace(rho)


@pytest.mark.parametrize("seed", range(5))
def test_teleport_protocol_is_the_pauli_channel_of_the_pair(seed):
    rng = np.random.default_rng(seed)
    lam = rng.dirichlet(np.ones(4))
    rho = random_density(2, rng)
    out = ref.teleport_protocol(rho, lam)
    probs = teleport_error_probs(lam)
    expect = sum(p * PAULI[e] @ rho @ PAULI[e] for p, e in zip(probs, "IXYZ"))
    np.testing.assert_allclose(out, expect, atol=1e-13)
    np.testing.assert_allclose(
        out, teleport_pauli(rho, lam), atol=1e-13
    )  # the network layer's form


@pytest.mark.parametrize("w", [0.0, 0.3, 0.81, 1.0])
def test_werner_teleportation_is_depolarising_in_the_kernel(w):
    rng = np.random.default_rng(1)
    rho3 = random_density(8, rng)
    out = dm.depolarise(rho3[None].copy(), 1, 3, np.array([w]))[0]
    kraus = ref.depolarising_kraus(1, 3, w)
    np.testing.assert_allclose(out, ref.kraus_apply(rho3, kraus), atol=1e-14)
    # on one qubit it is the network layer's teleport_qubit
    rho1 = random_density(2, rng)
    np.testing.assert_allclose(
        dm.depolarise(rho1[None].copy(), 0, 1, np.array([w]))[0],
        teleport_qubit(rho1, w),
        atol=1e-15,
    )


@pytest.mark.parametrize("seed", range(6))
def test_gate_teleportation_is_cnot_then_the_derived_pauli_channel(seed):
    """The protocol's full output (not only its Pauli diagonal) equals CNOT followed by the derived channel."""
    rng = np.random.default_rng(seed)
    lam = rng.dirichlet(np.ones(4)) if seed else werner_bell_vector(0.9)
    rho = random_density(4, rng)
    out = ref.remote_cnot_protocol(rho, lam)
    g = ref.cnot(0, 1, 2)
    ideal = g @ rho @ g.conj().T
    probs = remote_cnot_error_probs(lam)
    ops = [np.kron(PAULI[a], PAULI[b]) for a, b in ("II", "IX", "ZI", "ZX")]
    expect = sum(p * e @ ideal @ e for p, e in zip(probs, ops))
    np.testing.assert_allclose(out, expect, atol=1e-13)
    # and the batched kernel applies the same channel (control and target either way round, in a 3-qubit register)
    big = random_density(8, rng)
    for c, t in ((0, 2), (2, 1)):
        kern = dm.remote_cnot_noise(big[None], c, t, 3, probs[None])[0]
        ops3 = [ref.on_wires({c: PAULI[a], t: PAULI[b]}, 3) for a, b in ("II", "IX", "ZI", "ZX")]
        np.testing.assert_allclose(
            kern, sum(p * e @ big @ e for p, e in zip(probs, ops3)), atol=1e-14
        )


def test_werner_remote_cnot_channel_closed_form_and_not_a_product():
    w = 0.6
    probs = remote_cnot_error_probs(werner_pauli_mixture(w))
    np.testing.assert_allclose(probs, [(1 + 3 * w) / 4, (1 - w) / 4, (1 - w) / 4, (1 - w) / 4])
    assert probs[1:].sum() == pytest.approx(1 - (3 * w + 1) / 4)  # error probability = 1 - F
    # independent dephasing of c and bit flip of t would need p_IX p_ZI = p_II p_ZX
    assert abs(probs[1] * probs[2] - probs[0] * probs[3]) > 0.05
    np.testing.assert_allclose(werner_pauli_mixture(w), werner_bell_vector((3 * w + 1) / 4))


def test_channel_arguments_are_checked():
    with pytest.raises(ValidationError, match=r"werner must be in \[0, 1\], got 1.2"):
        werner_pauli_mixture(1.2)
    with pytest.raises(ValidationError, match="bell must have shape"):
        remote_cnot_error_probs([0.5, 0.5])
    with pytest.raises(ValidationError, match="bell entries must sum to 1"):
        teleport_error_probs([0.5, 0.5, 0.5, 0.0])
