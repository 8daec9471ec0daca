r"""(c) Circuit-level partition (Fig. 1c): a register wider than one QPU, split into qubit blocks on several QPUs.

QPU j holds qubits [j·m, (j+1)·m) for m = ``qubits_per_qpu``. Rotations and CNOTs inside a block are local.
A CNOT whose control and target sit on different QPUs is done by gate teleportation and consumes one pair; with
a Bell-diagonal pair it is the ideal CNOT followed by the correlated Pauli channel on (control, target)
(II, IX, ZI, ZX) with probabilities (λ_Φ⁺, λ_Ψ⁺, λ_Φ⁻, λ_Ψ⁻) — for a Werner pair of visibility w,
((1+3w)/4, (1−w)/4, (1−w)/4, (1−w)/4); the derivation is in :mod:`ceas.partitions.channels`. Each QPU measures
its own readout qubits and the ⟨Z⟩ values are combined classically, so measurements need no pairs.

One run consumes L·R pairs, R = remote CNOTs per layer; visibilities form an array of shape (L, R): layer l,
remote CNOT r in the entangler's order (see :attr:`CircuitLevel.remote_cnots`).
"""

from __future__ import annotations

from ceas._validate import positive_int
from ceas.errors import ValidationError
from ceas.partitions import _density as dm
from ceas.partitions.base import DensityScheme
from ceas.partitions.registry import register_scheme
from ceas.qnn.circuit import CircuitSpec, cnot_permutation


@register_scheme("circuit")
class CircuitLevel(DensityScheme):
    """The register split into qubit blocks of ``qubits_per_qpu`` on ⌈n/m⌉ QPUs.

    Parameters
    ----------
    spec : CircuitSpec
        At most :data:`~ceas.partitions.base.MAX_DENSITY_QUBITS` qubits.
    qubits_per_qpu : int
        m in [1, n]; m = n puts the whole register on one QPU (no remote CNOTs).

    Attributes
    ----------
    qpu_of_qubit : tuple of int
        The QPU holding each qubit.
    remote_cnots : tuple of (int, int)
        The entangler's non-local (control, target) pairs, in application order (per layer).
    pair_shape : (L, R)
        One pair per remote CNOT per layer.
    """

    name = "circuit"

    def __init__(self, spec: CircuitSpec, qubits_per_qpu: int = 2):
        self.spec = self._check_spec(spec)
        n, n_layers = spec.n_qubits, spec.n_layers
        try:
            m = positive_int("qubits_per_qpu", qubits_per_qpu, 1, n)
        except ValidationError as err:
            raise ValidationError(f"{err} (the register has n_qubits = {n})") from None
        self.qubits_per_qpu = m
        self.qpu_of_qubit = tuple(q // m for q in range(n))
        self.n_qpus = -(-n // m)
        qpu = self.qpu_of_qubit
        self.remote_cnots = tuple((c, t) for c, t in spec.cnot_pairs if qpu[c] != qpu[t])
        n_remote = len(self.remote_cnots)
        self.pair_shape = (n_layers, n_remote)
        counts: dict[tuple[int, int], int] = {}
        for c, t in self.remote_cnots:
            link = (min(qpu[c], qpu[t]), max(qpu[c], qpu[t]))
            counts[link] = counts.get(link, 0) + n_layers
        self.links = tuple(sorted(counts))
        self.pairs_per_link = tuple(counts[link] for link in self.links)

        # The entangler as runs of CNOTs, each run ending at a remote CNOT followed by its error channel
        # (the channel's Z_c, X_t commute with that CNOT but not with the CNOTs after it).
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
        for layer in range(n_layers):
            ops: list[object] = []
            r = 0
            for cnots, remote in segments:
                ops.append(dm.Permute(cnot_permutation(n, cnots).argsort()))
                if remote is not None:
                    ops.append(dm.RemoteCNOTNoise(remote[0], remote[1], layer * n_remote + r))
                    r += 1
            program.append(tuple(ops))
        self.program = tuple(program)

    @classmethod
    def from_params(cls, params, spec: CircuitSpec) -> CircuitLevel:
        return cls(spec, qubits_per_qpu=params.qubits_per_qpu)
