r"""The one home of the pair physics (SPEC §3, §4): Werner decay, fidelity <-> Werner, cutoff age, QBER, CHSH, the
BBM92 key yield and the stamp weight. Every other layer imports these instead of restating them.

A pair is described by its **Bell-diagonal vector** :math:`\lambda = (\lambda_{\Phi^+}, \lambda_{\Psi^-},
\lambda_{\Psi^+}, \lambda_{\Phi^-})` (the order of Deutsch et al. 1996, "A, B, C, D"), with fidelity
:math:`F = \lambda_{\Phi^+}` to the target state :math:`|\Phi^+\rangle`. A **Werner** pair is the special case
:math:`\lambda = (F, \tfrac{1-F}{3}, \tfrac{1-F}{3}, \tfrac{1-F}{3})`, i.e.
:math:`\rho = w\,|\Phi^+\rangle\langle\Phi^+| + (1-w)\,I/4` with visibility (Werner parameter)
:math:`w = (4F - 1)/3`.

Memory decoherence is depolarising: a pair of age :math:`a` held in memories of coherence time :math:`T` has

.. math:: w(a) = w_0\,e^{-a/T}, \qquad F(a) = \tfrac14 + (F_0 - \tfrac14)\,e^{-a/T},

and is usable until the cutoff age :math:`a_\mathrm{cut} = T\,\ln\frac{F_0 - 1/4}{F_\mathrm{min} - 1/4}`.
When the two halves sit in memories with coherence times :math:`T_u, T_v`, the pair decays with
:math:`1/T = 1/T_u + 1/T_v` (:func:`ceas.network.links.link_coherence_s`).

A gradient estimate from :math:`S` shots of a circuit with quantum Fisher information :math:`F_Q`, delivered through
a payload channel of visibility :math:`v = w`, has predicted inverse variance (the fidelity stamp's weight, SPEC §3)

.. math:: \varphi = S \cdot F_Q \cdot v^2 .

Units: ages and coherence times in seconds; fidelities in [1/4, 1]; every function broadcasts over arrays.
Public functions validate their arguments (``fidelity must be in [0.25, 1], got 1.3``); the underscored
twins skip the checks for the network layer's hot paths (they are private to :mod:`ceas.network`).
"""

from __future__ import annotations

import numpy as np

from ceas._validate import check_values
from ceas.errors import ValidationError

__all__ = [
    "BELL_STATES",
    "basis_error_rates",
    "bbm92_key_fraction",
    "bell_correlations",
    "bell_decay",
    "bell_from_correlations",
    "binary_entropy",
    "chsh_max",
    "chsh_value",
    "cutoff_age",
    "fidelity_at_age",
    "fidelity_from_chsh",
    "fidelity_from_qber",
    "fidelity_from_werner",
    "qber",
    "qber_from_werner",
    "secret_fraction",
    "stamp_weight",
    "werner_at_age",
    "werner_bell_vector",
    "werner_from_fidelity",
]

BELL_STATES = ("phi+", "psi-", "psi+", "phi-")
"""Order of the entries of a Bell-diagonal vector."""

# <XX>, <YY>, <ZZ> of each Bell state, rows in BELL_STATES order.
_CORRELATION_SIGNS = np.array(
    [
        [1.0, -1.0, 1.0],  # phi+
        [-1.0, -1.0, -1.0],  # psi-
        [1.0, 1.0, -1.0],  # psi+
        [-1.0, 1.0, 1.0],  # phi-
    ]
)
_PHI_PLUS_SIGNS = _CORRELATION_SIGNS[0]


def _fidelity(name: str, value) -> np.ndarray:
    return check_values(name, value, 0.25, 1.0)


def _age(value) -> np.ndarray:
    return check_values("age_s", value, 0.0, None, allow_inf=True)


def _coherence(value) -> np.ndarray:
    return check_values("t_coh_s", value, 0.0, None, low_open=True, allow_inf=True)


# ------------------------------------------------------------------------------------------------------------------
# Werner parameter <-> fidelity, decay, cutoff
# ------------------------------------------------------------------------------------------------------------------


def _werner_from_fidelity(fidelity):
    return (4.0 * np.asarray(fidelity, dtype=float) - 1.0) / 3.0


