r"""(b) Unitary-level partition (Fig. 1b): U(θ) ≈ U_1⋯U_K, contiguous blocks of layers on K QPUs in a chain.

QPU 1 prepares V(x)|0⟩ and applies the first block of layers; the n-qubit state is then teleported to QPU 2
(n pairs, one per qubit), which applies the next block, and so on; the last QPU measures the readout ⟨Z⟩. With
re-uploading, every layer carries its own encoding, so each QPU applies the V_i of its layers. Teleporting a
qubit through a Werner pair of visibility w is the depolarising channel ρ → wρ + (1−w)·tr_q(ρ)⊗I/2 on it
(:mod:`ceas.partitions.channels`), so one run consumes n·(K−1) pairs and its visibilities form an array of shape
(K−1, n): hop h (from QPU h to QPU h+1), qubit q.

Layers are split as evenly as possible, earlier blocks taking the extra layer (e.g. L = 5, K = 2 → 3 + 2).
Layer-wise consensus among the replicas of each U_i is the consensus layer's job; this class gives the forward
pass, the parameter-shift Jacobian and the pair demand of one replica of the split circuit.
"""

from __future__ import annotations

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
        At most :data:`~ceas.partitions.base.MAX_DENSITY_QUBITS` qubits.
    blocks : int
        K in [1, L] QPUs (blocks of contiguous layers); K = 1 is the monolithic circuit.

    Attributes
    ----------
    block_layers : tuple of int
        Layers per block, summing to L.
    pair_shape : (K−1, n)
        Pairs per run: one per qubit per hop.
    """

    name = "unitary"

    def __init__(self, spec: CircuitSpec, blocks: int = 2):
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
        inv = cnot_permutation(n, spec.cnot_pairs).argsort()
        ends = {
            sum(self.block_layers[: h + 1]) - 1: h for h in range(k - 1)
        }  # last layer of block h
        program = []
        for layer in range(n_layers):
            ops: list[object] = [dm.Permute(inv)]
            if layer in ends:
                h = ends[layer]
                ops += [dm.Depolarise(q, h * n + q) for q in range(n)]
            program.append(tuple(ops))
        self.program = tuple(program)

    @classmethod
    def from_params(cls, params, spec: CircuitSpec) -> UnitaryLevel:
        return cls(spec, blocks=params.blocks)

    def block_parameters(self, block: int) -> slice:
        """The slice of θ (length 2·n·L_i) that block ``block`` (0-based) holds: what its replicas agree on."""
        block = positive_int("block", block, 0, self.blocks - 1)
        per_layer = 2 * self.spec.n_qubits
        start = sum(self.block_layers[:block]) * per_layer
        return slice(start, start + self.block_layers[block] * per_layer)
