"""Node noise inside a split circuit: a depolarising strength and a readout error per (node, QPU).

The data-level model (:class:`ceas.qnn.noise.NodeNoise`) gives node k a global depolarising channel
ρ → (1−p)ρ + p·I/d after every layer and a symmetric readout bit flip r (⟨Z⟩ → (1−2r)⟨Z⟩). A split circuit runs on
K QPUs, each with its own (p, r); :class:`PlacementNoise` holds them as arrays of shape (N, K), and each scheme
says where the channels act:

* unitary level: QPU k applies the global channel with its p_k after every layer of its block (the whole register
  is on it); the last QPU measures, so its r scales every ⟨Z⟩;
* circuit level: after every layer (entangler and remote-CNOT channels included) QPU j depolarises *its* qubits,
  ρ → (1−p_j)ρ + p_j·tr_{Q_j}(ρ)⊗I/2^{|Q_j|} (with probability p_j a uniformly random Pauli string on Q_j), and
  the readout of qubit q is flipped with the r of the QPU holding q;
* data level (K = 1): exactly :class:`~ceas.qnn.noise.NodeNoise`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas.errors import ValidationError
from ceas.qnn.noise import NodeNoise, noise_levels

__all__ = ["PlacementNoise", "check_noise"]


@dataclass(frozen=True, eq=False)
class PlacementNoise:
    """Per-(node, QPU) noise levels of a partitioned circuit.

    Parameters
    ----------
    depolarizing : array_like, shape (N, K)
        p in [0, 1]: depolarising strength QPU k of node replica i applies after each layer (see the module
        docstring for the channel each scheme applies).
    readout_error : array_like, shape (N, K), optional
        r in [0, 0.5]: symmetric bit-flip probability of each qubit QPU k measures; zeros when omitted.
    """

    depolarizing: np.ndarray
    readout_error: np.ndarray | None = None

    def __post_init__(self) -> None:
        p, r = noise_levels(self.depolarizing, self.readout_error, 2, "node and QPU")
        object.__setattr__(self, "depolarizing", p)
        object.__setattr__(self, "readout_error", r)

    @property
    def n_nodes(self) -> int:
        """N, the node replicas."""
        return int(self.depolarizing.shape[0])

    @property
    def n_qpus(self) -> int:
        """K, the QPUs of one replica's placement."""
        return int(self.depolarizing.shape[1])

    @classmethod
    def from_node_noise(cls, noise: NodeNoise) -> PlacementNoise:
        """The K = 1 placement of a data-level :class:`~ceas.qnn.noise.NodeNoise` (shape (N,) -> (N, 1))."""
        return cls(noise.depolarizing[:, None], noise.readout_error[:, None])

    def to_node_noise(self) -> NodeNoise:
        """The data-level :class:`~ceas.qnn.noise.NodeNoise` of a K = 1 placement."""
        if self.n_qpus != 1:
            raise ValidationError(f"only a one-QPU placement is a NodeNoise, got K = {self.n_qpus}")
        return NodeNoise(self.depolarizing[:, 0], self.readout_error[:, 0])


def check_noise(noise, n_nodes: int, n_qpus: int) -> PlacementNoise | None:
    """``noise`` if it is None or a :class:`PlacementNoise` of shape (n_nodes, n_qpus), else ValidationError."""
    if noise is None:
        return None
    if not isinstance(noise, PlacementNoise):
        raise ValidationError(f"noise must be a PlacementNoise or None, got {type(noise).__name__}")
    if (noise.n_nodes, noise.n_qpus) != (n_nodes, n_qpus):
        raise ValidationError(
            f"noise must have shape (N, K) = ({n_nodes}, {n_qpus}) (one entry per node and QPU), "
            f"got ({noise.n_nodes}, {noise.n_qpus})"
        )
    return noise
