"""Gate matrices as pure functions with batch axes first (the PennyLane habit: metadata in one place).

All angles are in radians; every function broadcasts over leading axes.
"""

from __future__ import annotations

import numpy as np


def ry_matrix(angle: np.ndarray) -> np.ndarray:
    """``RY(a) = [[cos a/2, -sin a/2], [sin a/2, cos a/2]]``, shape (..., 2, 2), real."""
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle / 2), np.sin(angle / 2)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def rz_phases(angle: np.ndarray) -> np.ndarray:
    """Diagonal of ``RZ(a) = diag(e^{-ia/2}, e^{ia/2})``, shape (..., 2), complex."""
    half = np.exp(-0.5j * np.asarray(angle, dtype=np.float64))
    return np.stack([half, half.conj()], -1)


def local_unitary(ry_angle: np.ndarray, rz_angle: np.ndarray) -> np.ndarray:
    """``RZ(b)·RY(a)`` (RY first), shape (..., 2, 2), complex; the two angle arrays broadcast."""
    return rz_phases(rz_angle)[..., :, None] * ry_matrix(ry_angle)


def kron_chain(mats: np.ndarray) -> np.ndarray:
    """Kronecker product over axis -3, first factor most significant.

    Parameters
    ----------
    mats : ndarray, shape (..., g, 2, 2)

    Returns
    -------
    ndarray, shape (..., 2**g, 2**g)
        ``mats[..., 0, :, :] ⊗ mats[..., 1, :, :] ⊗ …``
    """
    out = mats[..., 0, :, :]
    for t in range(1, mats.shape[-3]):
        m = mats[..., t, :, :]
        d = out.shape[-1]
        out = (out[..., :, None, :, None] * m[..., None, :, None, :]).reshape(
            *np.broadcast_shapes(out.shape[:-2], m.shape[:-2]), 2 * d, 2 * d
        )
    return out


def kron_vectors(vecs: np.ndarray) -> np.ndarray:
    """Kronecker product of vectors over axis -2: (..., g, 2) -> (..., 2**g), first factor most significant."""
    out = vecs[..., 0, :]
    for t in range(1, vecs.shape[-2]):
        out = (out[..., :, None] * vecs[..., t, None, :]).reshape(*out.shape[:-1], -1)
    return out


def realify(mat: np.ndarray) -> np.ndarray:
    """Real form of a complex matrix acting on interleaved (re, im) pairs.

    For ``y = K x`` with complex vectors stored as ``[Re x_0, Im x_0, Re x_1, …]``, the real matrix ``W``
    with ``y_real = W x_real`` is ``W[2i+c, 2j+c'] = [[Re K, -Im K], [Im K, Re K]][c, c']``.

    Parameters
    ----------
    mat : ndarray, shape (..., G, G), complex

    Returns
    -------
    ndarray, shape (..., 2G, 2G), float64

    Notes
    -----
    Over the columns (j, c'), row (i, 0) of W is the interleaved float view of the complex row
    ``conj(K[i, :])`` and row (i, 1) that of ``1j·conj(K[i, :])``, so W is one stack of the two viewed as
    floats (no strided element-wise writes).
    """
    g = mat.shape[-1]
    out = np.empty((*mat.shape[:-1], 2, g), dtype=np.complex128)
    np.conjugate(mat, out=out[..., 0, :])
    np.multiply(out[..., 0, :], 1j, out=out[..., 1, :])
    return out.view(np.float64).reshape(*mat.shape[:-2], 2 * g, 2 * g)
