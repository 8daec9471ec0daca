r"""Entanglement verification on a link: sacrifice k pairs, estimate F with a confidence interval (SPEC §4, §6).

Two tests, both from the outcome products of measurements on the k pairs at their moment of use:

* ``qber`` (default): each pair is measured by both ends in one basis b in {X, Y, Z} chosen uniformly; an
  **error** is an outcome product different from :math:`|\Phi^+\rangle`'s (+1, -1, +1). For any Bell-diagonal pair
  :math:`P(\text{error}) = (e_X + e_Y + e_Z)/3 = 2(1 - F)/3`, so :math:`\hat F = 1 - \tfrac32\hat e`.
* ``chsh``: settings :math:`A_0 = Z, A_1 = X, B_{0,1} = (Z \pm X)/\sqrt2` chosen uniformly; with :math:`c = -1` for
  (1, 1) and +1 otherwise, :math:`\hat S = 4\,\overline{c\,ab}` estimates the CHSH value. For a Werner pair
  :math:`S = 2\sqrt2\,w`, so :math:`\hat F = \tfrac14 + \tfrac34 \hat S / (2\sqrt2)` (this step assumes a Werner pair).

Both reduce to a count of successes among k Bernoulli trials; a two-sided Clopper–Pearson interval (exact: coverage
at least the confidence level) on that probability maps monotonically to the interval on F, clipped to [1/4, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas._lazy import lazy_import
from ceas._validate import lookup
from ceas.network.werner import (
    _basis_error_rates,
    _bell_correlations,
    _chsh_from_werner,
    _fidelity_from_chsh,
    _fidelity_from_qber,
    _qber,
    _werner_from_fidelity,
)

stats = lazy_import("scipy.stats")

__all__ = ["VERIFICATION_TESTS", "VerificationResult", "clopper_pearson", "run_verification"]

VERIFICATION_TESTS = ("qber", "chsh")


@dataclass(frozen=True)
class VerificationResult:
    """Estimate of a link's pair fidelity from k sacrificed pairs.

    Attributes
    ----------
    method : str
        ``qber`` or ``chsh``.
    k : int
        Pairs consumed.
    fidelity, lower, upper : float
        Point estimate of F and the two-sided confidence interval, each clipped to [1/4, 1].
    confidence : float
        Level of the interval.
    qber : float
        Estimated error rate (``qber`` test: observed; ``chsh``: implied 2(1 - F)/3).
    chsh : float
        Estimated CHSH value (``chsh`` test: observed; ``qber``: implied 2 sqrt(2) w).
    """

    method: str
    k: int
    fidelity: float
    lower: float
    upper: float
    confidence: float
    qber: float
    chsh: float


def clopper_pearson(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    """Exact two-sided binomial interval for the success probability (Clopper & Pearson 1934)."""
    alpha = 1.0 - confidence
    lo = 0.0 if successes == 0 else stats.beta.ppf(alpha / 2, successes, trials - successes + 1)
    hi = (
        1.0
        if successes == trials
        else stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes)
    )
    return float(lo), float(hi)


def _clip(f: float) -> float:
    return float(min(1.0, max(0.25, f)))


def run_verification(
    bell: np.ndarray, rng: np.random.Generator, *, method: str = "qber", confidence: float = 0.95
) -> VerificationResult:
    """Measure pairs with Bell vectors ``bell`` (k, 4) in random settings and estimate F.

    Parameters
    ----------
    bell : ndarray, shape (k, 4)
        Bell-diagonal vectors at the moment of measurement.
    rng : numpy.random.Generator
        Source of settings and outcomes.
    method : {"qber", "chsh"}
        Which test (see the module docstring).
    confidence : float
        Level of the two-sided interval, in (0, 1).
    """
    method = lookup("verification test", method, VERIFICATION_TESTS)
    bell = np.asarray(bell, dtype=float).reshape(-1, 4)
    k = bell.shape[0]
    if method == "qber":
        basis = rng.integers(0, 3, size=k)
        e = _basis_error_rates(bell)[np.arange(k), basis]
        errors = int((rng.random(k) < e).sum())
        e_hat = errors / k
        e_lo, e_hi = clopper_pearson(errors, k, confidence)
        f_hat = float(_fidelity_from_qber(e_hat))
        result = (f_hat, float(_fidelity_from_qber(e_hi)), float(_fidelity_from_qber(e_lo)))
        w_hat = _werner_from_fidelity(_clip(f_hat))
        return VerificationResult(
            method,
            k,
            _clip(f_hat),
            _clip(result[1]),
            _clip(result[2]),
            confidence,
            float(e_hat),
            float(_chsh_from_werner(w_hat)),
        )
    a = rng.integers(0, 2, size=k)
    b = rng.integers(0, 2, size=k)
    t = _bell_correlations(bell)  # (k, 3): XX, YY, ZZ
    theta_a = np.where(a == 0, 0.0, np.pi / 2)  # A0 = Z, A1 = X, in the x-z plane
    theta_b = np.where(b == 0, np.pi / 4, -np.pi / 4)  # B0 = (Z + X)/sqrt2, B1 = (Z - X)/sqrt2
    corr = t[:, 0] * np.sin(theta_a) * np.sin(theta_b) + t[:, 2] * np.cos(theta_a) * np.cos(theta_b)
    product = np.where(rng.random(k) < (1.0 + corr) / 2.0, 1, -1)
    sign = np.where((a == 1) & (b == 1), -1, 1)
    hits = int((sign * product > 0).sum())  # Bernoulli with mean (1 + S/4)/2
    s_hat = 4.0 * (2.0 * hits / k - 1.0)
    p_lo, p_hi = clopper_pearson(hits, k, confidence)

    def fid(s: float) -> float:
        return float(_fidelity_from_chsh(s))

    f_hat = fid(s_hat)
    return VerificationResult(
        method,
        k,
        _clip(f_hat),
        _clip(fid(4.0 * (2.0 * p_lo - 1.0))),
        _clip(fid(4.0 * (2.0 * p_hi - 1.0))),
        confidence,
        float(_qber(_clip(f_hat))),
        float(s_hat),
    )
