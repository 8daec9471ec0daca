"""The few closed forms of SPEC §4 the scheduler needs to value a pair (Werner decay, cutoff, BBM92 key yield).

They are restated here, not imported from :mod:`ceas.network`, so the scheduling layer depends only on the views the
broker fills; the network layer's tests and ours check the same formulas independently.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

__all__ = [
    "bbm92_bits",
    "binary_entropy",
    "cutoff_age",
    "fidelity_at_age",
    "pairs_for_bits",
    "werner_from_fidelity",
]


def werner_from_fidelity(fidelity: np.ndarray | float) -> np.ndarray:
    r"""Werner parameter (visibility) :math:`w = (4F - 1)/3` of a pair of fidelity F (any shape)."""
    return (4.0 * np.asarray(fidelity, dtype=float) - 1.0) / 3.0


def fidelity_at_age(
    f0: np.ndarray | float, age_s: np.ndarray | float, t_coh_s: np.ndarray | float
) -> np.ndarray:
    r""":math:`F(a) = 1/4 + (F_0 - 1/4)\,e^{-a/T}`: fidelity of a Werner pair after ``age_s`` seconds in memory
    of coherence time ``t_coh_s`` seconds (SPEC §4; arrays broadcast)."""
    f0 = np.asarray(f0, dtype=float)
    return 0.25 + (f0 - 0.25) * np.exp(
        -np.asarray(age_s, dtype=float) / np.asarray(t_coh_s, dtype=float)
    )


def cutoff_age(
    f0: np.ndarray | float, t_coh_s: np.ndarray | float, f_min: float = 0.8
) -> np.ndarray:
    r"""Usable-age cutoff :math:`a_{cut} = T \ln\frac{F_0 - 1/4}{F_{min} - 1/4}` in seconds (0 where F0 <= F_min)."""
    f0 = np.asarray(f0, dtype=float)
    ratio = np.maximum(f0 - 0.25, 1e-300) / (f_min - 0.25)
    return np.asarray(t_coh_s, dtype=float) * np.maximum(np.log(ratio), 0.0)


def binary_entropy(p: np.ndarray | float) -> np.ndarray:
    """Binary entropy h(p) in bits, with h(0) = h(1) = 0 (any shape)."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -p * np.log2(p) - (1.0 - p) * np.log2(1.0 - p)
    return np.nan_to_num(h, nan=0.0)


def bbm92_bits(fidelity: np.ndarray | float) -> np.ndarray:
    r"""Asymptotic BBM92 key bits per pair measured at fidelity F (SPEC §4).

    :math:`y(F) = \tfrac12 \max(0, 1 - 2 h(e))` with QBER :math:`e = 2(1 - F)/3`: sifting keeps half the pairs and
    error correction plus privacy amplification cost :math:`2h(e)`. Zero below F ~= 0.835 (e ~= 11 %).
    """
    e = 2.0 * (1.0 - np.asarray(fidelity, dtype=float)) / 3.0
    return 0.5 * np.maximum(0.0, 1.0 - 2.0 * binary_entropy(e))


def pairs_for_bits(
    bits: np.ndarray | float, fidelity: np.ndarray | float, confidence: float = 0.95
) -> np.ndarray:
    r"""Fewest fresh pairs of fidelity F whose BBM92 key reaches ``bits`` with probability about ``confidence``.

    A finite batch of n pairs yields :math:`\lfloor s\,(1 - 2h(\hat e))\rfloor` bits, with s ~ Bin(n, 1/2) sifted
    rounds and :math:`\hat e` the QBER seen on them, so asking for the mean count ``bits / y(F)`` falls short about
    half the time (the fraction 1 − 2h(ê) alone moves by ±20 % at n ≈ 400, F = 0.95). This takes the smallest n whose
    pessimistic yield -- sifted count and QBER each at their one-sided ``confidence`` normal bound -- covers
    ``bits`` (conservative: both bounds at once hold with probability above ``confidence``). Zero where no bits are
    needed or F yields no key; elementwise over broadcast ``bits`` and ``fidelity``.
    """
    need, f = np.broadcast_arrays(np.asarray(bits, dtype=float), np.asarray(fidelity, dtype=float))
    z = NormalDist().inv_cdf(float(confidence))
    e = 2.0 * (1.0 - f) / 3.0
    mean = bbm92_bits(f)
    ok = (need > 0) & (mean > 0)

    def pessimistic(n: np.ndarray) -> np.ndarray:
        sifted = np.maximum(n / 2.0 - z * np.sqrt(n) / 2.0, 0.0)
        q = e + z * np.sqrt(e * (1.0 - e) / np.maximum(n / 2.0, 1.0))
        return sifted * np.maximum(0.0, 1.0 - 2.0 * binary_entropy(np.minimum(q, 0.5)))

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