def werner_from_fidelity(fidelity):
    r"""Werner parameter (visibility) :math:`w = (4F - 1)/3` of a pair with fidelity ``fidelity`` in [1/4, 1].

    Examples
    --------
    >>> round(float(werner_from_fidelity(0.85)), 12)
    0.8
    """
    return _werner_from_fidelity(_fidelity("fidelity", fidelity))


def _fidelity_from_werner(werner):
    return (3.0 * np.asarray(werner, dtype=float) + 1.0) / 4.0


def fidelity_from_werner(werner):
    r"""Fidelity :math:`F = (3w + 1)/4` of a Werner pair with parameter ``werner`` in [0, 1]."""
    return _fidelity_from_werner(check_values("werner", werner, 0.0, 1.0))


def _decay_factor(age_s, t_coh_s):
    with np.errstate(invalid="ignore", over="ignore"):
        return np.exp(-np.asarray(age_s, dtype=float) / np.asarray(t_coh_s, dtype=float))


def _fidelity_at_age(f0, age_s, t_coh_s):
    return 0.25 + (np.asarray(f0) - 0.25) * _decay_factor(age_s, t_coh_s)


def fidelity_at_age(f0, age_s, t_coh_s):
    r"""Fidelity :math:`F(a) = 1/4 + (F_0 - 1/4)\,e^{-a/T}` of a Werner pair after ``age_s`` seconds.

    Parameters
    ----------
    f0 : float or ndarray
        Initial fidelity, in [1/4, 1].
    age_s : float or ndarray
        Storage time a >= 0, seconds.
    t_coh_s : float or ndarray
        Coherence time T > 0 of the pair's memories, seconds (``inf`` for an ideal memory).

    Returns
    -------
    ndarray
        F(a), broadcast shape of the inputs.

    Examples
    --------
    >>> float(fidelity_at_age(0.95, 0.1, 0.1))  # doctest: +ELLIPSIS
    0.507...
    """
    return _fidelity_at_age(_fidelity("f0", f0), _age(age_s), _coherence(t_coh_s))


def _werner_at_age(w0, age_s, t_coh_s):
    return np.asarray(w0) * _decay_factor(age_s, t_coh_s)


def werner_at_age(w0, age_s, t_coh_s):
    r"""Werner parameter :math:`w(a) = w_0\,e^{-a/T}` (``w0`` in [0, 1]; ages and T in seconds)."""
    return _werner_at_age(check_values("w0", w0, 0.0, 1.0), _age(age_s), _coherence(t_coh_s))


