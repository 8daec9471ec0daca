"""The batched state-vector engine: forward pass and adjoint (uncomputing) backward pass.

One chunk of (nodes, samples) is simulated at a time, as a complex array of shape (cn, cb, 2^n) whose
float view interleaves (re, im). No validation happens here; :mod:`ceas.qnn.simulator` checks inputs once.

How a layer is applied (see ``docs/performance.md`` for the measurements behind these choices)
-------------------------------------------------------------------------------------------
The register is split into qubit groups G_0 … G_{k-1} (MSB first). The last group is the *complex* group.

* Each front group's RY rotations form one real 2^g×2^g matrix. It is applied to the group while the group
  is the most significant chunk of the layout, with the result written *transposed*, so the group moves to
  the least significant end ("rotation step", one BLAS call per sample). Real matrices treat the (re, im)
  bit like any other bit, so after the k-1 front steps the layout is ``[G_{k-1}, re/im, G_0 … G_{k-2}]``.
* The complex group and the re/im bit are now the leading chunk: one step with the *realified* complex
  matrix of ⊗_q RZ·RY on that group (2^{g+1}×2^{g+1} real) brings the layout back to the canonical
  interleaved order. Real steps cost about a third of complex ones on this kind of CPU.
* The front groups' RZ rotations are one diagonal phase (per node), the entangler one gather.

Backward: the adjoint state λ and the state ψ are stacked as (2, cn, cb, 2^n) and run through the inverse
layer together (uncomputing ψ is cheaper than storing every stage). Gradients come from cross terms
Im⟨λ|P|ψ⟩ of each gate's generator P, read off reduced cross matrices Σ_rest ψ_i λ_j of each group, and,
for the front RZ gates, from Im(conj(λ)·ψ) weighted by Z signs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ceas.qnn.circuit import CircuitSpec, cnot_permutation, z_signs
from ceas.qnn.gates import kron_chain, kron_vectors, local_unitary, realify, ry_matrix, rz_phases

# --------------------------------------------------------------------------------------------------------------
# Static plan: everything that depends on the circuit shape only
# --------------------------------------------------------------------------------------------------------------


# Largest qubit group: a group's matrices are 2^g×2^g (realified: 2^{g+1}) per node and layer.
MAX_GROUP = 6


def default_groups(n_qubits: int) -> tuple[int, ...]:
    """Group sizes (MSB first; the last one is the complex group) used for ``n_qubits``.

    Up to 4 qubits the whole register is one complex group, so every step is one BLAS call per node
    with all samples as rows. Above that, front groups of 3 qubits (an 8×8 real matrix is where
    OpenBLAS's small kernels are fastest per qubit) and a complex group of 2 or 3 (its realified matrix is
    twice as wide, so it pays to keep it small); see ``docs/performance.md`` for the sweep.
    """
    if n_qubits <= 4:
        return (n_qubits,)
    rem = n_qubits % 3
    if rem == 0:
        return (3,) * (n_qubits // 3)
    if rem == 2:
        return (3,) * (n_qubits // 3) + (2,)
    return (3,) * (n_qubits // 3 - 1) + (2, 2)


@cache
def _t_front(g: int) -> np.ndarray:
    """Map from a plane-summed real cross matrix Re M (G×G, flattened) to Re(M_t01 - M_t10) per qubit t.

    ``M[i, j] = Σ_rest ψ_i conj(λ_j)``; ``M_t`` is its reduction to qubit t of the group (MSB first).
    Returns shape (G*G, g).
    """
    big = 2**g
    t_map = np.zeros((big, big, g))
    idx = np.arange(big)
    for t in range(g):
        sh = g - 1 - t
        i, j = np.meshgrid(idx, idx, indexing="ij")
        same_rest = ((i ^ j) & ~(1 << sh)) == 0
        a, b = (i >> sh) & 1, (j >> sh) & 1
        t_map[..., t] += np.where(same_rest & (a == 0) & (b == 1), 1.0, 0.0)
        t_map[..., t] -= np.where(same_rest & (a == 1) & (b == 0), 1.0, 0.0)
    return t_map.reshape(big * big, g)


@cache
def _t_complex(g: int) -> np.ndarray:
    """Map from a realified cross matrix R (2G×2G over interleaved (i, re/im), flattened) to, per qubit t,
    ``[Re(M_t01 - M_t10), Im(M_t00 - M_t11), Im(M_t01 + M_t10)]``. Returns shape (4G², 3g), columns
    ordered (t, k).

    With λ stored as is (not conjugated), M[i, j] = Σ ψ_i conj(λ_j) has Re M[i, j] = R[2i, 2j] +
    R[2i+1, 2j+1] and Im M[i, j] = R[2i+1, 2j] - R[2i, 2j+1].
    """
    big = 2**g
    out = np.zeros((2 * big, 2 * big, g, 3))
    idx = np.arange(big)
    i, j = np.meshgrid(idx, idx, indexing="ij")
    for t in range(g):
        sh = g - 1 - t
        same_rest = ((i ^ j) & ~(1 << sh)) == 0
        a, b = (i >> sh) & 1, (j >> sh) & 1
        # coefficients of Re M[i, j] and Im M[i, j] in each of the three outputs
        re_coef = np.where(same_rest & (a == 0) & (b == 1), 1.0, 0.0) - np.where(
            same_rest & (a == 1) & (b == 0), 1.0, 0.0
        )
        im_z = np.where(same_rest & (a == b), np.where(a == 0, 1.0, -1.0), 0.0)
        im_x = np.where(same_rest & (a != b), 1.0, 0.0)
        out[2 * i, 2 * j, t, 0] += re_coef
        out[2 * i + 1, 2 * j + 1, t, 0] += re_coef
        for k, coef in ((1, im_z), (2, im_x)):
            out[2 * i + 1, 2 * j, t, k] += coef
            out[2 * i, 2 * j + 1, t, k] -= coef
    return out.reshape(4 * big * big, 3 * g)


@dataclass(frozen=True)
class Plan:
    """Shape-only data of a circuit, computed once per simulator.

    Attributes
    ----------
    n, n_layers, dim : int
    groups : tuple of (first qubit, size)
        Front groups then the complex group.
    reupload : bool
    fwd_gather, bwd_gather : ndarray of intp, shape (dim,)
        ``ψ_next = ψ[fwd_gather]`` applies the entangler; ``ψ = ψ_next[bwd_gather]`` undoes it.
    readout2 : ndarray, shape (2·dim, O)
        Z signs of the readout qubits *after* the last entangler, repeated for (re, im), so that
        ``E = (ψ_float**2) @ readout2`` on the last layer's pre-entangler state.
    readout : ndarray, shape (dim, O)
    zfront : ndarray, shape (2**n_front, n_front)
        Z signs of the front qubits (RZ gradients).
    """

    n: int
    n_layers: int
    dim: int
    groups: tuple[tuple[int, int], ...]
    reupload: bool
    fwd_gather: np.ndarray
    bwd_gather: np.ndarray
    readout: np.ndarray
    readout2: np.ndarray
    zfront: np.ndarray

    @property
    def n_front(self) -> int:
        return self.n - self.groups[-1][1]

    @property
    def g_last(self) -> int:
        return self.groups[-1][1]


def make_plan(spec: CircuitSpec, group_sizes: tuple[int, ...] | None = None) -> Plan:
    """Build the :class:`Plan` of ``spec`` (``group_sizes`` MSB first, summing to n; default
    :func:`default_groups`)."""
    n = spec.n_qubits
    sizes = default_groups(n) if group_sizes is None else tuple(int(s) for s in group_sizes)
    groups, start = [], 0
    for size in sizes:
        groups.append((start, size))
        start += size
    perm = cnot_permutation(n, spec.cnot_pairs)
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(perm.size)
    z = z_signs(n)
    readout = np.ascontiguousarray(z[perm][:, list(spec.readout_qubits)])
    n_front = n - sizes[-1]
    return Plan(
        n=n,
        n_layers=spec.n_layers,
        dim=2**n,
        groups=tuple(groups),
        reupload=bool(spec.reupload),
        fwd_gather=inverse,
        bwd_gather=perm,
        readout=readout,
        readout2=np.repeat(readout, 2, axis=0),
        zfront=np.ascontiguousarray(z_signs(n_front)) if n_front else np.zeros((1, 0)),
    )


# --------------------------------------------------------------------------------------------------------------
# Per-chunk gate data
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gates:
    """Gate data of a block of nodes (and, with re-uploading, samples), node axis first.

    ``fwd[l][s]`` / ``bwd[l][s]`` are the right operands of the forward / inverse rotation step of group s in
    layer l: shape (cn, 1, G, G) when shared by a node's samples, (cn, cb, G, G) with re-uploading.
    ``phases`` (cn, L, 1, dim) complex (the front RZ diagonal) or None; ``ry_last`` (cn, 1 or cb, L, g_last) the RY
    angles of the complex group (for the RZ-gradient transform).
    """

    fwd: list
    bwd: list
    phases: np.ndarray | None
    ry_last: np.ndarray

    def select(self, nodes: slice, samples: slice) -> Gates:
        """The gates of a chunk: rows ``nodes`` and, where gates differ per sample, columns ``samples``."""

        def cut(arr):
            return arr[nodes] if arr.shape[1] == 1 else arr[nodes, samples]

        return Gates(
            fwd=[[cut(m) for m in layer] for layer in self.fwd],
            bwd=[[cut(m) for m in layer] for layer in self.bwd],
            phases=None if self.phases is None else self.phases[nodes],
            ry_last=cut(self.ry_last),
        )


def make_gates(
    plan: Plan, theta: np.ndarray, x: np.ndarray | None, *, inverse: bool = True
) -> Gates:
    """Gate data for parameters ``theta`` (cn, P) and, with re-uploading, inputs ``x`` (cn, cb, n).

    ``inverse=False`` skips the operands only the backward pass uses (``bwd`` is then empty). ``theta`` may
    also hold the parameters of fewer layers (cn, L'·2n), e.g. one layer of shifted parameters: the gate
    lists then have L' layers.
    """
    cn = theta.shape[0]
    n_layers = theta.shape[1] // (2 * plan.n)
    th = theta.reshape(cn, n_layers, plan.n, 2)
    # contiguous copies: ufuncs keep their inputs' memory order, and strided angle arrays would make every
    # gate array below strided (several times slower to build and to use)
    ry = np.ascontiguousarray(th[..., 0])[:, None]  # (cn, 1, L, n)
    rz = np.ascontiguousarray(th[..., 1])[:, None]
    if plan.reupload:
        ry = ry + x[:, :, None, :]  # (cn, cb, L, n): RY(θ)RY(x) = RY(θ+x)
    a_last = plan.groups[-1][0]
    per_group = []  # (forward operand, inverse operand), each (cn, 1|cb, L, G, G), C-contiguous
    # (BLAS runs ~20 % slower on transposed operands, and building Kᵀ directly is cheaper than copying)
    for a, g in plan.groups[:-1]:
        angle = ry[..., a : a + g]
        per_group.append(  # RY(θ)ᵀ = RY(-θ)
            (kron_chain(ry_matrix(-angle)), kron_chain(ry_matrix(angle)) if inverse else None)
        )
    u = local_unitary(ry[..., a_last:], rz[..., a_last:])
    u_dag = np.ascontiguousarray(np.conj(u).swapaxes(-1, -2))
    # realify(K)ᵀ = realify(K†)
    per_group.append((realify(kron_chain(u_dag)), realify(kron_chain(u)) if inverse else None))
    fwd = [[f[:, :, layer] for f, _ in per_group] for layer in range(n_layers)]
    bwd = [[b[:, :, layer] for _, b in per_group] for layer in range(n_layers)] if inverse else []
    phases = None
    if plan.n_front:
        # diagonal of ⊗ RZ over the front qubits, spread over the complex group's amplitudes so that the
        # multiply runs over contiguous rows (numpy is slow at broadcasting short inner axes)
        ph = kron_vectors(rz_phases(rz[:, 0, :, : plan.n_front]))  # (cn, L, 2**n_front)
        phases = np.repeat(ph, 2**plan.g_last, axis=-1)[:, :, None, :]  # (cn, L, 1, dim)
    return Gates(fwd=fwd, bwd=bwd, phases=phases, ry_last=ry[..., a_last:])


def initial_state(plan: Plan, x: np.ndarray, out: np.ndarray) -> None:
    """Write the input state into ``out`` (cn, cb, dim) complex: ⊗_q RY(x_q)|0⟩, or |0…0⟩ when re-uploading
    (the encoding is then folded into every layer's RY)."""
    if plan.reupload:
        out[...] = 0.0
        out[..., 0] = 1.0
    else:
        half = x / 2
        out[...] = kron_vectors(np.stack([np.cos(half), np.sin(half)], axis=-1))


# --------------------------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------------------------


def _step(src: np.ndarray, dst: np.ndarray, mat: np.ndarray, width: int) -> None:
    """Rotation step on float data: the leading ``width`` chunk of every row of ``src`` is multiplied by
    ``mat.T`` and written as the trailing chunk of ``dst`` (``dst_rows = src_chunkᵀ @ mat``).

    ``src``/``dst``: (..., cn, cb, 2·dim) float views; ``mat``: (..., cn, 1|cb, width, width), its leading axes
    broadcasting against the state's (e.g. one gate set shared by all nodes of a parameter-shift block).
    """
    rest = src.shape[-1] // width
    if rest == 1 and mat.shape[-3] == 1:
        # single group: all samples of a node are rows of one product
        np.matmul(src, mat[..., 0, :, :], out=dst)
        return
    lead = src.shape[:-1]
    np.matmul(
        src.reshape(*lead, width, rest).swapaxes(-1, -2), mat, out=dst.reshape(*lead, rest, width)
    )


def _cross(stack: np.ndarray, width: int, per_sample: bool) -> np.ndarray:
    """Cross matrix Σ_rows ψ[row, i] λ[row, j] of the trailing ``width`` chunk.

    ``stack``: (2, cn, cb, 2·dim) float (ψ, λ). Returns (cn, cb, width, width) or, summed over samples,
    (cn, width, width).
    """
    _, cn, cb, size = stack.shape
    rest = size // width
    if per_sample:
        psi = stack[0].reshape(cn, cb, rest, width)
        lam = stack[1].reshape(cn, cb, rest, width)
        return np.matmul(psi.swapaxes(-1, -2), lam)
    # A single product with a very long inner dimension runs ~3x slower in OpenBLAS than a batch of
    # products over blocks of ~_CROSS_ROWS rows, summed afterwards.
    rows = cb * rest
    blocks = max(1, rows // _CROSS_ROWS)
    while rows % blocks:
        blocks -= 1
    psi = stack[0].reshape(cn, blocks, rows // blocks, width)
    lam = stack[1].reshape(cn, blocks, rows // blocks, width)
    return np.matmul(psi.swapaxes(-1, -2), lam).sum(axis=1)


_CROSS_ROWS = 2048


class Workspace:
    """Preallocated buffers for chunks of up to ``capacity`` (node, sample) pairs (reused, so large states are
    not handed back to the OS and page-faulted in again on every operation)."""

    def __init__(self, dim: int, capacity: int):
        self.dim = dim
        self.capacity = capacity
        self._a = np.empty(2 * capacity * dim, dtype=np.complex128)
        self._b = np.empty(2 * capacity * dim, dtype=np.complex128)
        self._t = np.empty(capacity * dim, dtype=np.complex128)

    def views(self, cn: int, cb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Two stacked buffers (2, cn, cb, dim) and one scratch buffer (cn, cb, dim), all contiguous."""
        size = cn * cb * self.dim
        a = self._a[: 2 * size].reshape(2, cn, cb, self.dim)
        b = self._b[: 2 * size].reshape(2, cn, cb, self.dim)
        t = self._t[:size].reshape(cn, cb, self.dim)
        return a, b, t


def forward(
    plan: Plan,
    gates: Gates,
    a: np.ndarray,
    b: np.ndarray,
    *,
    full: bool = False,
    hook=None,
    start: int = 0,
):
    """Run the layers ``start`` … L-1 on the state in ``a`` (…, cn, cb, dim) complex, using ``b`` as the second
    buffer (``a`` then holds the input state of layer ``start``).

    Returns the array (``a`` or ``b``) holding the last layer's state after its RY/RZ rotations and before
    its front phases and entangler (enough for every ⟨Z⟩ and for the backward pass), or, with ``full``,
    the final state. ``hook(layer, psi)`` sees each layer's input state. Gate arrays may carry extra leading
    axes that broadcast against the state's (see :func:`_step`).
    """
    cur, nxt = a, b
    n_layers = plan.n_layers
    for layer in range(start, n_layers):
        if hook is not None:
            hook(layer, cur)
        fcur, fnxt = cur.view(np.float64), nxt.view(np.float64)
        for s, (_, g) in enumerate(plan.groups[:-1]):
            _step(fcur, fnxt, gates.fwd[layer][s], 2**g)
            fcur, fnxt = fnxt, fcur
            cur, nxt = nxt, cur
        _step(fcur, fnxt, gates.fwd[layer][-1], 2 ** (plan.g_last + 1))
        cur, nxt = nxt, cur
        if layer == n_layers - 1 and not full:
            break
        if gates.phases is not None:
            np.multiply(cur, gates.phases[..., layer, :, :], out=cur)
        np.take(cur, plan.fwd_gather, axis=-1, out=nxt)
        cur, nxt = nxt, cur
    return cur


def expectations(plan: Plan, last: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """⟨Z_o⟩ of the readout qubits from the state returned by :func:`forward`: (cn, cb, O).

    ``scratch``: optional complex buffer of the same shape as ``last`` (avoids a temporary).
    """
    flat = last.view(np.float64)
    out = None if scratch is None else scratch.view(np.float64)
    return np.square(flat, out=out) @ plan.readout2


def start_adjoint(plan: Plan, stack: np.ndarray, weights: np.ndarray, scratch: np.ndarray) -> None:
    """λ = Σ_o w_o Z_o ψ: writes into ``stack[1]`` from ``stack[0]`` (the last-layer state) and weights
    (cn, cb, O), using ``scratch`` (complex, like ``stack[0]``) for the real diagonal."""
    diag = scratch.view(np.float64).reshape(-1)[: stack[0].size].reshape(stack[0].shape)
    np.matmul(weights, plan.readout.T, out=diag)
    np.multiply(stack[0], diag, out=stack[1])


def backward(
    plan: Plan,
    gates: Gates,
    s1: np.ndarray,
    s2: np.ndarray,
    tmp: np.ndarray,
    per_sample: bool,
) -> np.ndarray:
    """Adjoint sweep. On entry ``s1[0]`` holds the state returned by :func:`forward` (not ``full``) and
    ``s1[1]`` the adjoint state ``Σ_o w_o Z_o`` applied to it (same point of the circuit).

    For a gate exp(-iθP/2), ∂⟨O⟩/∂θ = Im⟨λ|P|ψ⟩ with ψ and λ = U_after† O U_after ψ taken at the gate. ψ and λ
    are run backwards together; at each point the generators are read off cheaply:

    * front RZ (after the front phase is undone the point is between RY and RZ): generator Z, so
      Im Σ_j z_q(j) conj(λ_j) ψ_j;
    * front RY, right after its group's inverse step (group at the least significant end): generator Y, so
      Re(M_01 - M_10) of the group's cross matrix M = Σ_rest ψ_i conj(λ_j) reduced to the qubit — the
      plane-summed real product of the float views gives Re M;
    * complex group, at the layer input: generator Y for RY and RY(θ')†·Z·RY(θ') = cos θ' Z - sin θ' X for
      RZ, from the realified cross matrix (Re and Im of M).

    Returns d/dθ of Σ_o w_o⟨Z_o⟩ as (cn, cb, L, n, 2) per sample or (cn, L, n, 2) summed over samples
    (summing needs θ' shared by a node's samples, i.e. no re-uploading). Overwrites the buffers.
    """
    cn, cb = s1.shape[1:3]
    n_layers, n = plan.n_layers, plan.n
    n_front, g_last = plan.n_front, plan.g_last
    grad = np.zeros((cn, cb, n_layers, n, 2) if per_sample else (cn, n_layers, n, 2))
    cur, nxt = s1, s2
    w_last = 2 ** (g_last + 1)
    t_last = _t_complex(g_last)
    a_last = plan.groups[-1][0]
    for layer in range(n_layers - 1, -1, -1):
        if layer < n_layers - 1:
            np.take(cur, plan.bwd_gather, axis=-1, out=nxt)
            cur, nxt = nxt, cur
        if n_front:
            # RZ gradients of the front qubits: Im Σ_j z_q(j) conj(λ_j) ψ_j (phase invariant)
            np.conjugate(cur[1], out=tmp)
            np.multiply(tmp, cur[0], out=tmp)
            if per_sample:
                im = tmp.imag.reshape(cn, cb, 2**n_front, 2**g_last).sum(axis=-1)
                grad[:, :, layer, :n_front, 1] = im @ plan.zfront
            else:
                im = tmp.sum(axis=1).imag.reshape(cn, 2**n_front, 2**g_last).sum(axis=-1)
                grad[:, layer, :n_front, 1] = im @ plan.zfront
            if layer < n_layers - 1:
                np.multiply(cur, gates.phases[:, layer].conj(), out=cur)
        fcur, fnxt = cur.view(np.float64), nxt.view(np.float64)
        for s, (a, g) in enumerate(plan.groups[:-1]):
            _step(fcur, fnxt, gates.bwd[layer][s], 2**g)
            fcur, fnxt = fnxt, fcur
            cur, nxt = nxt, cur
            m = _cross(fcur, 2**g, per_sample)
            ry_grad = m.reshape(*m.shape[:-2], -1) @ _t_front(g)
            if per_sample:
                grad[:, :, layer, a : a + g, 0] = ry_grad
            else:
                grad[:, layer, a : a + g, 0] = ry_grad
        _step(fcur, fnxt, gates.bwd[layer][-1], w_last)
        cur, nxt = nxt, cur
        m = _cross(cur.view(np.float64), w_last, per_sample)
        abx = (m.reshape(*m.shape[:-2], -1) @ t_last).reshape(*m.shape[:-2], g_last, 3)
        ang = gates.ry_last[:, :, layer]  # (cn, 1|cb, g_last)
        rz_grad_parts = (abx[..., 1], abx[..., 2])
        if per_sample:
            grad[:, :, layer, a_last:, 0] = abx[..., 0]
            grad[:, :, layer, a_last:, 1] = (
                np.cos(ang) * rz_grad_parts[0] - np.sin(ang) * rz_grad_parts[1]
            )
        else:
            grad[:, layer, a_last:, 0] = abx[..., 0]
            grad[:, layer, a_last:, 1] = (
                np.cos(ang[:, 0]) * rz_grad_parts[0] - np.sin(ang[:, 0]) * rz_grad_parts[1]
            )
    return grad
