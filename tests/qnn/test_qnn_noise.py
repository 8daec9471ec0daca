"""Node noise: contraction and depolarised QFI against explicit density-matrix computations."""

from __future__ import annotations

import numpy as np
import pytest
import qnn_dense_reference as ref

from ceas.errors import ValidationError
from ceas.qnn import CircuitSpec, NodeNoise, QNNSimulator, depolarised_qfi
from ceas.rng import stream


def test_contraction_and_mixing_closed_forms():
    noise = NodeNoise(
        depolarizing=np.array([0.0, 0.1, 1.0]), readout_error=np.array([0.5, 0.2, 0.0])
    )
    np.testing.assert_allclose(noise.contraction(3), [0.0, 0.9**3 * 0.6, 0.0])
    np.testing.assert_allclose(noise.mixing(3), [0.0, 1 - 0.9**3, 1.0])
    assert NodeNoise(np.array([0.2])).readout_error.tolist() == [0.0]
    assert noise.subset([1]).depolarizing.tolist() == [0.1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depolarizing": np.array([0.1, 1.2])}, "depolarizing must be in [0, 1], got 1.2"),
        (
            {"depolarizing": np.array([0.1]), "readout_error": np.array([0.6])},
            "readout_error must be in [0, 0.5], got 0.6",
        ),
        (
            {"depolarizing": np.array([0.1, 0.2]), "readout_error": np.array([0.1])},
            "readout_error must have shape (2,)",
        ),
        ({"depolarizing": 0.1}, "depolarizing must have 1 dimensions, got shape ()"),
        ({"depolarizing": np.array([np.nan])}, "depolarizing must contain only finite values"),
    ],
)
def test_invalid_noise_is_rejected(kwargs, message):
    with pytest.raises(ValidationError) as err:
        NodeNoise(**kwargs)
    assert message in str(err.value)


def test_noise_arrays_are_read_only_copies():
    p = np.array([0.1, 0.2])
    noise = NodeNoise(p)
    p[0] = 0.9
    assert noise.depolarizing[0] == 0.1
    with pytest.raises(ValueError):
        noise.depolarizing[0] = 0.5


@pytest.mark.parametrize("entangler", ["ring", "linear"])
def test_contraction_matches_density_matrix_with_layerwise_depolarising_and_readout_flips(
    entangler,
):
    n, layers = 3, 3
    spec = CircuitSpec(n, layers, entangler, n_classes=3)
    rng = stream(11, "noise-dm")
    p = np.array([0.0, 0.13, 0.31])
    r = np.array([0.07, 0.0, 0.22])
    theta = rng.uniform(0, 2 * np.pi, (3, spec.n_params))
    x = rng.uniform(0, np.pi, (3, 2, n))
    noise = NodeNoise(p, r)
    e_model = QNNSimulator(spec).expval(theta, x) * noise.contraction(layers)[:, None, None]
    for k in range(3):
        for b in range(2):
            rho = ref.density(theta[k], x[k, b], n, layers, entangler, p=p[k])
            want = [ref.readout_expval(rho, q, n, r[k]) for q in spec.readout_qubits]
            np.testing.assert_allclose(e_model[k, b], want, atol=1e-12)


@pytest.mark.parametrize("reupload", [False, True])
def test_depolarised_qfi_matches_sld_of_the_density_matrix(reupload):
    n, layers, p = 3, 2, 0.17
    spec = CircuitSpec(n, layers, reupload=reupload)
    rng = stream(12, "noise-qfi")
    theta = rng.uniform(0, 2 * np.pi, spec.n_params)
    x = rng.uniform(0, np.pi, n)
    rho = ref.density(theta, x, n, layers, reupload=reupload, p=p)
    # each matrix element of ρ(θ_i) is a trigonometric polynomial of degree 1: the two-term shift rule
    # gives ∂ρ/∂θ_i exactly
    drho = []
    for i in range(spec.n_params):
        up, down = theta.copy(), theta.copy()
        up[i] += np.pi / 2
        down[i] -= np.pi / 2
        drho.append(
            (
                ref.density(up, x, n, layers, reupload=reupload, p=p)
                - ref.density(down, x, n, layers, reupload=reupload, p=p)
            )
            / 2
        )
    f_sld = ref.sld_qfi(rho, drho)
    sim = QNNSimulator(spec)
    noise = NodeNoise(np.array([p]))
    f_diag = sim.depolarised_qfi_diagonal(theta[None], x[None, None], noise)[0, 0]
    np.testing.assert_allclose(f_diag, np.diag(f_sld), atol=1e-8)
    q = noise.mixing(layers)[0]
    f_full = depolarised_qfi(sim.qfi_matrix(theta[None], x[None, None])[0, 0], q, spec.dim)
    np.testing.assert_allclose(f_full, f_sld, atol=1e-8)


def test_depolarised_qfi_limits_and_validation():
    f = np.array([0.3, 1.0])
    np.testing.assert_allclose(depolarised_qfi(f, 0.0, 4), f)
    np.testing.assert_allclose(depolarised_qfi(f, 1.0, 4), 0.0)
    # q = 1/2, d = 2: (1/4) / (1/2 + 1/2) = 1/4
    np.testing.assert_allclose(depolarised_qfi(f, 0.5, 2), f / 4)
    with pytest.raises(ValidationError, match=r"q must be in \[0, 1\], got 1.5"):
        depolarised_qfi(f, 1.5, 4)
    with pytest.raises(ValidationError, match=r"dim must be an integer in \[2, inf\), got 1"):
        depolarised_qfi(f, 0.5, 1)