def _cutoff_age(f0, t_coh_s, f_min):
    f0 = np.asarray(f0, dtype=float)
    t = np.asarray(t_coh_s, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log((f0 - 0.25) / (f_min - 0.25))
        age = np.where(log_ratio > 0, t * log_ratio, 0.0)
    return age


def cutoff_age(f0, t_coh_s, *, f_min):
    r"""Usable-age cutoff :math:`a_\mathrm{cut} = T \ln\frac{F_0 - 1/4}{F_\mathrm{min} - 1/4}`, seconds.

    The age at which :math:`F(a)` falls to ``f_min``. It is 0 when :math:`F_0 \le F_\mathrm{min}` (the pair is never
    usable) and infinite when ``f_min`` is 1/4 or the memory is ideal (``t_coh_s = inf``) with
    :math:`F_0 > F_\mathrm{min}`. ``f_min`` is keyword-only so that no call can swap it with ``t_coh_s``.

    Parameters
    ----------
    f0 : float or ndarray
        Initial fidelity, in [1/4, 1].
    t_coh_s : float or ndarray
        Coherence time T > 0, seconds.
    f_min : float or ndarray
        Minimum usable fidelity, in [1/4, 1] (SPEC §4 default: 0.8, ``memory.f_min``).

    Examples
    --------
    >>> round(float(cutoff_age(0.95, 0.1, f_min=0.8)), 6)
    0.024116
    """
    return _cutoff_age(_fidelity("f0", f0), _coherence(t_coh_s), _fidelity("f_min", f_min))


# ------------------------------------------------------------------------------------------------------------------
# Bell-diagonal vectors
# ------------------------------------------------------------------------------------------------------------------


def _werner_bell_vector(fidelity):
    f = np.asarray(fidelity, dtype=float)
    rest = (1.0 - f) / 3.0
    return np.stack([f, rest, rest, rest], axis=-1)


def werner_bell_vector(fidelity):
    """Bell-diagonal vector (..., 4) of the Werner pair with fidelity ``fidelity`` in [1/4, 1]."""
    return _werner_bell_vector(_fidelity("fidelity", fidelity))


def _check_bell(bell) -> np.ndarray:
    arr = check_values("bell vector entries", bell, 0.0, 1.0)
    if arr.ndim == 0 or arr.shape[-1] != 4:
        raise ValidationError(f"bell vector must have shape (..., 4), got {arr.shape}")
    total = arr.sum(axis=-1)
    if not np.allclose(total, 1.0, atol=1e-9):
        raise ValidationError(
            f"bell vector entries must sum to 1, got {float(np.ravel(total)[0]):.12g}"
        )
    return arr


def _bell_decay(bell, age_s, t_coh_s):
    k = _decay_factor(age_s, t_coh_s)[..., None]
    return k * np.asarray(bell) + (1.0 - k) * 0.25


def bell_decay(bell, age_s, t_coh_s):
    r"""Bell-diagonal vector after ``age_s`` seconds of depolarising storage: :math:`e^{-a/T}\lambda + (1-e^{-a/T})/4`.

    Parameters
    ----------
    bell : ndarray, shape (..., 4)
        Bell-diagonal vector (entries in [0, 1], summing to 1).
    age_s, t_coh_s : float or ndarray
        Age a >= 0 and coherence time T > 0, seconds, broadcasting against ``bell[..., 0]``.
    """
    return _bell_decay(_check_bell(bell), _age(age_s), _coherence(t_coh_s))


def _bell_correlations(bell):
    return np.asarray(bell) @ _CORRELATION_SIGNS


def bell_correlations(bell):
    r"""Correlation vector :math:`t = (\langle XX\rangle, \langle YY\rangle, \langle ZZ\rangle)`, shape (..., 3)."""
    return _bell_correlations(_check_bell(bell))


def bell_from_correlations(t):
    r"""Inverse of :func:`bell_correlations`: :math:`\lambda_k = (1 + \sum_i s_{ki} t_i)/4`, shape (..., 4).

    ``t`` (..., 3) must describe a state (the result is then non-negative); no check is made beyond finiteness.
    """
    t = check_values("correlations", t, -1.0, 1.0)
    return (1.0 + t @ _CORRELATION_SIGNS.T) / 4.0


# ------------------------------------------------------------------------------------------------------------------
# measurement statistics: QBER, CHSH, key fraction
# ------------------------------------------------------------------------------------------------------------------


def _qber(fidelity):
    return 2.0 * (1.0 - np.asarray(fidelity, dtype=float)) / 3.0


def qber(fidelity):
    r"""BBM92 quantum bit error rate :math:`e = 2(1 - F)/3` of a Werner pair (either basis)."""
    return _qber(_fidelity("fidelity", fidelity))


def qber_from_werner(werner):
    r"""The same error rate in terms of the Werner parameter, :math:`e = (1 - w)/2`, for ``werner`` in [0, 1]."""
    return (1.0 - check_values("werner", werner, 0.0, 1.0)) / 2.0


def _fidelity_from_qber(error_rate):
    return 1.0 - 1.5 * np.asarray(error_rate, dtype=float)


def fidelity_from_qber(error_rate):
    r"""Fidelity :math:`F = 1 - \tfrac32 e` implied by an error rate ``error_rate`` in [0, 1] (inverse of :func:`qber`).

    Above :math:`e = 1/2` the value falls below 1/4 (an estimate from sampled errors can land there); clip it to
    [1/4, 1] for a physical fidelity.
    """
    return _fidelity_from_qber(check_values("error_rate", error_rate, 0.0, 1.0))


def _basis_error_rates(bell):
    b = np.asarray(bell)
    # an error is an outcome product different from |Phi+>'s: XX = +1, YY = -1, ZZ = +1
    e_x = b[..., 1] + b[..., 3]
    e_y = b[..., 2] + b[..., 3]
    e_z = b[..., 1] + b[..., 2]
    return np.stack([e_x, e_y, e_z], axis=-1)


def basis_error_rates(bell):
    r"""Error probability in the X, Y and Z bases, shape (..., 3), of a Bell-diagonal pair.

    An error is an outcome product different from :math:`|\Phi^+\rangle`'s (+1 in X and Z, -1 in Y):
    :math:`e_X = \lambda_{\Psi^-} + \lambda_{\Phi^-}`, :math:`e_Y = \lambda_{\Psi^+} + \lambda_{\Phi^-}`,
    :math:`e_Z = \lambda_{\Psi^-} + \lambda_{\Psi^+}`; so :math:`F = 1 - (e_X + e_Y + e_Z)/2`.
    """
    return _basis_error_rates(_check_bell(bell))


_TWO_SQRT2 = 2.0 * np.sqrt(2.0)


def _chsh_from_werner(werner):
    return _TWO_SQRT2 * np.asarray(werner, dtype=float)


def chsh_value(fidelity):
    r"""CHSH value :math:`S = 2\sqrt2\,w` of a Werner pair at the optimal settings (violation needs F > 0.78)."""
    return _chsh_from_werner(werner_from_fidelity(fidelity))


def _fidelity_from_chsh(s):
    return 0.25 + 0.75 * np.asarray(s, dtype=float) / _TWO_SQRT2


def fidelity_from_chsh(s):
    r"""Fidelity :math:`F = 1/4 + \tfrac34\,S/(2\sqrt2)` of the Werner pair with CHSH value ``s`` in [0, 2√2]."""
    return _fidelity_from_chsh(check_values("chsh value", s, 0.0, float(_TWO_SQRT2)))


def chsh_max(bell):
    r"""Largest CHSH value of a Bell-diagonal pair, :math:`2\sqrt{t_1^2 + t_2^2}` over its two largest :math:`|t_i|`.

    (Horodecki, Horodecki & Horodecki 1995.) Equals :func:`chsh_value` for Werner pairs.
    """
    t = np.sort(np.abs(_bell_correlations(_check_bell(bell))), axis=-1)
    return 2.0 * np.sqrt(t[..., 1] ** 2 + t[..., 2] ** 2)


def _binary_entropy(p):
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1.0 - p) * np.log2(1.0 - p))
    return np.where((p == 0.0) | (p == 1.0), 0.0, h)


