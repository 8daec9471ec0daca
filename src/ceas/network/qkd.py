r"""BBM92 key distillation from stored pairs (SPEC §4).

Both ends measure each pair at once, each in Z or X chosen uniformly and independently, and keep the rounds whose
bases agree (sifting, 1/2 on average). A sifted bit is wrong with the pair's error rate in that basis (for a Werner
pair :math:`e = 2(1-F)/3` in both). The QBER :math:`\hat e` is the error fraction of the sifted bits, and privacy
amplification leaves

.. math:: n_\mathrm{key} = \lfloor n_\mathrm{sift}\,\max(0, 1 - 2h(\hat e)) \rfloor

secret bits (asymptotic Shor–Preskill rate; zero above :math:`\hat e \approx 11\,\%`). Key bits do not decay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas.network.werner import _basis_error_rates, binary_entropy

__all__ = ["KeyYield", "bbm92"]


@dataclass(frozen=True)
class KeyYield:
    """Outcome of one BBM92 round on a batch of pairs.

    Attributes
    ----------
    pairs : int
        Pairs measured.
    sifted : int
        Rounds whose bases agreed.
    errors : int
        Sifted rounds whose bits disagree.
    qber : float
        errors / sifted (NaN when nothing was sifted).
    secret_fraction : float
        max(0, 1 - 2 h(qber)) (0 when nothing was sifted).
    secret_bits : int
        floor(sifted * secret_fraction): bits deposited into the link's key pool.
    """

    pairs: int
    sifted: int
    errors: int
    qber: float
    secret_fraction: float
    secret_bits: int


def bbm92(bell: np.ndarray, rng: np.random.Generator) -> KeyYield:
    """Measure pairs with Bell vectors ``bell`` (n, 4), at their moment of use, and distil key.

    Parameters
    ----------
    bell : ndarray, shape (n, 4)
        Bell-diagonal vectors of the pairs when measured.
    rng : numpy.random.Generator
        Source of basis choices and outcomes.
    """
    bell = np.asarray(bell, dtype=float).reshape(-1, 4)
    n = bell.shape[0]
    basis_a = rng.integers(0, 2, size=n)
    basis_b = rng.integers(0, 2, size=n)
    sift = basis_a == basis_b
    rates = _basis_error_rates(bell)  # (n, 3): X, Y, Z
    e = np.where(basis_a == 0, rates[:, 2], rates[:, 0])  # basis 0 = Z, 1 = X
    wrong = rng.random(n) < e
    sifted = int(sift.sum())
    errors = int((wrong & sift).sum())
    if sifted == 0:
        return KeyYield(n, 0, 0, float("nan"), 0.0, 0)
    q = errors / sifted
    fraction = float(max(0.0, 1.0 - 2.0 * float(binary_entropy(q))))
    return KeyYield(n, sifted, errors, q, fraction, int(np.floor(sifted * fraction + 1e-9)))
