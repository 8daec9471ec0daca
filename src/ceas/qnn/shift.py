"""Expectations of the 2P+1 parameter-shifted circuits, computed without repeating what they share.

The parameter-shift rule needs ⟨Z⟩ at θ and at θ ± π/2·e_p for every parameter p: 2P+1 circuits per node
and sample. Evaluated naively (one "virtual node" per shifted θ) that is (2P+1)·L layer applications and
(2P+1)·L gate matrices per node. Two facts make most of it redundant:

* a shift of a parameter of layer l leaves layers 0 … l-1 untouched, so every shifted circuit of layer l
  starts from the unshifted circuit's state at the input of layer l (one forward pass, states kept);
* the nodes of a round usually hold the same θ (the broadcast global model), so the 2P+1 gate sets are
  built once and broadcast over nodes instead of once per node.

The arithmetic left is exactly the naive one: every matrix product has the same operands, shapes and
row order as in :meth:`QNNSimulator._expval` over the virtual nodes (one BLAS call per node and chunk of
samples), so the expectations are bit-identical to it; ``tests/qnn/test_qnn_shift.py`` checks this to 0 ulp.
Layer applications per node drop from (2P+1)·L to L + Σ_l 2P_l·(L-l) (about 0.6× for L = 4) and gate
construction from (2P+1)·L matrices per node to (2P+1)·L once.
"""

from __future__ import annotations

import numpy as np

from ceas.qnn import engine
from ceas.qnn.qfi import shifted_thetas


def _naive(sim, theta: np.ndarray, x: np.ndarray, shift: float) -> np.ndarray:
    """Reference path: every shifted θ as its own virtual node, (N, 2P+1, B, O)."""
    n_nodes, n_samples = x.shape[:2]
    n_params = theta.shape[1]
    shifted = shifted_thetas(theta, shift)
    return sim._expval(
        shifted.reshape(-1, n_params), np.repeat(x, 2 * n_params + 1, axis=0)
    ).reshape(n_nodes, 2 * n_params + 1, n_samples, -1)


def _has_negative_zero(theta: np.ndarray) -> bool:
    # θ + 0.0 turns -0.0 into +0.0: then a shifted row's untouched layers would not equal θ's bit for bit
    return bool(np.any((theta == 0.0) & np.signbit(theta)))


