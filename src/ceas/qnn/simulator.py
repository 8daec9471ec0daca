"""The batched QNN simulator: one state tensor over (nodes, samples, 2^n), exact expectations, adjoint
gradients, Jacobians, QFI and parameter-shift estimates with finite shots.

Every public method validates its inputs once, then hands chunks of (nodes, samples) to the engine
(:mod:`ceas.qnn.engine`), in parallel threads when more than one core is available.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np

from ceas._validate import positive_int, real_array, shape_is
from ceas.errors import ValidationError
from ceas.qnn import engine, qfi
from ceas.qnn import shots as shots_module
from ceas.qnn.circuit import CircuitSpec
from ceas.qnn.noise import NodeNoise, depolarised_qfi

# Bytes of one state buffer per chunk. The engine keeps about five such buffers per worker; 1 MiB keeps
# a worker's working set inside a 32 MiB L3 cache shared by a few cores.
DEFAULT_CHUNK_BYTES = 2**20
# Largest (N, B, 2^n) complex array a call may allocate (states kept between forward and backward).
DEFAULT_MAX_STATE_BYTES = 4 * 2**30


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_DEFAULT_THREADS: int | None = None


def set_default_threads(threads: int | None) -> None:
    """Worker threads of every simulator built without ``threads`` in this process (None: all usable cores).

    Grids running several processes on a few cores set 1 in each worker, so that simulators do not compete
    for the same cores; results do not depend on it.
    """
    global _DEFAULT_THREADS
    _DEFAULT_THREADS = None if threads is None else positive_int("threads", threads)


_CONTROLLER = None


def _blas_single_thread():
    """Keep BLAS single-threaded while our own threads run (avoids oversubscription)."""
    global _CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return nullcontext()
    if _CONTROLLER is None:  # scanning the loaded libraries costs ~0.3 ms: do it once
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


class QNNSimulator:
    """Batched state-vector simulator of a :class:`~ceas.qnn.circuit.CircuitSpec` circuit.

    Parameters
    ----------
    spec : CircuitSpec
    threads : int, optional
        Worker threads (default: the cores this process may use). Results do not depend on it.
    chunk_bytes : int, optional
        Size of one state buffer of a chunk of (nodes, samples), in bytes.
    group_sizes : tuple of int, optional
        Qubit grouping of the engine (MSB first, summing to n); results do not depend on it.
    max_state_bytes : int, optional
        Largest (N, B, 2^n) complex128 array a call may allocate; bigger calls raise ValidationError.

    Notes
    -----
    Shapes: θ (N, P) per node, x (N, B, n) per node and sample, outputs (N, B, O) with O =
    ``spec.n_outputs``. Angles are in radians; any real value is allowed (the encoding is periodic).
    """

    def __init__(
        self,
        spec: CircuitSpec,
        *,
        threads: int | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        group_sizes: tuple[int, ...] | None = None,
        max_state_bytes: int = DEFAULT_MAX_STATE_BYTES,
    ):
        if not isinstance(spec, CircuitSpec):
            raise ValidationError(f"spec must be a CircuitSpec, got {type(spec).__name__}")
        self.spec = spec
        self.threads = positive_int("threads", threads) if threads is not None else None
        self.chunk_bytes = positive_int("chunk_bytes", chunk_bytes, 1024)
        self.max_state_bytes = positive_int("max_state_bytes", max_state_bytes)
        if group_sizes is not None:
            sizes = tuple(group_sizes)
            if (
                not sizes
                or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in sizes)
                or min(sizes) < 1
                or max(sizes) > engine.MAX_GROUP
                or sum(sizes) != spec.n_qubits
            ):
                raise ValidationError(
                    f"group_sizes must be integers in [1, {engine.MAX_GROUP}] summing to n_qubits = "
                    f"{spec.n_qubits}, got {group_sizes!r}"
                )
        self.plan = engine.make_plan(spec, group_sizes)
        # Workspaces outlive calls (their buffers stay mapped: no page faults on the next call) and are
        # handed to whichever thread runs a chunk; the executor's threads persist between calls too.
        self._spare: list[engine.Workspace] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def __getstate__(self) -> dict:
        # threads, locks and scratch buffers are not data: a copy (e.g. sent to a worker process) starts fresh
        state = self.__dict__.copy()
        state.update(_spare=[], _lock=None, _pool=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ---------------------------------------------------------------------------------------------------------
    # validation
    # ---------------------------------------------------------------------------------------------------------
    def _check(self, theta, x) -> tuple[np.ndarray, np.ndarray]:
        spec = self.spec
        theta = real_array("theta", theta, 2)
        x = real_array("x", x, 3)
        n_nodes = theta.shape[0]
        shape_is("theta", theta, (n_nodes, spec.n_params), f"(N, {spec.n_params})")
        if n_nodes < 1:
            raise ValidationError(
                f"theta must have at least one row (node), got shape {theta.shape}"
            )
        shape_is("x", x, (n_nodes, x.shape[1], spec.n_qubits), f"(N={n_nodes}, B, {spec.n_qubits})")
        if x.shape[1] < 1:
            raise ValidationError(f"x must have at least one sample per node, got shape {x.shape}")
        return np.ascontiguousarray(theta), np.ascontiguousarray(x)

    def _check_memory(self, count: int, what: str) -> None:
        need = count * self.spec.dim * 16
        if need > self.max_state_bytes:
            raise ValidationError(
                f"{what} needs {need / 2**30:.2f} GiB of states, more than max_state_bytes = "
                f"{self.max_state_bytes / 2**30:.2f} GiB; split the nodes or samples into smaller calls"
            )

    # ---------------------------------------------------------------------------------------------------------
    # chunked, threaded execution
    # ---------------------------------------------------------------------------------------------------------
    def _chunks(self, n_nodes: int, n_samples: int) -> list[tuple[slice, slice]]:
        capacity = max(1, self.chunk_bytes // (16 * self.spec.dim))
        cb = min(n_samples, capacity)
        cn = max(1, min(n_nodes, capacity // cb))
        return [
            (slice(n0, min(n0 + cn, n_nodes)), slice(b0, min(b0 + cb, n_samples)))
            for n0 in range(0, n_nodes, cn)
            for b0 in range(0, n_samples, cb)
        ]

    def _node_block(self) -> int:
        """Nodes per block for calls over very many (virtual) nodes, e.g. the 2P+1 shifted circuits of
        parameter shift: keeps the per-node gate data (matrices and the RZ diagonal) near 64 MiB."""
        plan = self.plan
        mats = sum(4**g for _, g in plan.groups[:-1]) + 4 ** (plan.g_last + 1)
        per_node = plan.n_layers * (8 * 2 * mats + 16 * plan.dim)
        return max(1, (64 * 2**20) // per_node)

    def _acquire(self, capacity: int) -> engine.Workspace:
        with self._lock:
            for i, ws in enumerate(self._spare):
                if ws.capacity >= capacity:
                    return self._spare.pop(i)
            if self._spare:  # too small for this call: drop one, allocate a bigger one
                self._spare.pop()
        return engine.Workspace(self.spec.dim, capacity)

    def _release(self, ws: engine.Workspace) -> None:
        with self._lock:
            self._spare.append(ws)

    def _workers(self) -> int:
        """Worker threads a call may use."""
        return self.threads or _DEFAULT_THREADS or _available_cores()

    def _map(self, func: Callable, chunks: list, capacity: int | None = None) -> list:
        """``[func(ws, *chunk) for chunk in chunks]``, spread over worker threads, in order.

        A chunk is ``(nodes, samples)`` slices, or any tuple when ``capacity`` (the (node, sample) pairs a
        workspace must hold) is given.
        """
        if capacity is None:
            capacity = max((c[0].stop - c[0].start) * (c[1].stop - c[1].start) for c in chunks)

        def run(chunk):
            ws = self._acquire(capacity)
            try:
                return func(ws, *chunk)
            finally:
                self._release(ws)

        workers = min(self._workers(), len(chunks))
        if workers <= 1:
            return [run(c) for c in chunks]
        if self._pool is None or self._pool._max_workers != workers:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="ceas-qnn")
        with _blas_single_thread():
            return list(self._pool.map(run, chunks))

    def _gate_source(self, theta: np.ndarray, x: np.ndarray, inverse: bool = True) -> Callable:
        """``gates(nodes, samples)`` for the chunks of one call: built once for all nodes when gates are
        shared by a node's samples, per chunk when re-uploading makes them differ per sample.
        ``inverse=False`` for forward-only work."""
        if self.plan.reupload:
            return lambda nodes, samples: engine.make_gates(
                self.plan, theta[nodes], x[nodes, samples], inverse=inverse
            )
        shared = engine.make_gates(self.plan, theta, None, inverse=inverse)
        return shared.select

    # ---------------------------------------------------------------------------------------------------------
    # exact expectations and states
    # ---------------------------------------------------------------------------------------------------------
    def expval(self, theta, x) -> np.ndarray:
        """Exact pure-state ⟨Z_q⟩ of the readout qubits.

        Parameters
        ----------
        theta : array_like, shape (N, P)
        x : array_like, shape (N, B, n)

        Returns
        -------
        ndarray, shape (N, B, O)
        """
        theta, x = self._check(theta, x)
        return self._expval(theta, x)

    def _expval(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """:meth:`expval` on checked inputs, in blocks of nodes so gate data stay small."""
        n_nodes, n_samples = x.shape[:2]
        out = np.empty((n_nodes, n_samples, self.spec.n_outputs))
        block = self._node_block()
        if n_nodes > block:
            for n0 in range(0, n_nodes, block):
                out[n0 : n0 + block] = self._expval(theta[n0 : n0 + block], x[n0 : n0 + block])
            return out
        gates_of = self._gate_source(theta, x, inverse=False)

        def work(ws, nodes, samples):
            a, b, t = ws.views(nodes.stop - nodes.start, samples.stop - samples.start)
            engine.initial_state(self.plan, x[nodes, samples], a[0])
            last = engine.forward(self.plan, gates_of(nodes, samples), a[0], b[0])
            out[nodes, samples] = engine.expectations(self.plan, last, t)

        self._map(work, self._chunks(n_nodes, n_samples))
        return out

    def state(self, theta, x) -> np.ndarray:
        """The final pure state U(θ)V(x)|0…0⟩, shape (N, B, 2^n) complex (wire 0 most significant)."""
        theta, x = self._check(theta, x)
        n_nodes, n_samples = x.shape[:2]
        self._check_memory(n_nodes * n_samples, "state")
        out = np.empty((n_nodes, n_samples, self.spec.dim), dtype=np.complex128)
        gates_of = self._gate_source(theta, x, inverse=False)

        def work(ws, nodes, samples):
            a, b, _ = ws.views(nodes.stop - nodes.start, samples.stop - samples.start)
            engine.initial_state(self.plan, x[nodes, samples], a[0])
            gates = gates_of(nodes, samples)
            out[nodes, samples] = engine.forward(self.plan, gates, a[0], b[0], full=True)

        self._map(work, self._chunks(n_nodes, n_samples))
        return out

    # ---------------------------------------------------------------------------------------------------------
    # adjoint gradients
    # ---------------------------------------------------------------------------------------------------------
    def _check_weights(self, weights, shape: tuple) -> np.ndarray:
        w = real_array("weights", weights, 3)
        shape_is("weights", w, shape, f"(N, B, O) = {shape}")
        return w

    def _backward_chunk(self, ws, gates, last_state, weights, per_sample):
        """Backward pass of one chunk from the stored last-layer state; returns its gradient block."""
        cn, cb = last_state.shape[:2]
        a, b, t = ws.views(cn, cb)
        a[0] = last_state
        engine.start_adjoint(self.plan, a, weights, t)
        return engine.backward(self.plan, gates, a, b, t, per_sample)

    def expval_and_grad(self, theta, x, weights, *, reduce: bool = False):
        """Exact ⟨Z⟩ and the adjoint gradient of Σ_o w_o⟨Z_o⟩.

        Parameters
        ----------
        theta : array_like, shape (N, P)
        x : array_like, shape (N, B, n)
        weights : array_like of shape (N, B, O), or callable ``weights(E) -> (N, B, O)``
            Weights of the observables per sample. A callable receives the exact expectations E (N, B, O)
            (e.g. a loss derivative), so the forward pass runs once.
        reduce : bool
            Sum the gradient over samples (shape (N, P)) instead of returning it per sample.

        Returns
        -------
        E : ndarray, shape (N, B, O)
        G : ndarray, shape (N, B, P), or (N, P) with ``reduce``
            ``G[k, b, p] = ∂/∂θ_{k,p} Σ_o w_{k,b,o}⟨Z_o⟩(θ_k, x_{k,b})``, one backward sweep (adjoint method).
        """
        theta, x = self._check(theta, x)
        n_nodes, n_samples = x.shape[:2]
        shape = (n_nodes, n_samples, self.spec.n_outputs)
        if not callable(weights):
            w = self._check_weights(weights, shape)
            return self._fused(theta, x, lambda e, nodes, samples: w[nodes, samples], reduce)
        self._check_memory(n_nodes * n_samples, "expval_and_grad with callable weights")
        last, e = self._forward_store(theta, x)
        w = self._check_weights(weights(e.copy()), shape)
        return e, self._backward_all(theta, x, last, [w], reduce)[0]

    def _fused(self, theta, x, weight_fn, reduce: bool):
        """Forward and backward per chunk (no state kept between chunks).

        ``weight_fn(E_chunk, nodes, samples) -> weights chunk`` gives per-sample weights from the chunk's
        exact expectations.
        """
        n_nodes, n_samples = x.shape[:2]
        n_params = self.spec.n_params
        e_out = np.empty((n_nodes, n_samples, self.spec.n_outputs))
        per_sample = not reduce or self.plan.reupload
        gates_of = self._gate_source(theta, x)

        def work(ws, nodes, samples):
            cn, cb = nodes.stop - nodes.start, samples.stop - samples.start
            a, b, t = ws.views(cn, cb)
            gates = gates_of(nodes, samples)
            engine.initial_state(self.plan, x[nodes, samples], a[0])
            last = engine.forward(self.plan, gates, a[0], b[0])
            e = engine.expectations(self.plan, last, t)
            e_out[nodes, samples] = e
            w = weight_fn(e, nodes, samples)
            s1, s2 = (a, b) if np.shares_memory(last, a) else (b, a)
            engine.start_adjoint(self.plan, s1, w, t)
            g = engine.backward(self.plan, gates, s1, s2, t, per_sample)
            return g.reshape(cn, cb, n_params) if per_sample else g.reshape(cn, n_params)

        chunks = self._chunks(n_nodes, n_samples)
        blocks = self._map(work, chunks)
        if reduce:
            grad = np.zeros((n_nodes, n_params))
            for (nodes, _), g in zip(chunks, blocks):
                grad[nodes] += g.sum(axis=1) if per_sample else g
        else:
            grad = np.empty((n_nodes, n_samples, n_params))
            for (nodes, samples), g in zip(chunks, blocks):
                grad[nodes, samples] = g
        return e_out, grad

    def _forward_store(self, theta, x):
        """Forward pass of every chunk; returns the last-layer states (N, B, 2^n) and E (N, B, O)."""
        n_nodes, n_samples = x.shape[:2]
        last_all = np.empty((n_nodes, n_samples, self.spec.dim), dtype=np.complex128)
        e_out = np.empty((n_nodes, n_samples, self.spec.n_outputs))
        gates_of = self._gate_source(theta, x)

        def work(ws, nodes, samples):
            a, b, t = ws.views(nodes.stop - nodes.start, samples.stop - samples.start)
            engine.initial_state(self.plan, x[nodes, samples], a[0])
            last = engine.forward(self.plan, gates_of(nodes, samples), a[0], b[0])
            last_all[nodes, samples] = last
            e_out[nodes, samples] = engine.expectations(self.plan, last, t)

        self._map(work, self._chunks(n_nodes, n_samples))
        return last_all, e_out

    def _backward_all(self, theta, x, last_all, weight_list, reduce: bool) -> list[np.ndarray]:
        """One backward sweep per weight array in ``weight_list`` from stored last-layer states."""
        n_nodes, n_samples = x.shape[:2]
        n_params = self.spec.n_params
        per_sample = not reduce or self.plan.reupload
        chunks = self._chunks(n_nodes, n_samples)
        gates_of = self._gate_source(theta, x)
        results = []
        for w in weight_list:

            def work(ws, nodes, samples, w=w):
                cn, cb = nodes.stop - nodes.start, samples.stop - samples.start
                g = self._backward_chunk(
                    ws,
                    gates_of(nodes, samples),
                    last_all[nodes, samples],
                    w[nodes, samples],
                    per_sample,
                )
                return g.reshape(cn, cb, n_params) if per_sample else g.reshape(cn, n_params)

            blocks = self._map(work, chunks)
            if reduce:
                grad = np.zeros((n_nodes, n_params))
                for (nodes, _), g in zip(chunks, blocks):
                    grad[nodes] += g.sum(axis=1) if per_sample else g
            else:
                grad = np.empty((n_nodes, n_samples, n_params))
                for (nodes, samples), g in zip(chunks, blocks):
                    grad[nodes, samples] = g
            results.append(grad)
        return results

    def jacobian(self, theta, x) -> np.ndarray:
        """Exact ∂⟨Z_o⟩/∂θ_p per node and sample, shape (N, B, O, P): one forward pass and O adjoint sweeps."""
        theta, x = self._check(theta, x)
        n_nodes, n_samples = x.shape[:2]
        n_out = self.spec.n_outputs
        self._check_memory(n_nodes * n_samples, "jacobian")
        last, _ = self._forward_store(theta, x)
        onehots = []
        for o in range(n_out):  # loop over observables (O <= n), not over data
            w = np.zeros((n_nodes, n_samples, n_out))
            w[..., o] = 1.0
            onehots.append(w)
        grads = self._backward_all(theta, x, last, onehots, reduce=False)
        return np.stack(grads, axis=2)

    # ---------------------------------------------------------------------------------------------------------
    # quantum Fisher information and parameter shift (implemented in ceas.qnn.qfi / ceas.qnn.shots)
    # ---------------------------------------------------------------------------------------------------------
    def qfi_diagonal(self, theta, x) -> np.ndarray:
        """Diagonal of the pure-state QFI (= 4 × Fubini–Study metric), shape (N, B, P).

        See :func:`ceas.qnn.qfi.qfi_diagonal`.
        """
        return qfi.qfi_diagonal(self, theta, x)

    def qfi_matrix(self, theta, x, *, max_params: int = 256) -> np.ndarray:
        """Full pure-state QFI, shape (N, B, P, P), for P <= ``max_params``.

        See :func:`ceas.qnn.qfi.qfi_matrix`.
        """
        return qfi.qfi_matrix(self, theta, x, max_params=max_params)

    def parameter_shift(
        self,
        theta,
        x,
        *,
        shots: int | None = None,
        rng: np.random.Generator | None = None,
        noise: NodeNoise | None = None,
    ):
        """Expectations (N, B, O) and Jacobian (N, B, O, P) by the parameter-shift rule with ``shots``
        binomial shots per expectation (None: exact), each shrunk by the node's noise contraction.

        See :func:`ceas.qnn.shots.parameter_shift`.
        """
        return shots_module.parameter_shift(self, theta, x, shots=shots, rng=rng, noise=noise)

    def _contraction(self, noise: NodeNoise | None, n_nodes: int) -> np.ndarray:
        if noise is None:
            return np.ones(n_nodes)
        if not isinstance(noise, NodeNoise):
            raise ValidationError(f"noise must be a NodeNoise or None, got {type(noise).__name__}")
        if noise.n_nodes != n_nodes:
            raise ValidationError(
                f"noise must have one entry per node (N = {n_nodes}), got {noise.n_nodes}"
            )
        return noise.contraction(self.spec.n_layers)

    def depolarised_qfi_diagonal(self, theta, x, noise: NodeNoise) -> np.ndarray:
        """QFI diagonal of each node's depolarised state (readout error does not enter), shape (N, B, P)."""
        f = self.qfi_diagonal(theta, x)
        self._contraction(noise, f.shape[0])
        q = noise.mixing(self.spec.n_layers)
        return depolarised_qfi(f, q[:, None, None], self.spec.dim)