def binary_entropy(p):
    r"""Binary entropy :math:`h(p) = -p\log_2 p - (1-p)\log_2(1-p)` in bits, with :math:`h(0) = h(1) = 0`."""
    return _binary_entropy(check_values("p", p, 0.0, 1.0))


def _secret_fraction(error_rate):
    return np.maximum(0.0, 1.0 - 2.0 * _binary_entropy(error_rate))


def secret_fraction(error_rate):
    r"""Asymptotic BBM92 secret fraction of sifted bits, :math:`r = \max(0, 1 - 2h(e))` (zero above e ~ 11.0 %)."""
    return _secret_fraction(check_values("error_rate", error_rate, 0.0, 1.0))


def bbm92_key_fraction(fidelity):
    r"""Secret key bits per pair of fidelity F: sifting 1/2 times :math:`\max(0, 1 - 2h(2(1-F)/3))`.

    Zero below F ~= 0.835 (QBER ~= 11 %). This is the asymptotic mean; :func:`ceas.network.qkd.pairs_for_bits`
    gives the batch size that reaches a key budget with a stated confidence.

    Examples
    --------
    >>> float(bbm92_key_fraction(1.0))
    0.5
    """
    return 0.5 * _secret_fraction(_qber(_fidelity("fidelity", fidelity)))


# ------------------------------------------------------------------------------------------------------------------
# the fidelity stamp's weight
# ------------------------------------------------------------------------------------------------------------------


def stamp_weight(shots, qfi, visibility):
    r"""Predicted inverse gradient variance :math:`\varphi = S \cdot \hat F_Q \cdot v^2` (Definition 1, SPEC §3).

    Parameters
    ----------
    shots : int or ndarray
        Shots per expectation S (>= 1).
    qfi : float or ndarray
        Mean diagonal quantum Fisher information :math:`\hat F_Q` (>= 0, dimensionless).
    visibility : float or ndarray
        Werner visibility v of the payload channel at use time, in [0, 1] (:func:`werner_from_fidelity`).

    Returns
    -------
    float or ndarray
        φ in units of 1/(gradient variance), broadcast shape of the inputs.

    Examples
    --------
    >>> round(float(stamp_weight(512, 0.5, 0.8)), 9)
    163.84
    """
    s = check_values("shots", shots, 1.0, None)
    q = check_values("qfi", qfi, 0.0, None)
    v = check_values("visibility", visibility, 0.0, 1.0)
    return s * q * v**2
