"""What every partition scheme offers (the :class:`PartitionScheme` protocol), its pair demand, and the shared
density-matrix runner of the unitary- and circuit-level schemes.

Shapes follow :class:`ceas.qnn.QNNSimulator`: θ (N, P) per node, x (N, B, n) per node and sample, expectations
(N, B, O), Jacobians (N, B, O, P). Pair visibilities ``werner`` broadcast to (N, *scheme.pair_shape): one Werner
parameter per pair a single circuit run consumes, the same for every run of that node in the call.
"""

from __future__ import annotations

import itertools
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ceas._validate import generator, in_range, positive_int, real_array, shape_is
from ceas.errors import ValidationError
from ceas.partitions import _density as dm
from ceas.partitions._trajectory import (
    finish,
    frame_gathers,
    initial_vectors,
    layer0_state,
    propagate,
    sample_frames,
)
from ceas.partitions.channels import (
    remote_cnot_error_probs,
    teleport_error_probs,
    werner_pauli_mixture,
)
from ceas.partitions.noise import PlacementNoise, check_noise
from ceas.qnn.circuit import CircuitSpec, cnot_permutation, z_signs
from ceas.qnn.gates import kron_vectors, local_unitary, ry_matrix, rz_phases
from ceas.qnn.shots import sample_expval

__all__ = ["PairDemand", "PartitionScheme", "pair_demand"]

# Largest register the density-matrix schemes accept: a 2^10 × 2^10 state is 16 MiB per sample.
MAX_DENSITY_QUBITS = 10
# Bytes of the density matrices simulated at once (several temporaries of this size exist during a layer).
CHUNK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class PairDemand:
    """Bell pairs a scheme needs for a batch of circuit runs (what the scheduler budgets).

    Attributes
    ----------
    scheme : str
        Registry name of the scheme.
    links : tuple of (int, int)
        QPU pairs (a < b, QPU indices within one circuit's placement) that consume pairs.
    pairs_per_run_per_link : tuple of int
        Pairs one circuit run (one shot) consumes on each of ``links``.
    runs : int
        Circuit runs (shots × expectations) in the batch.
    """

    scheme: str
    links: tuple[tuple[int, int], ...]
    pairs_per_run_per_link: tuple[int, ...]
    runs: int

    @property
    def pairs_per_run(self) -> int:
        """Pairs one circuit run consumes, over all links."""
        return int(sum(self.pairs_per_run_per_link))

    @property
    def per_link(self) -> dict[tuple[int, int], int]:
        """Pairs the whole batch consumes on each link."""
        return {
            link: count * self.runs for link, count in zip(self.links, self.pairs_per_run_per_link)
        }

    @property
    def total(self) -> int:
        """Pairs the whole batch consumes: pairs per run × runs."""
        return self.pairs_per_run * self.runs


