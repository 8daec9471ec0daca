"""An independent, deliberately plain reference for the learning-layer tests.

Full 2^n×2^n matrices built with ``np.kron`` from textbook gate definitions, one sample at a time; pure
states and density matrices. Shares no code with ``ceas.qnn`` (not even the CNOT permutation), so the
simulator's fast paths are checked against something written differently.
"""

from __future__ import annotations

import numpy as np

I2 = np.eye(2)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1.0, -1.0]).astype(complex)
P0 = np.diag([1.0, 0.0])
P1 = np.diag([0.0, 1.0])


def ry(a):
    c, s = np.cos(a / 2), np.sin(a / 2)
    return np.array([[c, -s], [s, c]], dtype=complex)


def rz(a):
    return np.diag([np.exp(-0.5j * a), np.exp(0.5j * a)])


def on_wire(op, wire, n):
    """op on ``wire`` (wire 0 = leftmost Kronecker factor = most significant bit)."""
    mats = [I2] * n
    mats[wire] = op
    out = np.array([[1.0 + 0j]])
    for m in mats:
        out = np.kron(out, m)
    return out


def cnot(control, target, n):
    return on_wire(P0, control, n) + on_wire(P1, control, n) @ on_wire(X, target, n)


def entangler_pairs(name, n):
    if name == "ring":
        if n == 1:
            return []
        if n == 2:
            return [(0, 1), (1, 0)]
        return [(q, q + 1) for q in range(n - 1)] + [(n - 1, 0)]
    if name == "linear":
        return [(q, q + 1) for q in range(n - 1)]
    if name == "all_to_all":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    raise ValueError(name)


def layer_unitaries(theta, x, n, n_layers, entangler, reupload):
    """List of the 2^n×2^n unitaries of each layer (encoding folded into the first / every layer)."""
    t = np.asarray(theta).reshape(n_layers, n, 2)
    ent = np.eye(2**n, dtype=complex)
    for c, tg in entangler_pairs(entangler, n):
        ent = cnot(c, tg, n) @ ent
    enc = np.eye(2**n, dtype=complex)
    for q in range(n):
        enc = on_wire(ry(x[q]), q, n) @ enc
    out = []
    for layer in range(n_layers):
        u = np.eye(2**n, dtype=complex)
        if reupload or layer == 0:
            u = enc @ u
        for q in range(n):
            u = on_wire(rz(t[layer, q, 1]) @ ry(t[layer, q, 0]), q, n) @ u
        out.append(ent @ u)
    return out


def state(theta, x, n, n_layers, entangler="ring", reupload=False):
    psi = np.zeros(2**n, dtype=complex)
    psi[0] = 1.0
    for u in layer_unitaries(theta, x, n, n_layers, entangler, reupload):
        psi = u @ psi
    return psi


def density(theta, x, n, n_layers, entangler="ring", reupload=False, p=0.0):
    """ρ after the circuit with global depolarising ρ → (1-p)ρ + p·I/d after every layer."""
    d = 2**n
    rho = np.zeros((d, d), dtype=complex)
    rho[0, 0] = 1.0
    for u in layer_unitaries(theta, x, n, n_layers, entangler, reupload):
        rho = u @ rho @ u.conj().T
        rho = (1 - p) * rho + p * np.eye(d) / d
    return rho


def expval_z(psi_or_rho, wire, n):
    op = on_wire(Z, wire, n)
    if psi_or_rho.ndim == 1:
        return float(np.real(psi_or_rho.conj() @ op @ psi_or_rho))
    return float(np.real(np.trace(op @ psi_or_rho)))


def readout_expval(rho, wire, n, r):
    """⟨Z⟩ observed through a symmetric readout flip with probability r: outcome probabilities mixed."""
    p0 = float(np.real(np.trace(on_wire(P0, wire, n) @ rho)))
    p0_obs = (1 - r) * p0 + r * (1 - p0)
    return 2 * p0_obs - 1


def sld_qfi(rho, drhos, tol=1e-12):
    """SLD quantum Fisher matrix F_ij = 2 Σ_{kl: λk+λl>0} Re(⟨k|∂iρ|l⟩⟨l|∂jρ|k⟩)/(λk+λl)."""
    lam, vecs = np.linalg.eigh(rho)
    d = [vecs.conj().T @ dr @ vecs for dr in drhos]
    denom = lam[:, None] + lam[None, :]
    mask = denom > tol
    f = np.zeros((len(d), len(d)))
    for i in range(len(d)):
        for j in range(len(d)):
            f[i, j] = 2 * np.sum(np.real(d[i] * d[j].T)[mask] / denom[mask])
    return f
