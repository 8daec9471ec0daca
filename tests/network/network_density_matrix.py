"""An independent, explicit density-matrix reference for the network layer's closed forms.

Plain numpy linear algebra on 2-, 3- and 4-qubit density matrices: states are built from kets, gates are applied
as full 2^n x 2^n unitaries, measurements as projectors. Nothing here imports ceas, so agreement with
``ceas.network`` is a genuine cross-check.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

I2 = np.eye(2, dtype=complex)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
Z = np.array([[1, 0], [0, -1]], dtype=complex)
PAULIS = (I2, X, Y, Z)

_k = np.eye(4, dtype=complex)
PHI_PLUS = (_k[0] + _k[3]) / np.sqrt(2)
PHI_MINUS = (_k[0] - _k[3]) / np.sqrt(2)
PSI_PLUS = (_k[1] + _k[2]) / np.sqrt(2)
PSI_MINUS = (_k[1] - _k[2]) / np.sqrt(2)
# the order used by ceas.network (Deutsch et al. 1996): A = phi+, B = psi-, C = psi+, D = phi-
BELL_KETS = (PHI_PLUS, PSI_MINUS, PSI_PLUS, PHI_MINUS)


def kron(*ops):
    return reduce(np.kron, ops)


def projector(ket):
    return np.outer(ket, ket.conj())


def bell_diagonal(lam):
    """4x4 density matrix sum_k lam_k |B_k><B_k|."""
    return sum(l * projector(b) for l, b in zip(lam, BELL_KETS))


def werner(fidelity):
    """Werner state with the given fidelity to |Phi+>: w |Phi+><Phi+| + (1 - w) I/4."""
    w = (4 * fidelity - 1) / 3
    return w * projector(PHI_PLUS) + (1 - w) * np.eye(4) / 4


def bell_components(rho):
    """<B_k|rho|B_k> for the four Bell states (real)."""
    return np.array([np.real(b.conj() @ rho @ b) for b in BELL_KETS])


def embed(op, qubit, n):
    """Single-qubit ``op`` acting on ``qubit`` of an n-qubit register (qubit 0 most significant)."""
    return kron(*[op if q == qubit else I2 for q in range(n)])


def cnot(control, target, n):
    p0 = np.array([[1, 0], [0, 0]], dtype=complex)
    p1 = np.array([[0, 0], [0, 1]], dtype=complex)
    a = kron(*[p0 if q == control else I2 for q in range(n)])
    b = kron(*[p1 if q == control else (X if q == target else I2) for q in range(n)])
    return a + b


def rx(theta):
    return np.cos(theta / 2) * I2 - 1j * np.sin(theta / 2) * X


def conjugate(rho, u):
    return u @ rho @ u.conj().T


def depolarize(rho, qubit, n, keep):
    """Single-qubit depolarising channel rho -> keep*rho + (1-keep)*Tr_q(rho) x I/2 on ``qubit``, via Kraus ops."""
    out = (1 + 3 * keep) / 4 * rho
    for p in (X, Y, Z):
        op = embed(p, qubit, n)
        out = out + (1 - keep) / 4 * op @ rho @ op.conj().T
    return out


def partial_trace(rho, keep, n):
    """Trace out every qubit not in ``keep`` (a sorted tuple)."""
    t = rho.reshape([2] * (2 * n))
    traced = [q for q in range(n) if q not in keep]
    for count, q in enumerate(sorted(traced, reverse=True)):
        m = n - count
        t = np.trace(t, axis1=q, axis2=q + m)
    d = 2 ** len(keep)
    return t.reshape(d, d)


def z_projector(qubits_values, n):
    """Projector onto computational-basis values on the given qubits, e.g. {2: 0, 3: 1}."""
    ops = []
    for q in range(n):
        if q in qubits_values:
            v = qubits_values[q]
            ops.append(np.diag([1.0 - v, float(v)]).astype(complex))
        else:
            ops.append(I2)
    return kron(*ops)


def fidelity(rho, ket=PHI_PLUS):
    return float(np.real(ket.conj() @ rho @ ket))
