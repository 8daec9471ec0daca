"""What every partition scheme offers (the :class:`PartitionScheme` protocol), its pair demand, and the shared
density-matrix runner of the unitary- and circuit-level schemes.

Shapes follow :class:`ceas.qnn.QNNSimulator`: θ (N, P) per node, x (N, B, n) per node and sample, expectations
(N, B, O), Jacobians (N, B, O, P). Pair visibilities ``werner`` broadcast to (N, *scheme.pair_shape): one Werner
parameter per pair a single circuit run consumes, the same for every run of that node in the call.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ceas._validate import generator, in_range, positive_int, real_array, shape_is
from ceas.errors import ValidationError
from ceas.partitions import _density as dm
from ceas.partitions.channels import remote_cnot_error_probs, werner_pauli_mixture
from ceas.qnn.circuit import CircuitSpec
from ceas.qnn.gates import local_unitary
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
        QPUs one circuit occupies.
    pair_shape : tuple of int
        Shape of the pair visibilities one run consumes (``werner`` broadcasts to (N, *pair_shape)).
    links : tuple of (int, int)
        QPU pairs that consume pairs, and ``pairs_per_link`` the pairs one run uses on each.
    """

    name: str
    spec: CircuitSpec
    n_qpus: int
    pair_shape: tuple[int, ...]
    links: tuple[tuple[int, int], ...]
    pairs_per_link: tuple[int, ...]

    def expval(self, theta, x, werner=1.0) -> np.ndarray:
        """Exact expectations (N, B, O) of the readout ⟨Z⟩ with pairs of visibility ``werner``."""
        ...

    def expval_and_jacobian(
        self, theta, x, werner=1.0, *, shots: int | None = None, rng=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expectations (N, B, O) and their parameter-shift Jacobian (N, B, O, P)."""
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
# density-matrix execution of a circuit with pair channels inserted
# ---------------------------------------------------------------------------------------------------------------
class DensityScheme:
    """Base of the schemes simulated with density matrices: subclasses set ``program`` in ``__init__``.

    ``program[l]`` lists the operations after layer l's local rotations (the entangler's CNOT runs and the
    pair channels), each a :mod:`ceas.partitions._density` op whose ``slot`` indexes the flattened pair axis.
    """

    name: str
    spec: CircuitSpec
    pair_shape: tuple[int, ...]
    program: tuple[tuple[object, ...], ...]

    def _check_spec(self, spec: CircuitSpec) -> CircuitSpec:
        if not isinstance(spec, CircuitSpec):
            raise ValidationError(f"spec must be a CircuitSpec, got {type(spec).__name__}")
        if spec.n_qubits > MAX_DENSITY_QUBITS:
            raise ValidationError(
                f"n_qubits must be in [1, {MAX_DENSITY_QUBITS}] for the {self.name}-level scheme "
                f"(density matrices of 4^n entries per sample), got {spec.n_qubits}"
            )
        return spec

    @property
    def pairs_per_run(self) -> int:
        """Pairs one run of the circuit consumes."""
        return int(np.prod(self.pair_shape))

    def _run(self, theta: np.ndarray, x: np.ndarray, werner: np.ndarray) -> np.ndarray:
        """Expectations (M, O) for θ (M, P), x (M, n), pair visibilities (M, S) flattened over pair_shape."""
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
        return dm.z_expectations(rho, spec.readout_qubits, n)

    def _batched(self, theta: np.ndarray, x: np.ndarray, werner: np.ndarray) -> np.ndarray:
        """θ (N, E, P) parameter sets per node, x (N, B, n), werner (N, *pair_shape) -> (N, E, B, O)."""
        n_nodes, n_sets, n_params = theta.shape
        n_samples = x.shape[1]
        th = np.broadcast_to(theta[:, :, None, :], (n_nodes, n_sets, n_samples, n_params))
        xs = np.broadcast_to(x[:, None], (n_nodes, n_sets, n_samples, x.shape[2]))
        ws = werner.reshape(n_nodes, 1, 1, self.pairs_per_run)
        ws = np.broadcast_to(ws, (n_nodes, n_sets, n_samples, ws.shape[-1]))
        total = n_nodes * n_sets * n_samples
        th, xs, ws = (a.reshape(total, a.shape[-1]) for a in (th, xs, ws))
        per_chunk = max(1, CHUNK_BYTES // (16 * self.spec.dim**2))
        out = np.empty((total, self.spec.n_outputs))
        with _blas_single_thread():
            for start in range(0, total, per_chunk):  # chunks bound the memory of one call
                sl = slice(start, min(start + per_chunk, total))
                out[sl] = self._run(th[sl], xs[sl], ws[sl])
        return out.reshape(n_nodes, n_sets, n_samples, -1)

    def expval(self, theta, x, werner=1.0) -> np.ndarray:
        """Exact readout ⟨Z⟩ of the partitioned circuit.

        Parameters
        ----------
        theta : array_like, shape (N, P)
            Radians.
        x : array_like, shape (N, B, n)
            Input angles, radians.
        werner : float or array_like broadcastable to (N, *pair_shape)
            Visibility in [0, 1] of each pair a run consumes (1 = perfect pairs).

        Returns
        -------
        ndarray, shape (N, B, O)
        """
        theta, x = check_inputs(self.spec, theta, x)
        w = check_werner(werner, theta.shape[0], self.pair_shape)
        return self._batched(theta[:, None, :], x, w)[:, 0]

    def expval_and_jacobian(
        self, theta, x, werner=1.0, *, shots: int | None = None, rng=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expectations and their Jacobian by the two-term parameter-shift rule.

        The rule is exact for the noisy circuit too: every parameter enters through one gate
        exp(-iθP/2) and the pair channels do not depend on θ.

        Parameters
        ----------
        theta, x, werner
            As in :meth:`expval`.
        shots : int or None
            S >= 1 runs per expectation (2P + 1 per sample); None gives exact values.
        rng : numpy.random.Generator
            Required when ``shots`` is set.

        Returns
        -------
        E : ndarray, shape (N, B, O)
        J : ndarray, shape (N, B, O, P)
        """
        theta, x = check_inputs(self.spec, theta, x)
        w = check_werner(werner, theta.shape[0], self.pair_shape)
        if shots is not None:
            positive_int("shots", shots)
            generator("rng", rng)
        e_all = self._batched(shifted_thetas(theta), x, w)
        return shift_rule(e_all, self.spec.n_params, shots, rng)
