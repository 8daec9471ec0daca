"""Quantum Fisher information of the pure circuit state (SPEC §3): diagonal and full matrix.

F_Q = 4 × the Fubini–Study metric. The depolarised closed form lives in :mod:`ceas.qnn.noise`.
These functions take a :class:`~ceas.qnn.simulator.QNNSimulator` and are exposed as its methods.
"""

from __future__ import annotations

import numpy as np

from ceas.errors import ValidationError
from ceas.qnn import engine
from ceas.qnn.circuit import z_signs


def qfi_diagonal(sim, theta, x) -> np.ndarray:
    """Diagonal of the pure-state QFI, F_pp = 4·(Fubini–Study metric)_pp.

    For a gate exp(-iθ_p P_p/2) with a Pauli generator P_p, F_pp = 1 - ⟨P_p⟩², the expectation taken in the
    state at the gate: one forward pass. At each layer's input state every RY has generator Y and every RZ
    (applied after RY(θ'_q) on its qubit, θ' = θ (+ x when re-uploading)) the generator
    RY(θ')†·Z·RY(θ') = cos θ' Z - sin θ' X.

    Parameters
    ----------
    sim : QNNSimulator
    theta : array_like, shape (N, P)
    x : array_like, shape (N, B, n)

    Returns
    -------
    ndarray, shape (N, B, P)
        Dimensionless, each entry in [0, 1].
    """
    theta, x = sim._check(theta, x)
    if theta.shape[0] > 1 and _rows_equal(theta) and _rows_equal(x):
        # every node asks for the same (θ, probe batch), as in the broker's QFI refresh: compute it once
        one = qfi_diagonal(sim, theta[:1], x[:1])
        return np.repeat(one, theta.shape[0], axis=0)
    plan = sim.plan
    n_nodes, n_samples = x.shape[:2]
    n, n_layers = plan.n, plan.n_layers
    out = np.empty((n_nodes, n_samples, n_layers, n, 2))
    zsign = z_signs(n)
    th = theta.reshape(n_nodes, n_layers, n, 2)
    gates_of = sim._gate_source(theta, x, inverse=False)

    def work(ws, nodes, samples):
        cn, cb = nodes.stop - nodes.start, samples.stop - samples.start
        a, b, _ = ws.views(cn, cb)
        engine.initial_state(plan, x[nodes, samples], a[0])
        ry = th[nodes, None, :, :, 0]  # (cn, 1, L, n)
        if plan.reupload:
            ry = ry + x[nodes, samples][:, :, None, :]
        block = np.empty((cn, cb, n_layers, n, 2))

        def hook(layer, psi):
            ez, ex, ey = pauli_expectations(psi, zsign)
            ang = ry[:, :, layer]
            block[:, :, layer, :, 0] = 1.0 - ey**2
            block[:, :, layer, :, 1] = 1.0 - (np.cos(ang) * ez - np.sin(ang) * ex) ** 2

        engine.forward(plan, gates_of(nodes, samples), a[0], b[0], hook=hook)
        out[nodes, samples] = block

    sim._map(work, sim._chunks(n_nodes, n_samples))
    return out.reshape(n_nodes, n_samples, 2 * n_layers * n)


def _rows_equal(arr: np.ndarray) -> bool:
    """Whether every row (axis 0) of ``arr`` equals the first bit for bit."""
    bits = arr.reshape(arr.shape[0], -1).view(np.uint64)
    return bool(np.all(bits == bits[0]))


def qfi_matrix(sim, theta, x, *, max_params: int = 256) -> np.ndarray:
    """Full pure-state QFI F_ij = 4 Re[⟨∂_iψ|∂_jψ⟩ - ⟨∂_iψ|ψ⟩⟨ψ|∂_jψ⟩].

    The state derivatives come from the exact state-level shift rule ∂_pψ = (ψ(θ+π/2·e_p) -
    ψ(θ-π/2·e_p)) / (2√2), so this costs 2P forward passes and N·B·(2P+1) states of memory: for small
    parameter counts only.

    Parameters
    ----------
    sim : QNNSimulator
    theta : array_like, shape (N, P)
    x : array_like, shape (N, B, n)
    max_params : int
        Largest P accepted.

    Returns
    -------
    ndarray, shape (N, B, P, P)
    """
    theta, x = sim._check(theta, x)
    n_params = theta.shape[1]
    if n_params > max_params:
        raise ValidationError(
            f"qfi_matrix needs P <= max_params = {max_params} parameters, got P = {n_params}; "
            "use qfi_diagonal for large circuits"
        )
    n_nodes, n_samples = x.shape[:2]
    sim._check_memory(n_nodes * n_samples * (2 * n_params + 1), "qfi_matrix")
    shifted = shifted_thetas(theta, np.pi / 2)  # (N, 2P+1, P)
    states = sim.state(
        shifted.reshape(-1, n_params), np.repeat(x, 2 * n_params + 1, axis=0)
    ).reshape(n_nodes, 2 * n_params + 1, n_samples, -1)
    psi = states[:, 0]  # (N, B, D)
    d = (states[:, 1 : 1 + n_params] - states[:, 1 + n_params :]) / (2.0 * np.sqrt(2.0))
    d = np.moveaxis(d, 1, 2)  # (N, B, P, D)
    gram = np.matmul(d.conj(), np.swapaxes(d, -1, -2))  # <∂i|∂j>
    overlap = np.matmul(d.conj(), psi[..., None])[..., 0]  # <∂i|ψ>
    return 4.0 * np.real(gram - overlap[..., :, None] * overlap.conj()[..., None, :])


def shifted_thetas(theta: np.ndarray, shift: float) -> np.ndarray:
    """(N, 2P+1, P): θ, then θ + shift·e_p for every p, then θ - shift·e_p."""
    n_params = theta.shape[1]
    eye = shift * np.eye(n_params)
    return np.concatenate(
        [theta[:, None, :], theta[:, None, :] + eye, theta[:, None, :] - eye], axis=1
    )


def pauli_expectations(psi: np.ndarray, zsign: np.ndarray):
    """Single-qubit ⟨Z_q⟩, ⟨X_q⟩, ⟨Y_q⟩ of every qubit of states ``psi`` (..., 2^n): each (..., n).

    From the reduced density matrix ρ_q: ⟨Z⟩ = ρ00 - ρ11, ⟨X⟩ = 2 Re ρ01, ⟨Y⟩ = -2 Im ρ01.
    """
    n = zsign.shape[1]
    prob = psi.real**2 + psi.imag**2
    ez = prob @ zsign
    rho01 = np.empty(psi.shape[:-1] + (n,), dtype=np.complex128)
    for q in range(n):  # loop over qubits (n <= 24), each a vectorised reduction over all states
        v = psi.reshape(*psi.shape[:-1], 2**q, 2, 2 ** (n - q - 1))
        rho01[..., q] = np.einsum("...ab,...ab->...", v[..., 0, :], v[..., 1, :].conj())
    return ez, 2.0 * rho01.real, -2.0 * rho01.imag
