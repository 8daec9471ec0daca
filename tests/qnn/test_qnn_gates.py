"""Gate helpers: textbook matrices, Kronecker products and the realified form, against plain numpy."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from qnn_dense_reference import ry, rz

from ceas.qnn.gates import kron_chain, kron_vectors, local_unitary, realify, ry_matrix, rz_phases


@settings(max_examples=25, deadline=None)
@given(a=st.floats(-10, 10), b=st.floats(-10, 10))
def test_single_qubit_gates_match_textbook_definitions(a, b):
    np.testing.assert_allclose(ry_matrix(a), ry(a), atol=1e-15)
    np.testing.assert_allclose(np.diag(rz_phases(b)), rz(b), atol=1e-15)
    np.testing.assert_allclose(local_unitary(a, b), rz(b) @ ry(a), atol=1e-15)
    u = local_unitary(a, b)
    np.testing.assert_allclose(u @ u.conj().T, np.eye(2), atol=1e-14)


def test_kron_chain_and_vectors_match_np_kron_with_batch_axes():
    rng = np.random.default_rng(0)
    mats = rng.normal(size=(2, 3, 3, 2, 2)) + 1j * rng.normal(size=(2, 3, 3, 2, 2))
    out = kron_chain(mats)  # (2, 3, 8, 8)
    for i in range(2):
        for j in range(3):
            want = np.kron(np.kron(mats[i, j, 0], mats[i, j, 1]), mats[i, j, 2])
            np.testing.assert_allclose(out[i, j], want, atol=1e-14)
    vecs = rng.normal(size=(4, 3, 2))
    got = kron_vectors(vecs)
    for i in range(4):
        np.testing.assert_allclose(got[i], np.kron(np.kron(vecs[i, 0], vecs[i, 1]), vecs[i, 2]))


@settings(max_examples=20, deadline=None)
@given(g=st.integers(1, 4), seed=st.integers(0, 1000))
def test_realified_matrix_acts_like_the_complex_one_on_interleaved_vectors(g, seed):
    rng = np.random.default_rng(seed)
    big = 2**g
    k = rng.normal(size=(3, big, big)) + 1j * rng.normal(size=(3, big, big))
    x = rng.normal(size=(3, big)) + 1j * rng.normal(size=(3, big))
    w = realify(k)
    assert w.shape == (3, 2 * big, 2 * big) and w.flags["C_CONTIGUOUS"]
    y = np.einsum("kij,kj->ki", k, x)
    y_real = np.einsum("kij,kj->ki", w, x.view(np.float64).reshape(3, 2 * big))
    np.testing.assert_allclose(y_real, y.view(np.float64).reshape(3, 2 * big), atol=1e-12)
    # realify(K)ᵀ = realify(K†): the engine builds forward operands this way
    np.testing.assert_allclose(realify(np.conj(k).swapaxes(-1, -2)), w.swapaxes(-1, -2), atol=0)
