"""The circuit family of SPEC §3: angle encoding V(x) and L layers of RY, RZ and a CNOT entangler.

Conventions (shared with PennyLane, so reference comparisons are direct):

* wire 0 is the most significant bit of a basis index, ``|q_0 q_1 … q_{n-1}⟩ ↦ Σ_q q_j 2^{n-1-j}``;
* ``RY(a) = exp(-i a Y/2)``, ``RZ(a) = exp(-i a Z/2)``;
* layer l applies RY(θ_{l,q,0}) then RZ(θ_{l,q,1}) on every qubit q, then the entangler's CNOTs in order;
* θ has P = 2·L·n entries, the C-order flattening of shape (L, n, 2).

Entanglers are pluggable: an :class:`Entangler` names its CNOT list and which end of the register the light
cone covers (where the default readout sits). Register a new one with :func:`register_entangler`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ceas.errors import ValidationError
from ceas.registry import Registry


@dataclass(frozen=True)
class Entangler:
    """A CNOT pattern applied at the end of every layer.

    Attributes
    ----------
    name : str
        Registry key (the name used in config files).
    pairs : callable
        ``pairs(n_qubits) -> tuple of (control, target)``, applied in the order given.
    readout : {"first", "last"}
        Which end of the register the default readout qubits sit at: the first qubits for a ring (every
        qubit is a target), the last ones for control<target orders (qubit 0 is never a target there, so its
        light cone would hold only qubit 0's own parameters).
    """

    name: str
    pairs: Callable[[int], tuple[tuple[int, int], ...]]
    readout: Literal["first", "last"]


def _ring(n: int) -> tuple[tuple[int, int], ...]:
    """CNOT(q, q+1) for q = 0 … n-2, then CNOT(n-1, 0) closing the ring.

    n = 2 follows the same rule: (0, 1) then the closing (1, 0), i.e. both directions of the one edge, so that, as
    in every larger ring, each qubit is a target and ⟨Z_0⟩ sees qubit 1's parameters (a single CNOT(0, 1) would
    leave qubit 0's light cone holding only its own). n = 1 has no pairs.
    """
    if n == 1:
        return ()
    if n == 2:
        return ((0, 1), (1, 0))
    return tuple((q, q + 1) for q in range(n - 1)) + ((n - 1, 0),)


def _linear(n: int) -> tuple[tuple[int, int], ...]:
    return tuple((q, q + 1) for q in range(n - 1))


def _all_to_all(n: int) -> tuple[tuple[int, int], ...]:
    return tuple((i, j) for i in range(n) for j in range(i + 1, n))


def _check_entangler(entangler: object) -> None:
    if getattr(entangler, "readout", None) not in ("first", "last") or not callable(
        getattr(entangler, "pairs", None)
    ):
        raise ValidationError(
            f"an entangler needs pairs(n) -> CNOT list and readout in ['first', 'last'], got {entangler!r}"
        )


ENTANGLERS: Registry = Registry("entangler", "model.entangler", check=_check_entangler)
"""Entanglers by config name (``model.entangler``); see :mod:`ceas.registry`. An entangler is a CNOT pattern of n
alone: it declares no hyperparameters (register one name per variant)."""


def register_entangler(entangler: Entangler) -> Entangler:
    """Add ``entangler`` to the registry under ``entangler.name`` (replacing any entry of that name)."""
    return ENTANGLERS.register(entangler, replace=True)


for _e in (
    Entangler("ring", _ring, "first"),
    Entangler("linear", _linear, "last"),
    Entangler("all_to_all", _all_to_all, "last"),
):
    register_entangler(_e)


def get_entangler(name: str) -> Entangler:
    """Registry lookup; an unknown name raises :class:`UnknownNameError` suggesting the closest one."""
    return ENTANGLERS.get_plugin(name)


def cnot_permutation(n_qubits: int, pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """The basis permutation c of a CNOT sequence: ``C|j⟩ = |c[j]⟩``.

    Parameters
    ----------
    n_qubits : int
    pairs : tuple of (control, target)
        Applied left to right.

    Returns
    -------
    ndarray of intp, shape (2**n_qubits,)
        A permutation of ``range(2**n_qubits)``; wire 0 is the most significant bit.
    """
    index = np.arange(2**n_qubits)
    shifts = n_qubits - 1 - np.arange(n_qubits)
    bits = (index[:, None] >> shifts) & 1  # (D, n), column q = bit of wire q
    for control, target in pairs:  # loop over gates of the pattern, not over data
        bits[:, target] ^= bits[:, control]
    return (bits << shifts).sum(axis=1).astype(np.intp)


def z_signs(n_qubits: int) -> np.ndarray:
    """``z[j, q] = ⟨j|Z_q|j⟩ = 1 - 2·bit_q(j)``, shape (2**n, n), float64."""
    index = np.arange(2**n_qubits)
    bits = (index[:, None] >> (n_qubits - 1 - np.arange(n_qubits))) & 1
    return 1.0 - 2.0 * bits


@dataclass(frozen=True)
class CircuitSpec:
    """The circuit of SPEC §3, validated on construction.

    Parameters
    ----------
    n_qubits : int
        n >= 1; one input feature per qubit.
    n_layers : int
        L >= 1 layers of RY, RZ and the entangler.
    entangler : str
        Registry name: ``"ring"`` (default), ``"linear"``, ``"all_to_all"`` or a registered one.
    n_classes : int
        2 for a binary task (one ⟨Z⟩), C > 2 for C classes (one ⟨Z⟩ per class, C <= n).
    reupload : bool
        Repeat the encoding V(x) before every layer (data re-uploading) instead of once.
    readout_qubit : int, optional
        First readout qubit: outputs are ⟨Z⟩ of qubits ``readout_qubit`` … ``readout_qubit + O - 1``, in
        [0, n - O]. None (default) takes the entangler's end (:attr:`Entangler.readout`): qubit 0 for ``ring``,
        the last O qubits for ``linear`` and ``all_to_all``.

    Attributes
    ----------
    n_params : int
        P = 2·L·n.
    readout_qubits : tuple of int
        Qubits whose ⟨Z⟩ are the outputs: from ``readout_qubit`` if given; otherwise qubit 0 (or 0..C-1) for
        ``ring``, the last qubit (or the last C) for ``linear`` and ``all_to_all``.
    """

    n_qubits: int
    n_layers: int
    entangler: str = "ring"
    n_classes: int = 2
    reupload: bool = False
    readout_qubit: int | None = None
    _pairs: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)

    # Largest register the simulator accepts: 2^24 amplitudes (256 MiB) per sample is far beyond any
    # batched use; a typo such as n_qubits=400 should fail here, not in an allocation.
    MAX_QUBITS = 24

    def __post_init__(self) -> None:
        from ceas._validate import positive_int

        positive_int("n_qubits", self.n_qubits, 1, self.MAX_QUBITS)
        positive_int("n_layers", self.n_layers, 1)
        positive_int("n_classes", self.n_classes, 2)
        if not isinstance(self.reupload, (bool, np.bool_)):
            raise ValidationError(f"reupload must be a bool, got {self.reupload!r}")
        if self.n_classes > 2 and self.n_classes > self.n_qubits:
            raise ValidationError(
                f"n_classes must be in [2, n_qubits = {self.n_qubits}] (one <Z> per class), "
                f"got {self.n_classes}"
            )
        if self.readout_qubit is not None:
            positive_int(
                "readout_qubit", self.readout_qubit, 0, self.n_qubits - self.n_outputs
            )  # O consecutive qubits from it must fit
        ent = get_entangler(self.entangler)
        pairs = tuple((int(c), int(t)) for c, t in ent.pairs(self.n_qubits))
        for c, t in pairs:
            if not (0 <= c < self.n_qubits and 0 <= t < self.n_qubits) or c == t:
                raise ValidationError(
                    f"entangler {self.entangler!r} must give CNOT pairs of distinct qubits in "
                    f"[0, {self.n_qubits - 1}], got {(c, t)}"
                )
        object.__setattr__(self, "_pairs", pairs)

    @property
    def n_params(self) -> int:
        return 2 * self.n_layers * self.n_qubits

    @property
    def n_outputs(self) -> int:
        """O: 1 for a binary task, C for C > 2 classes."""
        return 1 if self.n_classes == 2 else self.n_classes

    @property
    def dim(self) -> int:
        """d = 2^n, the Hilbert-space dimension."""
        return 2**self.n_qubits

    @property
    def cnot_pairs(self) -> tuple[tuple[int, int], ...]:
        """The entangler's (control, target) list, in application order."""
        return self._pairs

    @property
    def readout_qubits(self) -> tuple[int, ...]:
        o = self.n_outputs
        if self.readout_qubit is not None:
            return tuple(range(self.readout_qubit, self.readout_qubit + o))
        if get_entangler(self.entangler).readout == "first":
            return tuple(range(o))
        return tuple(range(self.n_qubits - o, self.n_qubits))
