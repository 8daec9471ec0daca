r"""(b) Unitary-level partition (Fig. 1b): U(θ) ≈ U_1⋯U_K, contiguous blocks of layers on K QPUs in a chain.

QPU 1 prepares V(x)|0⟩ and applies the first block of layers; the n-qubit state is then teleported to QPU 2
(n pairs, one per qubit), which applies the next block, and so on; the last QPU measures the readout ⟨Z⟩. With
re-uploading, every layer carries its own encoding, so each QPU applies the V_i of its layers. Teleporting a
qubit through a Werner pair of visibility w is the depolarising channel ρ → wρ + (1−w)·tr_q(ρ)⊗I/2 on it
(:mod:`ceas.partitions.channels`), so one run consumes n·(K−1) pairs and its visibilities form an array of shape
(K−1, n): hop h (from QPU h to QPU h+1), qubit q.

Layers are split as evenly as possible, earlier blocks taking the extra layer (e.g. L = 5, K = 2 → 3 + 2).
Node noise (:class:`~ceas.partitions.noise.PlacementNoise`, K = ``blocks``): QPU k applies the global
depolarising channel with its p_k after each layer of its block, and the last QPU's readout error r scales every
⟨Z⟩. Both commute with every gate and pair channel, so ⟨Z⟩ = Π_k (1−p_k)^{L_k}·(1−2r_{K−1})·⟨Z⟩_pairs exactly
(:meth:`~ceas.partitions.base.DensityScheme.contraction`).

Layer-wise consensus among the replicas of each U_i is the consensus layer's job; this class gives the forward
pass, the parameter-shift Jacobian and the pair demand of one replica of the split circuit.
"""

from __future__ import annotations

import numpy as np

from ceas._validate import positive_int
from ceas.errors import ValidationError
from ceas.partitions import _density as dm
from ceas.partitions.base import DensityScheme
from ceas.partitions.registry import register_scheme
from ceas.qnn.circuit import CircuitSpec, cnot_permutation


@register_scheme("unitary")
class UnitaryLevel(DensityScheme):
    """The circuit split into ``blocks`` layer blocks on a chain of QPUs.

    Parameters
    ----------
    spec : CircuitSpec
    blocks : int
        K in [1, L] QPUs (blocks of contiguous layers); K = 1 is the monolithic circuit.
    simulator : {"auto", "density", "trajectory"}
        Exact density matrices (n <= :data:`~ceas.partitions.base.MAX_DENSITY_QUBITS`) or pure-state trajectories
        (Monte-Carlo over the Pauli errors; needs ``rng`` in every call); "auto" picks density up to 10 qubits.
    trajectories : int
        Error patterns drawn per node and sample in trajectory mode (shared by its 2P + 1 shifted circuits).

    Attributes
    ----------
    block_layers : tuple of int
        Layers per block, summing to L.
    pair_shape : (K−1, n)
        Pairs per run: one per qubit per hop.
    slot_link : tuple of int
        For pair slot h·n + q, the index into ``links`` of its hop: h.
    parameter_owner : ndarray (P,) int
        The QPU (block) holding each parameter: the block of its layer.
    """

    name = "unitary"

    def __init__(
        self,
        spec: CircuitSpec,
        blocks: int = 2,
        *,
        simulator: str = "auto",
        trajectories: int = 32,
    ):
        self.spec = self._check_spec(spec)
        n_layers, n = spec.n_layers, spec.n_qubits
        try:
            k = positive_int("blocks", blocks, 1, n_layers)
        except ValidationError as err:
            raise ValidationError(
                f"{err} (one block needs at least one of the L = {n_layers} layers)"
            ) from None
        self.blocks = k
        base, extra = divmod(n_layers, k)
        self.block_layers = tuple(base + (1 if i < extra else 0) for i in range(k))
        self.pair_shape = (k - 1, n)
        self.n_qpus = k
        self.links = tuple((h, h + 1) for h in range(k - 1))
        self.pairs_per_link = (n,) * (k - 1)
        self.slot_link = tuple(h for h in range(k - 1) for _ in range(n))
        owner = np.repeat(np.arange(k), self.block_layers)  # block of each layer
        self.parameter_owner = np.repeat(owner, 2 * n)
        self.parameter_owner.setflags(write=False)
        # node noise: QPU k depolarises the whole register after each layer of its block; the last QPU measures
        self.node_blocks = tuple(((int(b), tuple(range(n))),) for b in owner)
        self.readout_qpu = (k - 1,) * spec.n_outputs
        inv = cnot_permutation(n, spec.cnot_pairs).argsort()
        ends = {
            sum(self.block_layers[: h + 1]) - 1: h for h in range(k - 1)
        }  # last layer of block h
        program = []
        for layer in range(n_layers):
            ops: list[object] = [dm.Permute(inv, spec.cnot_pairs)]
            if layer in ends:
                h = ends[layer]
                ops += [dm.Depolarise(q, h * n + q) for q in range(n)]
            program.append(tuple(ops))
        self.program = tuple(program)
        self._init_simulator(simulator, trajectories)

    @classmethod
    def from_params(cls, params, spec: CircuitSpec) -> UnitaryLevel:
        return cls(
            spec, blocks=params.blocks, simulator=params.simulator, trajectories=params.trajectories
        )

    def block_parameters(self, block: int) -> slice:
        """The slice of θ (length 2·n·L_i) that block ``block`` (0-based) holds: what its replicas agree on."""
        block = positive_int("block", block, 0, self.blocks - 1)
        per_layer = 2 * self.spec.n_qubits
        start = sum(self.block_layers[:block]) * per_layer
        return slice(start, start + self.block_layers[block] * per_layer)
