r"""(c) Circuit-level partition (Fig. 1c): a register wider than one QPU, split into qubit blocks on several QPUs.

With ``placement="contiguous"`` QPU j holds qubits [j·m, (j+1)·m) for m = ``qubits_per_qpu``; ``"min-cut"``
chooses the assignment (at most m qubits per QPU, ⌈n/m⌉ QPUs) with the fewest entangler CNOTs across QPUs
(:mod:`ceas.partitions.placement`). Rotations and CNOTs inside a block are local.
A CNOT whose control and target sit on different QPUs is done by gate teleportation and consumes one pair; with
a Bell-diagonal pair it is the ideal CNOT followed by the correlated Pauli channel on (control, target)
(II, IX, ZI, ZX) with probabilities (λ_Φ⁺, λ_Ψ⁺, λ_Φ⁻, λ_Ψ⁻) — for a Werner pair of visibility w,
((1+3w)/4, (1−w)/4, (1−w)/4, (1−w)/4); the derivation is in :mod:`ceas.partitions.channels`. Each QPU measures
its own readout qubits and the ⟨Z⟩ values are combined classically, so measurements need no pairs.

One run consumes L·R pairs, R = remote CNOTs per layer; visibilities form an array of shape (L, R): layer l,
remote CNOT r in the entangler's order (see :attr:`CircuitLevel.remote_cnots`).

Node noise (:class:`~ceas.partitions.noise.PlacementNoise`, K = ⌈n/m⌉): after each layer (entangler and
remote-CNOT channels included) QPU j depolarises its own qubits Q_j, ρ → (1−p_j)ρ + p_j·tr_{Q_j}(ρ)⊗I/2^{|Q_j|},
and the readout of qubit q is flipped with the r of the QPU holding it.
"""

from __future__ import annotations

import numpy as np

from ceas._validate import positive_int
from ceas.errors import ValidationError
from ceas.partitions import _density as dm
from ceas.partitions.base import DensityScheme
from ceas.partitions.placement import placement_of
from ceas.partitions.registry import register_scheme
from ceas.qnn.circuit import CircuitSpec, cnot_permutation


@register_scheme("circuit")
class CircuitLevel(DensityScheme):
    """The register split into qubit blocks of ``qubits_per_qpu`` on ⌈n/m⌉ QPUs.

    Parameters
    ----------
    spec : CircuitSpec
    qubits_per_qpu : int
        m in [1, n]; m = n puts the whole register on one QPU (no remote CNOTs).
    placement : {"contiguous", "min-cut"}
        Qubit blocks [j·m, (j+1)·m), or the assignment with the fewest remote CNOTs (ties: the lexicographically
        smallest assignment, so contiguous blocks when they are optimal).
    simulator : {"auto", "density", "trajectory"}
        As in :class:`~ceas.partitions.UnitaryLevel`.
    trajectories : int
        Error patterns per node and sample in trajectory mode.

    Attributes
    ----------
    qpu_of_qubit : tuple of int
        The QPU holding each qubit.
    remote_cnots : tuple of (int, int)
        The entangler's non-local (control, target) pairs, in application order (per layer).
    pair_shape : (L, R)
        One pair per remote CNOT per layer.
    slot_link : tuple of int
        For pair slot l·R + r, the index into ``links`` of the QPU pair of ``remote_cnots[r]``.
    parameter_owner : ndarray (P,) int
        The QPU holding each parameter (the QPU of its qubit).
    """

    name = "circuit"

    def __init__(
        self,
        spec: CircuitSpec,
        qubits_per_qpu: int = 2,
        *,
        placement: str = "contiguous",
        simulator: str = "auto",
        trajectories: int = 32,
    ):
        self.spec = self._check_spec(spec)
        n, n_layers = spec.n_qubits, spec.n_layers
        try:
            m = positive_int("qubits_per_qpu", qubits_per_qpu, 1, n)
        except ValidationError as err:
            raise ValidationError(f"{err} (the register has n_qubits = {n})") from None
        self.qubits_per_qpu = m
        self.placement = placement
        self.qpu_of_qubit = placement_of(placement, n, m, spec.cnot_pairs)
        self.n_qpus = -(-n // m)
        qpu = self.qpu_of_qubit
        self.remote_cnots = tuple((c, t) for c, t in spec.cnot_pairs if qpu[c] != qpu[t])
        self.pair_shape = (n_layers, len(self.remote_cnots))
        self._links(qpu, n_layers)
        self.parameter_owner = np.repeat(np.tile(np.array(qpu), n_layers), 2)
        self.parameter_owner.setflags(write=False)
        blocks = tuple((j, tuple(q for q in range(n) if qpu[q] == j)) for j in range(self.n_qpus))
        self.node_blocks = (blocks,) * n_layers
        self.readout_qpu = tuple(qpu[q] for q in spec.readout_qubits)
        self.program = self._program(qpu)
        self._init_simulator(simulator, trajectories)

    def _links(self, qpu: tuple[int, ...], n_layers: int) -> None:
        """``links``, ``pairs_per_link`` and ``slot_link`` from the remote CNOTs."""
        ends = [(min(qpu[c], qpu[t]), max(qpu[c], qpu[t])) for c, t in self.remote_cnots]
        self.links = tuple(sorted(set(ends)))
        self.pairs_per_link = tuple(n_layers * ends.count(link) for link in self.links)
        per_layer = tuple(self.links.index(link) for link in ends)
        self.slot_link = per_layer * n_layers

    def _program(self, qpu: tuple[int, ...]) -> tuple[tuple[object, ...], ...]:
        """The entangler as runs of CNOTs, each run ending at a remote CNOT followed by its error channel
        (the channel's Z_c, X_t commute with that CNOT but not with the CNOTs after it)."""
        spec = self.spec
        n, n_remote = spec.n_qubits, len(self.remote_cnots)
        segments: list[tuple[tuple[tuple[int, int], ...], tuple[int, int] | None]] = []
        run: list[tuple[int, int]] = []
        for c, t in spec.cnot_pairs:
            run.append((c, t))
            if qpu[c] != qpu[t]:
                segments.append((tuple(run), (c, t)))
                run = []
        if run:
            segments.append((tuple(run), None))
        program = []
        for layer in range(spec.n_layers):
            ops: list[object] = []
            r = 0
            for cnots, remote in segments:
                ops.append(dm.Permute(cnot_permutation(n, cnots).argsort(), cnots))
                if remote is not None:
                    ops.append(dm.RemoteCNOTNoise(remote[0], remote[1], layer * n_remote + r))
                    r += 1
            program.append(tuple(ops))
        return tuple(program)

    @classmethod
    def from_params(cls, params, spec: CircuitSpec) -> CircuitLevel:
        return cls(
            spec,
            qubits_per_qpu=params.qubits_per_qpu,
            placement=params.placement,
            simulator=params.simulator,
            trajectories=params.trajectories,
        )