def shifted_expval(sim, theta: np.ndarray, x: np.ndarray, shift: float = np.pi / 2) -> np.ndarray:
    """⟨Z_o⟩ of the circuits θ, θ + shift·e_p and θ - shift·e_p (the order of :func:`shifted_thetas`).

    Parameters
    ----------
    sim : QNNSimulator
    theta : ndarray, shape (N, P), checked
    x : ndarray, shape (N, B, n), checked

    Returns
    -------
    ndarray, shape (N, 2P+1, B, O)
        Bit-identical to evaluating each shifted θ as its own node.
    """
    plan = sim.plan
    n_nodes, n_samples = x.shape[:2]
    n_params = theta.shape[1]
    n_shift = 2 * n_params + 1
    dim, n_layers = plan.dim, plan.n_layers
    if plan.reupload or _has_negative_zero(theta):
        # with re-uploading gates differ per sample (no shared gate sets); the rest is rare or huge
        return _naive(sim, theta, x, shift)
    bits = theta.view(np.uint64)
    shared = bool(np.all(bits == bits[0]))
    if not shared and n_nodes * n_shift > sim._node_block():
        out = np.empty((n_nodes, n_shift, n_samples, plan.readout.shape[1]))
        block = max(1, sim._node_block() // n_shift)
        for n0 in range(0, n_nodes, block):
            out[n0 : n0 + block] = shifted_expval(
                sim, theta[n0 : n0 + block], x[n0 : n0 + block], shift
            )
        return out
    rows = theta[:1] if shared else theta  # (U, P), U = 1 when every node holds the same θ
    n_rows, n_layer_params = rows.shape[0], 2 * plan.n
    base_gates = engine.make_gates(plan, rows, None, inverse=False)  # arrays (U, …), L layers
    # one layer of gates per shifted row: row j (1 … 2P) shifts parameter p = (j-1) mod P of layer p // 2n;
    # its angles are sliced from shifted_thetas, so they are the very values the naive path uses
    shifted_rows = shifted_thetas(rows, shift)[:, 1:]  # (U, 2P, P)
    layer_of = (np.arange(2 * n_params) % n_params) // n_layer_params  # (2P,)
    cols = layer_of[:, None] * n_layer_params + np.arange(n_layer_params)
    one_layer = shifted_rows[:, np.arange(2 * n_params)[:, None], cols]  # (U, 2P, 2n)
    shift_gates = engine.make_gates(
        plan, one_layer.reshape(-1, n_layer_params), None, inverse=False
    )  # arrays (U·2P, …), one layer

    def per_row(arr):  # (U·2P, …) -> (U, 2P, …)
        return arr.reshape(n_rows, 2 * n_params, *arr.shape[1:])

    shift_fwd = [per_row(m) for m in shift_gates.fwd[0]]
    shift_phases = None if shift_gates.phases is None else per_row(shift_gates.phases)[:, :, 0]
    n_out = plan.readout.shape[1]
    out = np.empty((n_nodes, n_shift, n_samples, n_out))

    # the same sample chunks as the naive call, so every product has the same number of rows
    capacity = max(1, sim.chunk_bytes // (16 * dim))
    cb = min(n_samples, capacity)
    sample_blocks = [slice(b0, min(b0 + cb, n_samples)) for b0 in range(0, n_samples, cb)]
    shifts_of = [
        np.flatnonzero(layer_of == layer) for layer in range(n_layers)
    ]  # in shifted_thetas order
    jb = min(2 * n_layer_params, max(1, capacity // cb))  # shifted circuits per product batch
    # node blocks: as large as the workspace allows, but at least one per worker thread
    cn = max(1, min(n_nodes, capacity // (jb * cb)))
    blocks = max(-(-n_nodes // cn), min(n_nodes, sim._workers()))
    cn = -(-n_nodes // blocks)

    def of_nodes(arr, nodes):  # node axis 0 of a base gate array: shared (U = 1) or per node
        return arr if shared else arr[nodes]

    def task_gates(layer: int, js: np.ndarray, nodes: slice) -> engine.Gates:
        """Gates of shifted rows ``js`` (indices into 2P) from ``layer`` on: arrays (J or 1, U or cn, …)."""
        fwd = [[] for _ in range(layer)]  # layers before the start are never applied
        fwd.append([np.swapaxes(of_nodes(m[:, js], nodes), 0, 1) for m in shift_fwd])
        for later in base_gates.fwd[layer + 1 :]:
            fwd.append([of_nodes(m, nodes)[None] for m in later])
        phases = None
        if base_gates.phases is not None:
            ph = of_nodes(base_gates.phases, nodes)  # (U|cn, L, 1, dim)
            phases = np.empty((js.size, *ph.shape), dtype=ph.dtype)
            phases[...] = ph
            sp = of_nodes(shift_phases, nodes)[:, js]  # (U|cn, J, 1, dim)
            phases[:, :, layer] = np.swapaxes(sp, 0, 1)
        return engine.Gates(fwd=fwd, bwd=[], phases=phases, ry_last=np.empty(0))

    def block(ws, nodes, samples):
        """Unshifted circuit of a block of nodes (keeping each layer's input), then its shifted ones."""
        nc, ns = nodes.stop - nodes.start, samples.stop - samples.start
        a, b, t = ws.views(nc, ns)
        engine.initial_state(plan, x[nodes, samples], a[0])
        base = engine.Gates(
            fwd=[[of_nodes(m, nodes) for m in layer] for layer in base_gates.fwd],
            bwd=[],
            phases=None if base_gates.phases is None else of_nodes(base_gates.phases, nodes),
            ry_last=np.empty(0),
        )
        kept = np.empty((n_layers, nc, ns, dim), dtype=np.complex128)

        def keep(layer, psi):
            kept[layer] = psi

        last = engine.forward(plan, base, a[0], b[0], hook=keep)
        out[nodes, 0, samples] = engine.expectations(plan, last, t)
        for layer in range(n_layers):
            for j0 in range(0, shifts_of[layer].size, jb):
                js = shifts_of[layer][j0 : j0 + jb]
                a, b, t = ws.views(js.size * nc, ns)
                shape = (js.size, nc, ns, dim)
                a0 = a[0].reshape(shape)
                a0[...] = kept[layer]
                gates = task_gates(layer, js, nodes)
                last = engine.forward(plan, gates, a0, b[0].reshape(shape), start=layer)
                e = engine.expectations(plan, last, t.reshape(shape))  # (J, cn, cb, O)
                out[nodes, 1 + js, samples] = np.swapaxes(e, 0, 1)

    tasks = [
        (slice(n0, min(n0 + cn, n_nodes)), s) for n0 in range(0, n_nodes, cn) for s in sample_blocks
    ]
    sim._map(block, tasks, capacity=jb * cn * cb)
    return out
