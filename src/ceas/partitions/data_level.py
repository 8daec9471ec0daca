"""(a) Data-level partition (Fig. 1a, the default): every QPU runs the whole circuit U(θ)V(x) on its own data.

The circuit itself needs no pairs; the pairs of this scheme carry gradient payloads and keys, which the broker
budgets (SPEC §4). Training with it is :mod:`ceas.broker.learning`; this class gives the scheme the same
interface as the others, backed by the pure-state :class:`~ceas.qnn.QNNSimulator`.
"""

from __future__ import annotations

import numpy as np

from ceas._validate import generator, positive_int
from ceas.errors import ValidationError
from ceas.partitions.base import check_inputs, check_werner, shift_rule, shifted_thetas
from ceas.partitions.noise import PlacementNoise, check_noise
from ceas.partitions.registry import register_scheme
from ceas.qnn.circuit import CircuitSpec
from ceas.qnn.simulator import QNNSimulator


@register_scheme("data")
class DataLevel:
    """The monolithic circuit on one QPU.

    Parameters
    ----------
    spec : CircuitSpec
    simulator : QNNSimulator, optional
        Shared simulator for ``spec``; built when omitted.
    """

    name = "data"
    n_qpus = 1
    pair_shape: tuple[int, ...] = (0,)
    links: tuple[tuple[int, int], ...] = ()
    pairs_per_link: tuple[int, ...] = ()
    slot_link: tuple[int, ...] = ()

    def __init__(self, spec: CircuitSpec, *, simulator: QNNSimulator | None = None):
        if not isinstance(spec, CircuitSpec):
            raise ValidationError(f"spec must be a CircuitSpec, got {type(spec).__name__}")
        if simulator is not None and simulator.spec != spec:
            raise ValidationError("simulator must be built for the same CircuitSpec as the scheme")
        self.spec = spec
        self.simulator = simulator if simulator is not None else QNNSimulator(spec)
        self.parameter_owner = np.zeros(spec.n_params, dtype=np.intp)
        self.parameter_owner.setflags(write=False)

    @classmethod
    def from_params(cls, params, spec: CircuitSpec) -> DataLevel:
        return cls(spec)

    @property
    def pairs_per_run(self) -> int:
        return 0

    def _contract(self, noise: PlacementNoise | None, n_nodes: int) -> np.ndarray | None:
        """The data-level factor (1−p)^L(1−2r) per node, shape (N,), or None without noise
        (:meth:`ceas.qnn.QNNSimulator._contraction`, the model of :func:`ceas.qnn.shots.parameter_shift`)."""
        noise = check_noise(noise, n_nodes, 1)
        if noise is None:
            return None
        return self.simulator._contraction(noise.to_node_noise(), n_nodes)

    def expval(self, theta, x, werner=1.0, *, noise: PlacementNoise | None = None, rng=None) -> np.ndarray:
        """Exact ⟨Z⟩ (N, B, O); ``werner`` has nothing to act on (pair_shape (0,)) and is only checked.

        ``noise`` (N, 1): the node's global depolarising after every layer and readout error, i.e.
        :class:`~ceas.qnn.noise.NodeNoise`, which scales ⟨Z⟩ by (1−p)^L(1−2r). ``rng`` is unused (exact)."""
        theta, x = check_inputs(self.spec, theta, x)
        check_werner(werner, theta.shape[0], self.pair_shape)
        factor = self._contract(noise, theta.shape[0])
        e = self.simulator.expval(theta, x)
        return e if factor is None else e * factor[:, None, None]

    def contraction(self, noise: PlacementNoise) -> np.ndarray:
        """(1−p)^L(1−2r) per node and output, shape (N, O): exact for the data level."""
        if not isinstance(noise, PlacementNoise):
            raise ValidationError(f"noise must be a PlacementNoise, got {type(noise).__name__}")
        factor = self._contract(noise, noise.n_nodes)
        return np.repeat(factor[:, None], self.spec.n_outputs, axis=1)

    def shifted_expvals(
        self, theta, x, werner=1.0, *, noise: PlacementNoise | None = None, rng=None
    ) -> np.ndarray:
        """Exact expectations (N, 2P+1, B, O) at θ, θ + π/2·e_p, θ − π/2·e_p, before shot sampling."""
        theta, x = check_inputs(self.spec, theta, x)
        check_werner(werner, theta.shape[0], self.pair_shape)
        factor = self._contract(noise, theta.shape[0])
        n_nodes, n_sets = theta.shape[0], 2 * self.spec.n_params + 1
        shifted = shifted_thetas(theta).reshape(-1, self.spec.n_params)
        e_all = self.simulator.expval(shifted, np.repeat(x, n_sets, axis=0))
        e_all = e_all.reshape(n_nodes, n_sets, x.shape[1], self.spec.n_outputs)
        return e_all if factor is None else e_all * factor[:, None, None, None]

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
        """Expectations (N, B, O) and parameter-shift Jacobian (N, B, O, P), as the other schemes."""
        if shots is not None:
            positive_int("shots", shots)
            generator("rng", rng)
        e_all = self.shifted_expvals(theta, x, werner, noise=noise)
        return shift_rule(e_all, self.spec.n_params, shots, rng)
