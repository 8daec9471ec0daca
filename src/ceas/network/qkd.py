r"""BBM92 key distillation from stored pairs (SPEC §4).

Both ends measure each pair at once, each in Z or X chosen uniformly and independently, and keep the rounds whose
bases agree (sifting, 1/2 on average). A sifted bit is wrong with the pair's error rate in that basis (for a Werner
pair :math:`e = 2(1-F)/3` in both). The QBER :math:`\hat e` is the error fraction of the sifted bits, and privacy
amplification leaves

.. math:: n_\mathrm{key} = \lfloor n_\mathrm{sift}\,\max(0, 1 - 2h(\hat e)) \rfloor

secret bits (asymptotic Shor–Preskill rate; zero above :math:`\hat e \approx 11\,\%`). Key bits do not decay.

:func:`bbm92` samples one such round; :func:`pairs_for_bits` plans one: the fewest pairs whose key reaches a budget
with a stated confidence (the scheduler asks it how many fresh pairs a node's tags cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ceas._validate import check_real, check_values
from ceas.network.werner import _basis_error_rates, _fidelity, _qber, _secret_fraction

__all__ = ["KeyYield", "bbm92", "pairs_for_bits"]


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
    fraction = float(_secret_fraction(q))
    return KeyYield(n, sifted, errors, q, fraction, int(np.floor(sifted * fraction + 1e-9)))


def pairs_for_bits(bits, fidelity, confidence: float = 0.95) -> np.ndarray:
    r"""Fewest fresh pairs of fidelity F whose BBM92 key reaches ``bits`` with probability about ``confidence``.

    A finite batch of n pairs yields :math:`\lfloor s\,(1 - 2h(\hat e))\rfloor` bits, with s ~ Bin(n, 1/2) sifted
    rounds and :math:`\hat e` the QBER seen on them, so asking for the mean count ``bits / y(F)``
    (:func:`~ceas.network.werner.bbm92_key_fraction`) falls short about half the time (the fraction 1 − 2h(ê) alone
    moves by ±20 % at n ≈ 400, F = 0.95). This takes the smallest n whose pessimistic yield -- sifted count and QBER
    each at their one-sided ``confidence`` normal bound -- covers ``bits`` (conservative: both bounds at once hold
    with probability above ``confidence``).

    Parameters
    ----------
    bits : float or ndarray
        Key bits wanted (>= 0).
    fidelity : float or ndarray
        Fidelity of the fresh pairs, in [1/4, 1]; broadcasts against ``bits``.
    confidence : float
        Probability of reaching ``bits``, in [0.5, 1).

    Returns
    -------
    ndarray of int64
        Pairs per entry; zero where no bits are needed or F yields no key.
    """
    need, f = np.broadcast_arrays(
        check_values("bits", bits, 0.0, None), _fidelity("fidelity", fidelity)
    )
    z = NormalDist().inv_cdf(check_real("confidence", confidence, 0.5, 1.0, high_open=True))
    e = _qber(f)
    mean = 0.5 * _secret_fraction(e)
    ok = (need > 0) & (mean > 0)

    def pessimistic(n: np.ndarray) -> np.ndarray:
        sifted = np.maximum(n / 2.0 - z * np.sqrt(n) / 2.0, 0.0)
        q = e + z * np.sqrt(e * (1.0 - e) / np.maximum(n / 2.0, 1.0))
        return sifted * _secret_fraction(np.clip(q, 0.0, 0.5))

    lo = np.zeros(need.shape)
    hi = np.where(ok, 8.0 * np.ceil(need / np.where(ok, mean, 1.0)) + 1024.0, 0.0)
    for _ in range(64):  # bisection on integers: pessimistic(n) grows with n
        if not np.any(hi - lo > 1):
            break
        mid = np.floor((lo + hi) / 2.0)
        enough = pessimistic(mid) >= need
        hi = np.where(enough, mid, hi)
        lo = np.where(enough, lo, mid)
    return np.where(ok, hi, 0).astype(np.int64)
