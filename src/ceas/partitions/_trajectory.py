"""Pure-state Monte-Carlo ("trajectory") kernels for the partitioned circuits, for registers too wide for density
matrices.

Every channel of the split circuits is a Pauli mixture, so a run is the ideal circuit with a random Pauli string
inserted at each channel. The strings of one layer are pushed through the rest of that layer's CNOTs (Cliffords:
X_c → X_cX_t, Z_t → Z_cZ_t) into one *frame* per layer, a Pauli string (x, z bits) acting after the layer:

* frame 0 is pulled back through layer 0's CNOTs onto the product state V(x) and layer-0 rotations (so it costs
  nothing: it permutes / negates the components of each qubit's 2-vector);
* frames 1 … L−2 are applied to the state between layers (one gather and a sign);
* frame L−1 (L >= 2) only flips the sign of the measured ⟨Z_q⟩ where it has an X or Y on q.

Global phases are dropped (a trajectory is a pure state). Layer l's CNOTs are one shared basis permutation; the
last layer's permutation and its RZ rotations (diagonal before a Z measurement) are folded into the readout.

States are laid out as (U, D, S): U *units* share their gate matrices (a node's shifted parameter set, and with
re-uploading a sample), S states per unit (samples × trajectories), D = 2^n amplitudes with wire 0 the most
significant bit. The rotations of a qubit group are then one GEMM per unit with S·2^(n−g−start) columns.
"""

from __future__ import annotations

import numpy as np

from ceas.qnn.circuit import z_signs
from ceas.qnn.gates import kron_chain, kron_vectors

# Qubits per group matrix of the rotations: 2^g·n/g flops per amplitude favour small g, GEMM efficiency large g;
# 3 measured fastest (0.37 s against 0.45 s for 4 on the 12-qubit benchmark of docs/partitions.md).
GROUP = 3


def pauli_bits(n: int) -> np.ndarray:
    """Bit weights of the wires: 2^(n−1−q), shape (n,) int64 (wire 0 most significant)."""
    return (1 << (n - 1 - np.arange(n))).astype(np.int64)


def propagate(fx: np.ndarray, fz: np.ndarray, cnots, reverse: bool = False) -> None:
    """Conjugate the Pauli frames (x bits ``fx``, z bits ``fz``, both (..., n) bool) by the CNOT list, in place.

    CNOT(c→t) maps X_c → X_cX_t and Z_t → Z_cZ_t (X_t, Z_c unchanged). ``reverse`` walks the list backwards,
    which pulls a frame from after the CNOTs to before them (each CNOT is its own inverse)."""
    for c, t in reversed(cnots) if reverse else cnots:  # loop over gates, not data
        fx[..., t] ^= fx[..., c]
        fz[..., c] ^= fz[..., t]


def product_columns(vecs: np.ndarray) -> np.ndarray:
    """⊗_q vecs[u, s, q] as columns: (U, S, n, 2) -> (U, D, S), first qubit most significant.

    Built per qubit group first (2^g-vectors, small), then one outer product per group, so the full-size array
    is written about once."""
    n_units, n_states, n, _ = vecs.shape
    out = None
    for start in range(0, n, GROUP):  # loop over qubit groups
        g = min(GROUP, n - start)
        part = kron_vectors(vecs[:, :, start : start + g])  # (U, S, 2^g)
        part = np.ascontiguousarray(part.transpose(0, 2, 1))  # (U, 2^g, S)
        if out is None:
            out = part
        else:
            out = np.multiply(out[:, :, None, :], part[:, None, :, :])
            out = out.reshape(n_units, -1, n_states)
    return out


def apply_groups(psi: np.ndarray, u: np.ndarray, real: bool = False) -> np.ndarray:
    """ψ → (⊗_q u_q)ψ, one (2^g × 2^g) group matrix per unit and qubit group.

    psi (..., D, S) and u (..., n, 2, 2) broadcast over their leading (unit) axes: a state shared by several units
    (a leading axis of length 1) is read once per group. ``real`` (u real): the products run on the interleaved
    float view of ψ (half the flops of a complex GEMM). Returns (*lead, D, S)."""
    dim, n_states = psi.shape[-2:]
    n = u.shape[-3]
    for start in range(0, n, GROUP):  # loop over qubit groups (n/4 of them), each a batched GEMM
        g = min(GROUP, n - start)
        k = kron_chain(u[..., start : start + g, :, :])  # (..., G, G)
        if real:
            view = psi.view(np.float64).reshape(*psi.shape[:-2], 2**start, 2**g, -1)
            out = np.matmul(k.real[..., None, :, :], view)
            psi = out.reshape(*out.shape[:-3], dim, 2 * n_states).view(np.complex128)
        else:
            view = psi.reshape(*psi.shape[:-2], 2**start, 2**g, -1)
            out = np.matmul(k[..., None, :, :], view)
            psi = out.reshape(*out.shape[:-3], dim, n_states)
    return psi


