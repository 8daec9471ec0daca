r"""Entanglement verification at the protocol level (SPEC §6, defence 2).

On each link the broker sacrifices :math:`k` stored pairs: for each it picks a basis :math:`b \in \{X, Y, Z\}` at
random, both ends measure their halves in :math:`b`, and the node reports its outcomes. For
:math:`|\Phi^+\rangle` the outcomes are perfectly correlated in :math:`X` and :math:`Z` and anti-correlated in
:math:`Y`; a report that breaks this is an **error**. For a Werner pair

.. math:: \rho_w = w\,|\Phi^+\rangle\langle\Phi^+| + (1 - w)\,I/4, \qquad F = (1 + 3w)/4,

an error happens with probability :math:`e = (1 - w)/2 = 2(1 - F)/3` in every basis (the BBM92 QBER of SPEC §4), so

.. math:: \hat F = 1 - \tfrac{3}{2}\,\hat e, \qquad \hat e = \#\text{errors} / k,

and a two-sided bound on :math:`e` (Clopper–Pearson, exact; or Hoeffding) maps to bounds on :math:`F`. The upper
bound **caps** any fidelity a node claims for that link (:func:`cap_claimed_fidelity`).

An impostor that does not hold the pair cannot correlate with the broker's half: each reported outcome is wrong with
probability :math:`q` (:math:`q = 1/2` for any strategy without a correlated state; :math:`q = 1/3` for the best
separable substitute, a pair classically correlated in :math:`Z`). Accepting only error-free tests, it passes with
probability :math:`(1 - q)^k` and is detected with probability :math:`1 - (1 - q)^k` (:func:`detection_probability`).

All functions are pure and vectorised: Werner parameters and counts broadcast over any leading shape (links).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ceas._lazy import lazy_import
from ceas.errors import ValidationError
from ceas.network.werner import fidelity_from_qber, qber_from_werner

stats = lazy_import("scipy.stats")

__all__ = [
    "BASES",
    "IMPOSTOR_ERROR_PROBABILITY",
    "FidelityEstimate",
    "TestRecord",
    "cap_claimed_fidelity",
    "detection_probability",
    "error_probability",
    "estimate_fidelity",
    "fidelity_from_errors",
    "honest_test_errors",
    "impostor_pass_probability",
    "sample_honest_test",
    "sample_impostor_test",
]

BASES = ("X", "Y", "Z")
"""Measurement bases, indexed 0, 1, 2 in :class:`TestRecord`."""
_PHI_PLUS_SIGN = np.array([1, -1, 1])
"""Product of the two outcomes (±1) for |Φ+⟩ in X, Y, Z: <XX> = 1, <YY> = -1, <ZZ> = 1."""

ImpostorStrategy = Literal["guess", "classical-z"]
IMPOSTOR_ERROR_PROBABILITY: dict[str, float] = {"guess": 0.5, "classical-z": 1.0 / 3.0}
"""Per-pair error probability :math:`q` of each impostor strategy under uniformly random bases."""


def _as_array(name: str, value: object, low: float, high: float) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < low) or np.any(arr > high):
        raise ValidationError(f"{name} must be in [{low:g}, {high:g}], got {value!r}")
    return arr


def _check_pairs(k: object) -> np.ndarray:
    arr = np.asarray(k)
    if arr.dtype.kind not in "iu" or np.any(arr < 1):
        raise ValidationError(f"k (pairs tested) must be an integer >= 1, got {k!r}")
    return arr.astype(np.int64)


def error_probability(w: float | np.ndarray) -> np.ndarray:
    """Per-pair error probability :math:`e = (1 - w)/2` of a Werner pair with parameter ``w`` in [0, 1].

    The formula's home is :func:`ceas.network.werner.qber_from_werner`.
    """
    return qber_from_werner(_as_array("werner parameter w", w, 0.0, 1.0))


def fidelity_from_errors(error_rate: float | np.ndarray) -> np.ndarray:
    """Fidelity :math:`F = 1 - 3e/2` implied by error rate ``e`` in [0, 1/2] (clipped to [1/4, 1])."""
    e = _as_array("error rate", error_rate, 0.0, 1.0)
    return np.clip(fidelity_from_qber(e), 0.25, 1.0)


@dataclass(frozen=True)
class TestRecord:
    """Outcomes of one verification test per link.

    Attributes
    ----------
    bases : ndarray of int, shape (..., k)
        Basis index per tested pair (0 = X, 1 = Y, 2 = Z), chosen uniformly by the broker.
    broker : ndarray of int8, shape (..., k)
        Broker's outcomes, ±1.
    node : ndarray of int8, shape (..., k)
        Outcomes the node reported, ±1.
    """

    __test__ = False  # not a pytest test class

    bases: np.ndarray
    broker: np.ndarray
    node: np.ndarray

    @property
    def errors(self) -> np.ndarray:
        """Errors per link, shape (...): pairs whose outcome product differs from |Φ+⟩'s sign in that basis."""
        return np.sum(self.broker * self.node != _PHI_PLUS_SIGN[self.bases], axis=-1)

    @property
    def k(self) -> int:
        """Pairs tested per link."""
        return int(self.bases.shape[-1])