@runtime_checkable
class PartitionScheme(Protocol):
    """A way of running the circuit of ``spec`` on one or more QPUs (SPEC §7, Fig. 1).

    Attributes
    ----------
    name : str
        Registry key ("data", "unitary", "circuit", ...).
    spec : CircuitSpec
    n_qpus : int
        K, the QPUs one circuit occupies.
    pair_shape : tuple of int
        Shape of the pair visibilities one run consumes (``werner`` broadcasts to (N, *pair_shape)).
    links : tuple of (int, int)
        QPU pairs that consume pairs, and ``pairs_per_link`` the pairs one run uses on each.
    slot_link : tuple of int, length prod(pair_shape)
        For each flattened pair slot, the index into ``links`` of the link that pair is on (() when no pairs).
    parameter_owner : ndarray (P,) int
        The QPU (0 … K−1) holding each parameter: whose replicas agree on it, whose gradient share it is.

    Methods
    -------
    All take θ (N, P), x (N, B, n), ``werner`` and the keywords ``noise`` (a
    :class:`~ceas.partitions.noise.PlacementNoise` of shape (N, K), or None) and ``rng`` (a Generator: for shots,
    and for the error patterns of a trajectory simulator).

    * ``expval(theta, x, werner=1.0, *, noise=None, rng=None)`` -> (N, B, O)
    * ``shifted_expvals(theta, x, werner=1.0, *, noise=None, rng=None)`` -> (N, 2P+1, B, O): the expectations at
      θ, θ + π/2·e_p, θ − π/2·e_p before shot sampling (exact, or trajectory means over patterns shared by the
      2P+1 circuits of a sample): what the caller needs for the plug-in shot variance of the gradient
    * ``expval_and_jacobian(theta, x, werner=1.0, *, shots=None, rng=None, noise=None)`` -> (N, B, O), (N, B, O, P)
    * ``contraction(noise)`` -> (N, O): the factor node noise shrinks each readout ⟨Z⟩ by (exact at the data and
      unitary levels, a first-order calibration at the circuit level)
    """

    name: str
    spec: CircuitSpec
    n_qpus: int
    pair_shape: tuple[int, ...]
    links: tuple[tuple[int, int], ...]
    pairs_per_link: tuple[int, ...]
    slot_link: tuple[int, ...]
    parameter_owner: np.ndarray

    def expval(self, theta, x, werner=1.0, *, noise=None, rng=None) -> np.ndarray:
        """Expectations (N, B, O) of the readout ⟨Z⟩ with pairs of visibility ``werner``."""
        ...

    def shifted_expvals(self, theta, x, werner=1.0, *, noise=None, rng=None) -> np.ndarray:
        """Expectations (N, 2P+1, B, O) at the parameter-shifted θ, before shot sampling."""
        ...

    def expval_and_jacobian(
        self, theta, x, werner=1.0, *, shots: int | None = None, rng=None, noise=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expectations (N, B, O) and their parameter-shift Jacobian (N, B, O, P)."""
        ...

    def contraction(self, noise) -> np.ndarray:
        """Factor (N, O) by which node noise shrinks each readout ⟨Z⟩."""
        ...


def pair_demand(
    scheme: PartitionScheme,
    *,
    samples: int,
    shots: int,
    gradient: bool = True,
    nodes: int = 1,
) -> PairDemand:
    """Pairs one round of ``scheme`` needs: pairs per run × runs.

    Every shot is one run of the circuit and consumes fresh pairs. A round estimates, for each of ``nodes``
    circuit replicas and each of ``samples`` samples, one expectation (forward only) or 2P + 1 (the value and
    the two-term parameter shift of each of the P parameters), each from ``shots`` runs.

    Parameters
    ----------
    scheme : PartitionScheme
    samples : int
        Samples (minibatch size) per replica, >= 1.
    shots : int
        Runs per expectation, >= 1 (SPEC §3 default 512). Exact simulation (shots = none) idealises this;
        budget it with the shot count the hardware would need.
    gradient : bool
        Parameter-shift gradient (2P + 1 expectations per sample) or forward pass only (1).
    nodes : int
        Replicas of the partitioned circuit evaluated this round, >= 1.

    Returns
    -------
    PairDemand
    """
    samples = positive_int("samples", samples)
    shots = positive_int("shots", shots)
    nodes = positive_int("nodes", nodes)
    if not isinstance(gradient, (bool, np.bool_)):
        raise ValidationError(f"gradient must be a bool, got {gradient!r}")
    per_sample = 2 * scheme.spec.n_params + 1 if gradient else 1
    return PairDemand(
        scheme=scheme.name,
        links=tuple(scheme.links),
        pairs_per_run_per_link=tuple(int(c) for c in scheme.pairs_per_link),
        runs=nodes * samples * per_sample * shots,
    )


# ---------------------------------------------------------------------------------------------------------------
# shared input checks
# ---------------------------------------------------------------------------------------------------------------
def check_inputs(spec: CircuitSpec, theta, x) -> tuple[np.ndarray, np.ndarray]:
    """θ as (N, P) and x as (N, B, n) float arrays, or ValidationError naming the argument."""
    theta = real_array("theta", theta, 2)
    x = real_array("x", x, 3)
    n_nodes = theta.shape[0]
    shape_is("theta", theta, (n_nodes, spec.n_params), f"(N, {spec.n_params})")
    if n_nodes < 1:
        raise ValidationError(f"theta must have at least one row (node), got shape {theta.shape}")
    shape_is("x", x, (n_nodes, x.shape[1], spec.n_qubits), f"(N={n_nodes}, B, {spec.n_qubits})")
    if x.shape[1] < 1:
        raise ValidationError(f"x must have at least one sample per node, got shape {x.shape}")
    return theta, x


def check_werner(werner, n_nodes: int, pair_shape: tuple[int, ...]) -> np.ndarray:
    """Visibilities broadcast to (N, *pair_shape), each in [0, 1]."""
    w = np.asarray(werner)
    if w.dtype == object or not (
        np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)
    ):
        raise ValidationError(f"werner must be a real numeric array, got dtype {w.dtype}")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)):
        raise ValidationError("werner must contain only finite values, got NaN or inf")
    shape = (n_nodes, *pair_shape)
    try:
        w = np.broadcast_to(w, shape)
    except ValueError:
        raise ValidationError(
            f"werner must broadcast to (N, *pair_shape) = {shape}, got shape {w.shape}"
        ) from None
    in_range("werner", w, 0.0, 1.0)
    return w


def shifted_thetas(theta: np.ndarray) -> np.ndarray:
    """(N, 2P+1, P): θ, then θ + π/2·e_p for every p, then θ − π/2·e_p."""
    eye = 0.5 * np.pi * np.eye(theta.shape[1])
    return np.concatenate(
        [theta[:, None, :], theta[:, None, :] + eye, theta[:, None, :] - eye], axis=1
    )


def shift_rule(e_all: np.ndarray, n_params: int, shots, rng) -> tuple[np.ndarray, np.ndarray]:
    """Expectations (N, 2P+1, B, O) at :func:`shifted_thetas` -> (E (N, B, O), J (N, B, O, P)).

    With ``shots``, every expectation is first replaced by its S-shot binomial estimate.
    """
    if shots is not None:
        shots = positive_int("shots", shots)
        e_all = sample_expval(e_all, shots, generator("rng", rng))
    jac = (e_all[:, 1 : 1 + n_params] - e_all[:, 1 + n_params :]) / 2.0  # (N, P, B, O)
    return e_all[:, 0], np.moveaxis(jac, 1, 3)


def _blas_single_thread():
    """One BLAS thread: the GEMMs here are small (2^g × 2^g by 2^g × 4^n/2^g) and a second thread costs more in
    synchronisation than it gains (and stalls badly on a loaded machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# ---------------------------------------------------------------------------------------------------------------
# execution of a circuit with pair channels and node noise inserted: density matrices or trajectories
# ---------------------------------------------------------------------------------------------------------------
SIMULATORS = ("auto", "density", "trajectory")
# Bytes of the pure states one trajectory chunk holds (a few temporaries of this size exist during a layer).
TRAJECTORY_CHUNK_BYTES = 16 * 2**20


def choose_simulator(scheme: str, n_qubits: int, simulator: str, trajectories: int) -> tuple[str, int]:
    """("density" | "trajectory", trajectories) for the constructor options; ValidationError naming the option."""
    if simulator not in SIMULATORS:
        raise ValidationError(f"simulator must be one of {', '.join(SIMULATORS)}, got {simulator!r}")
    trajectories = positive_int("trajectories", trajectories)
    if simulator == "auto":
        simulator = "density" if n_qubits <= MAX_DENSITY_QUBITS else "trajectory"
    if simulator == "density" and n_qubits > MAX_DENSITY_QUBITS:
        raise ValidationError(
            f"n_qubits must be in [1, {MAX_DENSITY_QUBITS}] for the {scheme}-level scheme with "
            f"simulator='density' (density matrices of 4^n entries per sample), got {n_qubits}; "
            "use simulator='trajectory' (or 'auto') for wider registers"
        )
    return simulator, trajectories


class DensityScheme:
    """Base of the unitary- and circuit-level schemes: subclasses set the attributes below in ``__init__`` and call
    :meth:`_init_simulator`.

    ``program[l]`` lists the operations after layer l's local rotations (the entangler's CNOT runs and the
    pair channels), each a :mod:`ceas.partitions._density` op whose ``slot`` indexes the flattened pair axis.
    ``node_blocks[l]`` lists the (qpu, qubits) blocks that node noise depolarises after layer l, and
    ``readout_qpu[o]`` the QPU that measures readout qubit o. ``simulator`` is "density" (exact, n <= 10) or
    "trajectory" (Monte-Carlo over ``trajectories`` error patterns per node and sample, pure states).
    """

    name: str
    spec: CircuitSpec
    n_qpus: int
    pair_shape: tuple[int, ...]
    program: tuple[tuple[object, ...], ...]
    node_blocks: tuple[tuple[tuple[int, tuple[int, ...]], ...], ...]
    readout_qpu: tuple[int, ...]
    simulator: str
    trajectories: int

    def _check_spec(self, spec: CircuitSpec) -> CircuitSpec:
        if not isinstance(spec, CircuitSpec):
            raise ValidationError(f"spec must be a CircuitSpec, got {type(spec).__name__}")
        return spec

    def _init_simulator(self, simulator: str, trajectories: int) -> None:
        self.simulator, self.trajectories = choose_simulator(
            self.name, self.spec.n_qubits, simulator, trajectories
        )

    @property
    def pairs_per_run(self) -> int:
        """Pairs one run of the circuit consumes."""
        return int(np.prod(self.pair_shape))

    # ---------------------------------------------------------------------------------------------------------
    # density matrices
    # ---------------------------------------------------------------------------------------------------------
    def _run(
        self, theta: np.ndarray, x: np.ndarray, werner: np.ndarray, node_p: np.ndarray | None = None
    ) -> np.ndarray:
        """Expectations (M, O) for θ (M, P), x (M, n), pair visibilities (M, S) flattened over pair_shape and
        node depolarising strengths (M, K) (None: no node noise)."""
        spec = self.spec
        n, n_layers, dim = spec.n_qubits, spec.n_layers, spec.dim
        th = theta.reshape(-1, n_layers, n, 2)
        ry = th[..., 0] + x[:, None, :] if spec.reupload else th[..., 0]
        u = local_unitary(ry, th[..., 1])  # (M, L, n, 2, 2)
        probs = remote_cnot_error_probs(werner_pauli_mixture(werner))  # (M, S, 4)
        rho = dm.zero_state(len(theta), dim) if spec.reupload else dm.product_state(x)
        for layer in range(n_layers):  # loop over layers and gates of the circuit, not over data
            rho = dm.apply_local(rho, u[:, layer])
            for op in self.program[layer]:
                if isinstance(op, dm.Permute):
                    rho = dm.apply_permute(rho, op)
                elif isinstance(op, dm.Depolarise):
                    rho = dm.depolarise(rho, op.qubit, n, werner[:, op.slot])
                else:
                    rho = dm.remote_cnot_noise(rho, op.control, op.target, n, probs[:, op.slot])
            if node_p is not None:
                for qpu, qubits in self.node_blocks[layer]:
                    rho = dm.block_depolarise(rho, qubits, n, node_p[:, qpu])
        return dm.z_expectations(rho, spec.readout_qubits, n)

    def _batched(
        self, theta: np.ndarray, x: np.ndarray, werner: np.ndarray, node_p: np.ndarray | None = None
    ) -> np.ndarray:
        """θ (N, E, P) parameter sets per node, x (N, B, n), werner (N, *pair_shape), node_p (N, K) or None
        -> (N, E, B, O)."""
        n_nodes, n_sets, n_params = theta.shape
        n_samples = x.shape[1]
        th = np.broadcast_to(theta[:, :, None, :], (n_nodes, n_sets, n_samples, n_params))
        xs = np.broadcast_to(x[:, None], (n_nodes, n_sets, n_samples, x.shape[2]))
        ws = werner.reshape(n_nodes, 1, 1, self.pairs_per_run)
        ws = np.broadcast_to(ws, (n_nodes, n_sets, n_samples, ws.shape[-1]))
        total = n_nodes * n_sets * n_samples
        th, xs, ws = (a.reshape(total, a.shape[-1]) for a in (th, xs, ws))
        ps = None
        if node_p is not None:
            ps = np.broadcast_to(node_p[:, None, None], (n_nodes, n_sets, n_samples, node_p.shape[1]))
            ps = ps.reshape(total, -1)
        per_chunk = max(1, CHUNK_BYTES // (16 * self.spec.dim**2))
        out = np.empty((total, self.spec.n_outputs))
        with _blas_single_thread():
            for start in range(0, total, per_chunk):  # chunks bound the memory of one call
                sl = slice(start, min(start + per_chunk, total))
                out[sl] = self._run(th[sl], xs[sl], ws[sl], None if ps is None else ps[sl])
        return out.reshape(n_nodes, n_sets, n_samples, -1)

    # ---------------------------------------------------------------------------------------------------------
    # trajectories
    # ---------------------------------------------------------------------------------------------------------
    def _layer_cnots(self, layer: int) -> tuple[tuple[int, int], ...]:
        return tuple(c for op in self.program[layer] if isinstance(op, dm.Permute) for c in op.cnots)

    def _global_factor(self, node_p: np.ndarray | None, n_nodes: int) -> np.ndarray:
        """Π (1−p) over the node-noise blocks that cover the whole register, shape (N,): global depolarising
        commutes with every gate and Pauli channel and I/d has ⟨Z⟩ = 0, so it scales ⟨Z⟩ exactly."""
        factor = np.ones(n_nodes)
        if node_p is not None:
            for blocks in self.node_blocks:
                for qpu, qubits in blocks:
                    if len(qubits) == self.spec.n_qubits:
                        factor = factor * (1.0 - node_p[:, qpu])
        return factor

    def _trajectory_jobs(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The distinct circuits among θ (N, E, P): (node (J,), θ (J, P), index (N·E,) of each row's job).

        Rows equal up to the last layer's RZ angles are one job (RZ before the last CNOTs and a Z measurement only
        changes phases). Jobs come sorted by (node, θ), so jobs sharing layer 0 are contiguous."""
        n_nodes, n_sets, n_params = theta.shape
        n, n_layers = self.spec.n_qubits, self.spec.n_layers
        key = theta.reshape(n_nodes * n_sets, n_layers, n, 2).copy()
        key[:, n_layers - 1, :, 1] = 0.0
        nodes = np.repeat(np.arange(n_nodes, dtype=np.float64), n_sets)[:, None]
        key = np.concatenate([nodes, key.reshape(n_nodes * n_sets, n_params)], axis=1)
        uniq, first, index = np.unique(key, axis=0, return_index=True, return_inverse=True)
        return uniq[:, 0].astype(np.intp), theta.reshape(-1, n_params)[first], index.ravel()

    def _run_jobs(self, node, theta, x, fx, fz) -> np.ndarray:
        """⟨Z⟩ (J, B, T, O) of every job (node (J,), θ (J, P)) on the frames fx, fz (N, B, T, L, n); each
        layer-0 state is built once per group of jobs sharing it and read by all of them."""
        spec = self.spec
        n, n_layers, n_out, n_jobs = spec.n_qubits, spec.n_layers, spec.n_outputs, len(node)
        n_samples, n_traj = fx.shape[1:3]
        n_bu = n_samples if spec.reupload else 1  # units per job: samples when their gates differ
        n_st = n_samples * n_traj // n_bu
        th = theta.reshape(n_jobs, 1, n_layers, n, 2)
        ry = th[..., 0] + x[node][:, :, None, :] if spec.reupload else th[..., 0]  # (J, Bu, L, n)
        rz = np.broadcast_to(th[..., 1], ry.shape)
        u0 = local_unitary(ry[..., 0, :], rz[..., 0, :])  # (J, Bu, n, 2, 2), layer 0
        ry_mats = ry_matrix(ry)  # (J, Bu, L, n, 2, 2)
        rz_diag = kron_vectors(rz_phases(rz)) if n_layers >= 3 else np.ones((n_jobs, 1, n_layers, 1))
        fx0, fz0 = fx[..., 0, :].copy(), fz[..., 0, :].copy()  # frame 0, pulled back through layer 0's CNOTs
        propagate(fx0, fz0, self._layer_cnots(0), reverse=True)
        cnots = [self._layer_cnots(layer) for layer in range(n_layers)]
        inverses = tuple(cnot_permutation(n, c).argsort() for c in cnots)
        last = cnots[-1] if n_layers >= 2 else ()  # layer0_state applies layer 0's CNOTs itself
        signs = z_signs(n)[cnot_permutation(n, last)][:, list(spec.readout_qubits)]
        key0 = np.concatenate([node[:, None], theta[:, : 2 * n]], axis=1)
        starts = np.flatnonzero(np.r_[True, np.any(key0[1:] != key0[:-1], axis=1), True])
        per_state = 16 * spec.dim
        sc = min(n_st, max(1, TRAJECTORY_CHUNK_BYTES // per_state))
        bc = max(1, min(n_bu, TRAJECTORY_CHUNK_BYTES // (per_state * sc)))
        jc = max(1, TRAJECTORY_CHUNK_BYTES // (per_state * sc * bc))
        out = np.empty((n_jobs, n_bu, n_st, n_out))
        for a, b in itertools.pairwise(starts):  # groups of jobs sharing layer 0
            k = node[a]
            enc = None if spec.reupload else x[k][:, None, :]
            v0 = initial_vectors(u0[a][:, None], enc, fx0[k], fz0[k]).reshape(n_bu, n_st, n, 2)
            fxm = fx[k].reshape(n_bu, n_st, n_layers, n)
            fzm = fz[k].reshape(n_bu, n_st, n_layers, n)
            for b0 in range(0, n_bu, bc):  # chunks bound the memory of one call
                for s0 in range(0, n_st, sc):
                    bs, ss = slice(b0, b0 + bc), slice(s0, s0 + sc)
                    psi0 = layer0_state(v0[bs, ss], inverses[0])[None]
                    gathers = [None] + [
                        frame_gathers(inverses[m], fxm[bs, ss, m], fzm[bs, ss, m])
                        for m in range(1, n_layers - 1)
                    ]  # fmt: skip
                    for j0 in range(a, b, jc):
                        js = slice(j0, min(j0 + jc, b))
                        out[js, bs, ss] = finish(
                            psi0, ry_mats[js, bs], rz_diag[js, bs], gathers, signs
                        )
        return out.reshape(n_jobs, n_samples, n_traj, n_out)

    def _trajectory_samples(
        self,
        theta: np.ndarray,
        x: np.ndarray,
        werner: np.ndarray,
        node_p: np.ndarray | None,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """⟨Z⟩ of every trajectory: θ (N, E, P), x (N, B, n), werner (N, *pair_shape), node_p (N, K) or None ->
        (N, E, B, T, O). The T error patterns of a (node, sample) are drawn once and shared by its E sets."""
        spec = self.spec
        n, n_layers, n_out = spec.n_qubits, spec.n_layers, spec.n_outputs
        n_nodes, n_sets, _ = theta.shape
        n_samples, n_traj = x.shape[1], self.trajectories
        mix = werner_pauli_mixture(werner.reshape(n_nodes, -1))  # (N, S_pairs, 4)
        fx, fz = sample_frames(
            self.program, self.node_blocks, n, teleport_error_probs(mix),
            remote_cnot_error_probs(mix), node_p, (n_nodes, n_samples, n_traj), rng,
        )  # fmt: skip
        node, jobs, index = self._trajectory_jobs(theta)
        with _blas_single_thread():
            out = self._run_jobs(node, jobs, x, fx, fz)[index]
        out = out.reshape(n_nodes, n_sets, n_samples, n_traj, n_out)
        if n_layers >= 2:  # the last layer's frame flips ⟨Z_q⟩ where it has X or Y on q
            flips = fx[..., n_layers - 1, list(spec.readout_qubits)]  # (N, B, T, O)
            out = out * np.where(flips, -1.0, 1.0)[:, None]
        return out * self._global_factor(node_p, n_nodes)[:, None, None, None, None]

    # ---------------------------------------------------------------------------------------------------------
    # public interface
    # ---------------------------------------------------------------------------------------------------------
    def _check_call(self, theta, x, werner, noise, rng):
        """Checked (θ (N, P), x (N, B, n), werner (N, *pair_shape), noise or None, rng or None)."""
        theta, x = check_inputs(self.spec, theta, x)
        w = check_werner(werner, theta.shape[0], self.pair_shape)
        noise = check_noise(noise, theta.shape[0], self.n_qpus)
        if self.simulator == "trajectory" and not isinstance(rng, np.random.Generator):
            raise ValidationError(
                "rng must be a numpy.random.Generator: the trajectory simulator (n_qubits = "
                f"{self.spec.n_qubits}) draws its error patterns from it, got {type(rng).__name__}"
            )
        return theta, x, w, noise, rng

    def _expvals(self, sets: np.ndarray, x, w, noise: PlacementNoise | None, rng) -> np.ndarray:
        """(N, E, B, O) at the parameter sets (N, E, P) on checked inputs, node noise and readout included."""
        node_p = None if noise is None else noise.depolarizing
        if self.simulator == "trajectory":
            e = self._trajectory_samples(sets, x, w, node_p, rng).mean(axis=3)
        else:
            e = self._batched(sets, x, w, node_p)
        if noise is not None:
            e = e * readout_factor(noise, self.readout_qpu)[:, None, None, :]
        return e

    def expval(self, theta, x, werner=1.0, *, noise: PlacementNoise | None = None, rng=None) -> np.ndarray:
        """Readout ⟨Z⟩ of the partitioned circuit: exact (density) or the mean over trajectories.

        Parameters
        ----------
        theta : array_like, shape (N, P)
            Radians.
        x : array_like, shape (N, B, n)
            Input angles, radians.
        werner : float or array_like broadcastable to (N, *pair_shape)
            Visibility in [0, 1] of each pair a run consumes (1 = perfect pairs).
        noise : PlacementNoise, optional
            Node noise, shape (N, K = n_qpus); None: noiseless QPUs.
        rng : numpy.random.Generator
            Required with the trajectory simulator (error patterns); unused by the density simulator.

        Returns
        -------
        ndarray, shape (N, B, O)
        """
        theta, x, w, noise, rng = self._check_call(theta, x, werner, noise, rng)
        return self._expvals(theta[:, None, :], x, w, noise, rng)[:, 0]

    def shifted_expvals(
        self, theta, x, werner=1.0, *, noise: PlacementNoise | None = None, rng=None
    ) -> np.ndarray:
        """Expectations at :func:`shifted_thetas` (θ, θ + π/2·e_p, θ − π/2·e_p) before any shot sampling.

        Exact with the density simulator; with trajectories each is the mean over the same ``trajectories``
        error patterns per (node, sample) for all 2P + 1 sets (common random numbers: unbiased, but not always a
        lower gradient variance, see docs/partitions.md). Arguments as in
        :meth:`expval`.

        Returns
        -------
        ndarray, shape (N, 2P+1, B, O)
        """
        theta, x, w, noise, rng = self._check_call(theta, x, werner, noise, rng)
        return self._expvals(shifted_thetas(theta), x, w, noise, rng)

    def expval_and_jacobian(
        self,
        theta,
        x,
        werner=1.0,
        *,
        shots: int | None = None,
        rng=None,
        noise: PlacementNoise | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expectations and their Jacobian by the two-term parameter-shift rule.

        The rule is exact for the noisy circuit too: every parameter enters through one gate
        exp(-iθP/2) and neither the pair channels nor the node noise depend on θ.

        Parameters
        ----------
        theta, x, werner, noise
            As in :meth:`expval`.
        shots : int or None
            S >= 1 runs per expectation (2P + 1 per sample); None gives the expectations of
            :meth:`shifted_expvals` themselves.
        rng : numpy.random.Generator
            Required when ``shots`` is set or with the trajectory simulator (patterns first, then shots).

        Returns
        -------
        E : ndarray, shape (N, B, O)
        J : ndarray, shape (N, B, O, P)
        """
        if shots is not None:
            positive_int("shots", shots)
            generator("rng", rng)
        e_all = self.shifted_expvals(theta, x, werner, noise=noise, rng=rng)
        return shift_rule(e_all, self.spec.n_params, shots, rng)

    def contraction(self, noise: PlacementNoise) -> np.ndarray:
        """Factor (N, O) by which node noise scales each readout ⟨Z⟩: Π over the layers and the node-noise
        blocks holding the readout qubit of (1 − p_block), times (1 − 2r) of the QPU measuring it.

        Exact at the unitary level (global depolarising commutes with everything). At the circuit level this is a
        first-order calibration only: a QPU's local depolarising does not commute with the entangler, and errors
        on other QPUs' qubits reach the readout qubit through the CNOTs (see docs/partitions.md)."""
        if not isinstance(noise, PlacementNoise):
            raise ValidationError(f"noise must be a PlacementNoise, got {type(noise).__name__}")
        noise = check_noise(noise, noise.n_nodes, self.n_qpus)
        p = noise.depolarizing
        factor = np.ones((noise.n_nodes, self.spec.n_outputs))
        for blocks in self.node_blocks:
            for qpu, qubits in blocks:
                held = np.isin(self.spec.readout_qubits, qubits)
                factor = factor * np.where(held, 1.0 - p[:, qpu : qpu + 1], 1.0)
        return factor * readout_factor(noise, self.readout_qpu)


def readout_factor(noise: PlacementNoise, readout_qpu: tuple[int, ...]) -> np.ndarray:
    """(1 − 2r) of the QPU measuring each readout qubit, shape (N, O)."""
    return 1.0 - 2.0 * noise.readout_error[:, list(readout_qpu)]
