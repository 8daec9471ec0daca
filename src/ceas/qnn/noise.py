"""Heterogeneous node noise (SPEC §3): global depolarising after every layer and symmetric readout error.

Global depolarising ρ → (1-p)ρ + p·I/d commutes with every unitary, so after L layers the state is
ρ = (1-q)|ψ⟩⟨ψ| + q·I/d with q = 1 - (1-p)^L, and the ⟨Z⟩ of any traceless observable (and its gradient)
shrinks by (1-p)^L. A readout flip with probability r maps ⟨Z⟩ → (1-2r)⟨Z⟩.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas._validate import in_range, positive_int, real_array
from ceas.errors import ValidationError


@dataclass(frozen=True, eq=False)
class NodeNoise:
    """Per-node noise levels.

    Parameters
    ----------
    depolarizing : array_like, shape (N,)
        p_k in [0, 1], global depolarising strength applied after each layer on node k.
    readout_error : array_like, shape (N,), optional
        r_k in [0, 0.5], symmetric bit-flip probability of each measured qubit; zeros when omitted.
    """

    depolarizing: np.ndarray
    readout_error: np.ndarray | None = None

    def __post_init__(self) -> None:
        p, r = noise_levels(self.depolarizing, self.readout_error, 1, "node")
        object.__setattr__(self, "depolarizing", p)
        object.__setattr__(self, "readout_error", r)

    @property
    def n_nodes(self) -> int:
        return int(self.depolarizing.shape[0])

    def mixing(self, n_layers: int) -> np.ndarray:
        """q_k = 1 - (1-p_k)^L, the weight of I/d in the state after L layers, shape (N,)."""
        n_layers = positive_int("n_layers", n_layers)
        return 1.0 - (1.0 - self.depolarizing) ** n_layers

    def contraction(self, n_layers: int) -> np.ndarray:
        """(1-p_k)^L · (1-2r_k), the factor by which every ⟨Z⟩ and its gradient shrink, shape (N,)."""
        n_layers = positive_int("n_layers", n_layers)
        return (1.0 - self.depolarizing) ** n_layers * (1.0 - 2.0 * self.readout_error)

    def subset(self, nodes) -> NodeNoise:
        """The noise of the nodes selected by ``nodes`` (index array or slice)."""
        return NodeNoise(self.depolarizing[nodes], self.readout_error[nodes])


def depolarised_qfi(f_pure, q, dim: int) -> np.ndarray:
    r"""QFI of ρ = (1-q)|ψ⟩⟨ψ| + q·I/d from the pure-state QFI (SPEC §3).

    .. math:: F_Q(ρ) = \frac{(1-q)^2}{(1-q) + 2q/d}\, F_Q(|ψ⟩)

    Parameters
    ----------
    f_pure : array_like
        Pure-state QFI values (any shape: a diagonal, a full matrix, ...).
    q : array_like
        Mixing weight(s) in [0, 1], broadcast against ``f_pure`` (give it trailing singleton axes).
    dim : int
        Hilbert-space dimension d = 2^n (>= 2).

    Returns
    -------
    ndarray
        Same shape as ``np.broadcast(f_pure, q)``.
    """
    dim = positive_int("dim", dim, 2)
    q = np.asarray(q, dtype=np.float64)
    in_range("q", q, 0.0, 1.0)
    f_pure = np.asarray(f_pure, dtype=np.float64)
    keep = 1.0 - q
    return keep**2 / (keep + 2.0 * q / dim) * f_pure


def noise_levels(depolarizing, readout_error, ndim: int, per: str) -> tuple[np.ndarray, np.ndarray]:
    """Checked, read-only copies of depolarising strengths p in [0, 1] and readout errors r in [0, 0.5] (zeros when
    ``readout_error`` is None), both ``ndim``-dimensional and of one shape (one entry ``per`` node, or node and QPU)."""
    p = real_array("depolarizing", depolarizing, ndim)
    in_range("depolarizing", p, 0.0, 1.0)
    if readout_error is None:
        r = np.zeros_like(p)
    else:
        r = real_array("readout_error", readout_error, ndim)
        if r.shape != p.shape:
            raise ValidationError(
                f"readout_error must have shape {p.shape} (one per {per}, like depolarizing), got {r.shape}"
            )
        in_range("readout_error", r, 0.0, 0.5)
    p, r = p.copy(), r.copy()
    p.setflags(write=False)
    r.setflags(write=False)
    return p, r