def _bases_and_broker(
    shape: tuple[int, ...], k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    bases = rng.integers(0, 3, size=(*shape, k))
    # The broker's half of any pair the node could hold, or of a pair it does not hold, is maximally mixed.
    broker = rng.choice(np.array([-1, 1], dtype=np.int8), size=(*shape, k))
    return bases, broker


def sample_honest_test(w: float | np.ndarray, k: int, rng: np.random.Generator) -> TestRecord:
    r"""Simulate verification of :math:`k` Werner pairs per link held honestly by the node.

    Given the broker's outcome :math:`a` in basis :math:`b`, the node's is :math:`a \cdot s_b` (the |Φ+⟩ sign)
    with probability :math:`(1 + w)/2` and :math:`-a \cdot s_b` otherwise.

    Parameters
    ----------
    w : float or ndarray, shape (...)
        Werner parameter of the pairs at the time of measurement, in [0, 1].
    k : int
        Pairs sacrificed per link.
    rng : numpy.random.Generator

    Returns
    -------
    TestRecord
        With arrays of shape (..., k).
    """
    e = error_probability(w)
    k = int(_check_pairs(k))
    bases, broker = _bases_and_broker(e.shape, k, rng)
    flip = rng.random((*e.shape, k)) < e[..., None]
    node = (broker * _PHI_PLUS_SIGN[bases] * np.where(flip, -1, 1)).astype(np.int8)
    return TestRecord(bases, broker, node)


def honest_test_errors(w: float, k: int, rng: np.random.Generator) -> int:
    """The error count of ``sample_honest_test(w, k, rng).errors`` for one link, from the same draws in the same order,
    without building the record: the node's outcome breaks the |Φ+⟩ correlation exactly when it was flipped, so the
    errors are the flips (the bases and the broker's outcomes are still drawn, so the generator ends where
    :func:`sample_honest_test` leaves it)."""
    e = error_probability(w)
    k = int(_check_pairs(k))
    _bases_and_broker(e.shape, k, rng)
    return int(np.count_nonzero(rng.random((*e.shape, k)) < e[..., None]))


def sample_impostor_test(
    shape: tuple[int, ...], k: int, rng: np.random.Generator, strategy: ImpostorStrategy = "guess"
) -> TestRecord:
    """Simulate verification against an impostor that holds no entangled pair.

    Strategies: ``"guess"`` reports uniform random outcomes (no correlation with the broker's half);
    ``"classical-z"`` substituted a separable pair :math:`(|00\\rangle\\langle 00| + |11\\rangle\\langle 11|)/2`,
    so it matches the broker in :math:`Z` and is uncorrelated in :math:`X` and :math:`Y`.

    Parameters
    ----------
    shape : tuple of int
        Leading shape (links).
    k : int
        Pairs tested per link.
    rng : numpy.random.Generator
    strategy : {"guess", "classical-z"}
    """
    if strategy not in IMPOSTOR_ERROR_PROBABILITY:
        raise ValidationError(
            f"strategy must be one of {sorted(IMPOSTOR_ERROR_PROBABILITY)}, got {strategy!r}"
        )
    k = int(_check_pairs(k))
    bases, broker = _bases_and_broker(tuple(shape), k, rng)
    guess = rng.choice(np.array([-1, 1], dtype=np.int8), size=broker.shape)
    if strategy == "guess":
        node = guess
    else:  # Z outcomes copied from the shared classical bit (Z sign +1); X and Y carry no correlation
        node = np.where(bases == 2, broker, guess).astype(np.int8)
    return TestRecord(bases, broker, node)


@dataclass(frozen=True)
class FidelityEstimate:
    """The broker's estimate of a link's pair fidelity from a verification test.

    Attributes
    ----------
    estimate : ndarray, shape (...)
        :math:`\\hat F = 1 - 3\\hat e/2`, clipped to [1/4, 1].
    lower, upper : ndarray, shape (...)
        Two-sided confidence bounds on F at level ``confidence``.
    errors, k : ndarray of int, shape (...)
        Errors seen and pairs tested.
    confidence : float
        Two-sided confidence level.
    """

    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    errors: np.ndarray
    k: np.ndarray
    confidence: float


def estimate_fidelity(
    errors: int | np.ndarray,
    k: int | np.ndarray,
    *,
    confidence: float = 0.95,
    bound: Literal["clopper-pearson", "hoeffding"] = "clopper-pearson",
) -> FidelityEstimate:
    r"""Estimate pair fidelity with a two-sided confidence interval from ``errors`` out of ``k`` tested pairs.

    Clopper–Pearson bounds on the error rate are the :math:`\alpha/2` and :math:`1 - \alpha/2` quantiles of
    Beta(x, k − x + 1) and Beta(x + 1, k − x) (exact coverage ≥ ``confidence``); Hoeffding's are
    :math:`\hat e \mp \sqrt{\ln(2/\alpha)/(2k)}`. Counts from several tests of one link add up.

    Parameters
    ----------
    errors : int or ndarray of int, shape (...)
        Errors seen, in [0, k].
    k : int or ndarray of int, broadcastable to errors
        Pairs tested, >= 1.
    confidence : float, default 0.95
        Two-sided level in (0, 1).
    bound : {"clopper-pearson", "hoeffding"}

    Returns
    -------
    FidelityEstimate
    """
    k_arr = _check_pairs(k)
    x = np.asarray(errors)
    if x.dtype.kind not in "iu" or np.any(x < 0) or np.any(x > k_arr):
        raise ValidationError(f"errors must be integers in [0, k], got {errors!r} with k={k!r}")
    if not 0.0 < confidence < 1.0:
        raise ValidationError(f"confidence must be in (0, 1), got {confidence!r}")
    x, k_arr = np.broadcast_arrays(x.astype(np.int64), k_arr)
    alpha = 1.0 - confidence
    e_hat = x / k_arr
    if bound == "clopper-pearson":
        with np.errstate(invalid="ignore"):
            e_lo = np.where(x == 0, 0.0, stats.beta.ppf(alpha / 2, x, k_arr - x + 1))
            e_hi = np.where(x == k_arr, 1.0, stats.beta.ppf(1 - alpha / 2, x + 1, k_arr - x))
    elif bound == "hoeffding":
        half = np.sqrt(np.log(2.0 / alpha) / (2.0 * k_arr))
        e_lo, e_hi = np.clip(e_hat - half, 0.0, 1.0), np.clip(e_hat + half, 0.0, 1.0)
    else:
        raise ValidationError(
            f"bound must be one of ['clopper-pearson', 'hoeffding'], got {bound!r}"
        )
    return FidelityEstimate(
        estimate=fidelity_from_errors(e_hat),
        lower=fidelity_from_errors(e_hi),
        upper=fidelity_from_errors(e_lo),
        errors=x,
        k=k_arr,
        confidence=float(confidence),
    )


def cap_claimed_fidelity(claimed: float | np.ndarray, estimate: FidelityEstimate) -> np.ndarray:
    """Claimed fidelities capped at the broker's upper confidence bound, shape of the broadcast.

    An honest claim exceeds the upper bound with probability at most (1 − confidence)/2, so capping costs honest
    nodes almost nothing while an inflated claim (say F = 1 on a link measured at 0.85) falls to the bound.
    """
    return np.minimum(_as_array("claimed fidelity", claimed, 0.0, 1.0), estimate.upper)


def detection_probability(k: int | np.ndarray, q: float | np.ndarray) -> np.ndarray:
    """Probability :math:`1 - (1 - q)^k` that an impostor with per-pair error probability ``q`` shows an error."""
    q = _as_array("q", q, 0.0, 1.0)
    return 1.0 - (1.0 - q) ** _check_pairs(k)


def impostor_pass_probability(
    k: int | np.ndarray, q: float | np.ndarray, max_errors: int | np.ndarray = 0
) -> np.ndarray:
    """Probability that an impostor with per-pair error probability ``q`` shows at most ``max_errors`` errors.

    Binomial CDF :math:`P[\\mathrm{Bin}(k, q) \\le t]`; :math:`(1 - q)^k` for ``max_errors`` = 0. A tolerance
    :math:`t > 0` lets honest noisy pairs pass at the price of a weaker test.
    """
    return stats.binom.cdf(max_errors, _check_pairs(k), _as_array("q", q, 0.0, 1.0))
