"""Batched density-matrix kernels for the partitioned circuits: states of shape (M, D, D), D = 2^n.

M stacks whatever the caller batches (nodes × shifted parameter sets × samples). Wire 0 is the most significant
bit, as in :mod:`ceas.qnn.circuit`. No validation here; the schemes check their inputs once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas.qnn.circuit import z_signs
from ceas.qnn.gates import kron_chain, kron_vectors

# Local gates are applied to groups of up to this many qubits at once: one (2^g × 2^g) matmul per side.
GROUP = 4


@dataclass(frozen=True)
class Permute:
    """A run of CNOTs as a basis permutation: ρ → CρC†, given by the inverse permutation ``inverse`` (D,);
    ``cnots`` lists the (control, target) pairs of the run in order (the trajectory simulator pushes Pauli errors
    through them)."""

    inverse: np.ndarray
    cnots: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Depolarise:
    """Teleportation of ``qubit`` through the pair in werner column ``slot``: ρ → wρ + (1-w)·tr_q(ρ)⊗I/2."""

    qubit: int
    slot: int


@dataclass(frozen=True)
class RemoteCNOTNoise:
    """Error channel of a remote CNOT (control, target) through the pair in probability column ``slot``."""

    control: int
    target: int
    slot: int


def product_state(x: np.ndarray) -> np.ndarray:
    """ρ = |v⟩⟨v| with |v⟩ = ⊗_q RY(x_q)|0⟩; x (M, n) radians -> (M, D, D) complex."""
    half = x / 2.0
    v = kron_vectors(np.stack([np.cos(half), np.sin(half)], axis=-1))
    return (v[:, :, None] * v[:, None, :]).astype(np.complex128)


def zero_state(m: int, dim: int) -> np.ndarray:
    """|0…0⟩⟨0…0|, shape (M, D, D)."""
    rho = np.zeros((m, dim, dim), dtype=np.complex128)
    rho[:, 0, 0] = 1.0
    return rho


def _left_multiply(rho: np.ndarray, k: np.ndarray, before: int, size: int) -> np.ndarray:
    """out[m, a, i, r] = Σ_j k[m, i, j]·rho[m, a, j, r] for rho viewed as (M, before, size, rest).

    The acted-on axis is moved to the front so that the product is one batched GEMM per state
    (numpy's matmul falls back to a slow loop on broadcast, strided operands)."""
    m = rho.shape[0]
    if before == 1:
        return np.matmul(k, rho.reshape(m, size, -1))
    r = rho.reshape(m, before, size, -1).transpose(0, 2, 1, 3).reshape(m, size, -1)
    out = np.matmul(k, r).reshape(m, size, before, -1).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(out)


def apply_local(rho: np.ndarray, u: np.ndarray) -> np.ndarray:
    """ρ → KρK† with K = ⊗_q u_q; u (M, n, 2, 2) per state. Returns a new (M, D, D) array."""
    m, dim, _ = rho.shape
    n = u.shape[1]
    for start in range(0, n, GROUP):  # loop over qubit groups (n/4 of them), each a batched GEMM
        g = min(GROUP, n - start)
        k = kron_chain(u[:, start : start + g])  # (M, G, G)
        size = 2**g
        before = 2**start
        rho = _left_multiply(rho, k, before, size)  # rows: Kρ
        # columns: ρK† = (K̄ρᵀ)ᵀ with the column index split as (before, size, after)
        rho = _left_multiply(rho, k.conj(), dim * before, size)
        rho = rho.reshape(m, dim, dim)
    return rho


def apply_permute(rho: np.ndarray, op: Permute) -> np.ndarray:
    """ρ → CρC† for the basis permutation C|j⟩ = |c[j]⟩: (CρC†)[k, l] = ρ[c⁻¹[k], c⁻¹[l]]."""
    inv = op.inverse
    return np.take(np.take(rho, inv, axis=1), inv, axis=2)


def depolarise(rho: np.ndarray, qubit: int, n: int, w: np.ndarray) -> np.ndarray:
    """ρ → wρ + (1-w)·tr_q(ρ)⊗I/2 on ``qubit``; w (M,). Returns a new array."""
    m, dim, _ = rho.shape
    a, b = 2**qubit, 2 ** (n - qubit - 1)
    r = rho.reshape(m, a, 2, b, a, 2, b)
    half_trace = 0.5 * (r[:, :, 0, :, :, 0, :] + r[:, :, 1, :, :, 1, :])
    out = w[:, None, None, None, None, None, None] * r
    lost = (1.0 - w)[:, None, None, None, None]
    out[:, :, 0, :, :, 0, :] += lost * half_trace
    out[:, :, 1, :, :, 1, :] += lost * half_trace
    return out.reshape(m, dim, dim)


def block_depolarise(rho: np.ndarray, qubits: tuple[int, ...], n: int, p: np.ndarray) -> np.ndarray:
    """ρ → (1−p)ρ + p·tr_Q(ρ)⊗I/2^|Q| on the qubits Q; p (M,). Q = all qubits is the global (1−p)ρ + p·I/d."""
    m, dim, _ = rho.shape
    if len(qubits) == n:
        out = (1.0 - p)[:, None, None] * rho
        out[:, np.arange(dim), np.arange(dim)] += (p / dim)[:, None]
        return out
    mixed = rho
    for q in qubits:  # tr_Q(ρ)⊗I/2^|Q| is full depolarising (w = 0) of each qubit of Q in turn
        mixed = depolarise(mixed, q, n, np.zeros(m))
    return (1.0 - p)[:, None, None] * rho + p[:, None, None] * mixed


def remote_cnot_noise(
    rho: np.ndarray, control: int, target: int, n: int, probs: np.ndarray
) -> np.ndarray:
    """ρ → p_II ρ + p_IX X_tρX_t + p_ZI Z_cρZ_c + p_ZX (Z_cX_t)ρ(Z_cX_t); probs (M, 4) in that order."""
    m, dim, _ = rho.shape
    sign = z_signs(n)[:, control]
    s = sign[:, None] * sign[None, :]  # Z_c ρ Z_c = s ∘ ρ
    a, b = 2**target, 2 ** (n - target - 1)
    # X_t ρ X_t: reverse the target bit of the row and column index (a view, no gather)
    flipped = rho.reshape(m, a, 2, b, a, 2, b)[:, :, ::-1, :, :, ::-1, :].reshape(m, dim, dim)
    p = probs[:, :, None, None]
    return (p[:, 0] + p[:, 2] * s) * rho + (p[:, 1] + p[:, 3] * s) * flipped


def z_expectations(rho: np.ndarray, qubits: tuple[int, ...], n: int) -> np.ndarray:
    """⟨Z_q⟩ = tr(Z_q ρ) for each of ``qubits``: (M, D, D) -> (M, len(qubits)) float."""
    diag = np.real(np.diagonal(rho, axis1=1, axis2=2))
    return diag @ z_signs(n)[:, list(qubits)]