def frame_gathers(inverse: np.ndarray, fx: np.ndarray, fz: np.ndarray) -> list:
    """How to apply Z^z X^x C per state with one gather, C the CNOT permutation with inverse ``inverse`` (D,):
    out[..., j, s] = (−1)^{|j ∧ z_s|} ψ[..., c⁻¹[j ⊕ x_s], s].

    fx, fz (Bc, S, n) bool. Returns, per unit b of Bc, (flat index (D·S,) into ψ[b] viewed as (D·S,), signs
    (D, S) or None)."""
    n_bu, n_states, n = fx.shape
    dim = inverse.shape[0]
    xmask = fx.astype(np.int64) @ pauli_bits(n)  # (Bc, S)
    rows = np.arange(dim)[:, None]
    cols = np.arange(n_states)[None, :]
    bits = (z_signs(n) < 0).astype(float)  # (D, n): bit of wire q in index j (Z sign -1 <-> bit 1)
    out = []
    for b in range(n_bu):  # loop over the units with their own frames (samples, with re-uploading)
        flat = (inverse[rows ^ xmask[b][None, :]] * n_states + cols).ravel()
        z = fz[b]
        signs = 1.0 - 2.0 * ((bits @ z.T.astype(np.float64)) % 2.0) if z.any() else None
        out.append((flat, signs))
    return out


def apply_gathers(psi: np.ndarray, gathers: list) -> np.ndarray:
    """Apply :func:`frame_gathers` to psi (J, Bc, D, S)."""
    n_units, _, dim, n_states = psi.shape
    out = np.empty_like(psi)
    for b, (flat, signs) in enumerate(gathers):  # loop over units with their own frames
        part = np.take(psi[:, b].reshape(n_units, dim * n_states), flat, axis=1)
        part = part.reshape(n_units, dim, n_states)
        if signs is not None:
            part *= signs
        out[:, b] = part
    return out


def layer0_state(v0: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """The state after layer 0 (its frame included): product of ``v0`` (U, S, n, 2), then layer 0's CNOT
    permutation (inverse ``inverse`` (D,)); (U, D, S)."""
    return np.take(product_columns(v0), inverse, axis=1)


def readout(psi: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Σ_d |ψ[..., d, s]|²·signs[d, o] -> (..., S, O); one square and one GEMM on the float view of ψ."""
    f = psi.view(np.float64)  # (..., D, 2S): re, im interleaved
    f = f * f
    e = np.matmul(np.swapaxes(f, -1, -2), signs)  # (..., 2S, O)
    return e[..., 0::2, :] + e[..., 1::2, :]


def finish(
    psi: np.ndarray, ry: np.ndarray, rz: np.ndarray, gathers: list, signs: np.ndarray
) -> np.ndarray:
    """Layers 1 … L−1 and the readout, from the state after layer 0.

    Parameters
    ----------
    psi : ndarray, shape (..., D, S)
        States after layer 0 (:func:`layer0_state`); leading axes broadcast against ``ry`` (shared prefixes).
    ry : ndarray, shape (..., L, n, 2, 2), real
        RY matrices per unit and layer (layer 0 is not read).
    rz : ndarray, shape (..., L, D), complex
        Diagonal of ⊗_q RZ per unit and layer (layers 0 and L−1 are not read: the last one does not change
        Z-basis statistics).
    gathers : list
        For each layer l = 1 … L−2, :func:`frame_gathers` of layer l's CNOTs and frame (applied before
        layer l + 1); entry 0 is not read.
    signs : ndarray, shape (D, O)
        z_q(c[k]) for the readout qubits, c the last layer's CNOT permutation.

    Returns
    -------
    ndarray, shape (..., S, O)
    """
    n_layers = ry.shape[-4]
    for layer in range(1, n_layers):  # loop over layers of the circuit
        if layer >= 2:
            psi = apply_gathers(psi, gathers[layer - 1])
        psi = apply_groups(psi, ry[..., layer, :, :, :], real=True)
        if (
            layer < n_layers - 1
        ):  # RZ as one diagonal (the last layer's does not change Z statistics)
            psi *= rz[..., layer, :, None]
    return readout(psi, signs)


# ---------------------------------------------------------------------------------------------------------------
# error patterns: one frame per (node, sample, trajectory) and layer, shared by every shifted parameter set
# ---------------------------------------------------------------------------------------------------------------
# Pauli (x, z) bits of the teleportation errors (I, X, Y, Z) and of the remote-CNOT errors (II, IX, ZI, ZX) on
# (control, target): rows are errors, columns (x, z) of the one qubit / (x_c, z_c, x_t, z_t).
_TELEPORT_XZ = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=bool)
_REMOTE_XZ = np.array([[0, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 1, 1, 0]], dtype=bool)


def _draw(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of ``probs`` (..., 4) -> error index (...), int."""
    u = rng.random(probs.shape[:-1])
    return (u[..., None] >= np.cumsum(probs, axis=-1)[..., :-1]).sum(axis=-1)


def sample_frames(
    program,
    node_blocks,
    n: int,
    teleport: np.ndarray,
    remote: np.ndarray,
    node_p: np.ndarray | None,
    shape: tuple[int, int, int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Random Pauli frames at the end of every layer.

    Parameters
    ----------
    program : tuple over layers of tuples of :mod:`ceas.partitions._density` ops
        Permute (its ``cnots``), Depolarise (teleportation error on ``qubit``), RemoteCNOTNoise.
    node_blocks : tuple over layers of tuples of (qpu, qubits)
        Node depolarising after the layer, sampled here only for blocks narrower than the register.
    n : int
    teleport, remote : ndarray, shape (N, S_pairs, 4)
        Error probabilities of every pair slot (teleportation I/X/Y/Z, remote CNOT II/IX/ZI/ZX).
    node_p : ndarray, shape (N, K), or None
    shape : (N, B, T)
    rng : numpy.random.Generator

    Returns
    -------
    fx, fz : ndarray, shape (N, B, T, L, n) bool
    """
    fx = np.zeros((*shape, len(program), n), dtype=bool)
    fz = np.zeros_like(fx)
    full = set(range(n))
    for layer, ops in enumerate(
        program
    ):  # loop over the circuit's channels, each vectorised over states
        lx, lz = fx[..., layer, :], fz[..., layer, :]
        for op in ops:
            if hasattr(op, "cnots"):
                propagate(lx, lz, op.cnots)
            elif hasattr(op, "qubit"):
                probs = np.broadcast_to(teleport[:, None, None, op.slot], (*shape, 4))
                err = _TELEPORT_XZ[_draw(probs, rng)]
                lx[..., op.qubit] ^= err[..., 0]
                lz[..., op.qubit] ^= err[..., 1]
            else:
                probs = np.broadcast_to(remote[:, None, None, op.slot], (*shape, 4))
                err = _REMOTE_XZ[_draw(probs, rng)]
                lx[..., op.control] ^= err[..., 0]
                lz[..., op.control] ^= err[..., 1]
                lx[..., op.target] ^= err[..., 2]
                lz[..., op.target] ^= err[..., 3]
        if node_p is None:
            continue
        for qpu, qubits in node_blocks[layer]:
            if set(qubits) == full:
                continue  # global depolarising: an exact factor (see the scheme), not sampled
            hit = rng.random(shape) < node_p[:, None, None, qpu]
            bits = rng.integers(0, 2, (*shape, len(qubits), 2)).astype(bool) & hit[..., None, None]
            lx[..., list(qubits)] ^= bits[..., 0]
            lz[..., list(qubits)] ^= bits[..., 1]
    return fx, fz


def initial_vectors(
    u0: np.ndarray, x: np.ndarray | None, fx0: np.ndarray, fz0: np.ndarray
) -> np.ndarray:
    """Each qubit's 2-vector after V(x), the layer-0 rotations and the pulled-back frame 0.

    u0 (..., n, 2, 2) layer-0 rotations; x (..., n) or None (re-uploading: the encoding is inside u0 and the
    start is |0⟩); fx0, fz0 (..., n) bool, broadcast against the rest. Returns (..., n, 2) complex."""
    if x is None:
        v = u0[..., :, 0]
    else:
        half = x / 2.0
        v = np.einsum("...ij,...j->...i", u0, np.stack([np.cos(half), np.sin(half)], axis=-1))
    # Z^z X^x on each qubit (global phase dropped): X swaps the components, Z negates the second
    v = np.where(fx0[..., None], v[..., ::-1], v)
    return v * np.where(fz0, -1.0, 1.0)[..., None] ** np.array([0, 1])
