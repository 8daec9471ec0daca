r"""Entanglement swapping: joining two stored pairs at a shared node into one longer pair (SPEC §4).

A Bell measurement on the middle node's two halves, followed by a Pauli correction at one end, turns pairs
(u, m) and (m, v) into a pair (u, v). For Werner pairs the visibilities multiply,

.. math:: w = w_1(a_1)\,w_2(a_2), \qquad F = F_1F_2 + \frac{(1-F_1)(1-F_2)}{3},

where each :math:`w_i` is evaluated at its own age at the moment of the swap (ages aligned in time). For general
Bell-diagonal pairs the correlation vectors multiply entry-wise, :math:`t = t_1 \circ t_2 \circ s_{\Phi^+}` (a
convolution of the Pauli error distributions). A chain of swaps along a path is the product over its links.
"""

from __future__ import annotations

import numpy as np

from ceas._validate import check_values
from ceas.network.werner import (
    _CORRELATION_SIGNS,
    _PHI_PLUS_SIGNS,
    _bell_correlations,
    _check_bell,
)

__all__ = ["swap_bell", "swap_fidelity", "swap_werner"]


def swap_werner(*werner):
    r"""Werner parameter :math:`\prod_i w_i` of the pair made by swapping pairs with parameters ``werner``.

    Parameters
    ----------
    *werner : float or ndarray
        Werner parameters in [0, 1] of the pairs along the path, already decayed to the swap time; they broadcast.

    Examples
    --------
    >>> round(float(swap_werner(0.9, 0.8)), 12)
    0.72
    """
    out = np.ones(())
    for i, w in enumerate(werner):
        out = out * check_values(f"werner[{i}]", w, 0.0, 1.0)
    return out


def swap_fidelity(f1, f2):
    r"""Fidelity :math:`F_1F_2 + (1-F_1)(1-F_2)/3` after swapping two Werner pairs (fidelities in [1/4, 1])."""
    f1 = check_values("f1", f1, 0.25, 1.0)
    f2 = check_values("f2", f2, 0.25, 1.0)
    return f1 * f2 + (1.0 - f1) * (1.0 - f2) / 3.0


def _swap_bell(bell1, bell2):
    t = _bell_correlations(bell1) * _bell_correlations(bell2) * _PHI_PLUS_SIGNS
    return (1.0 + t @ _CORRELATION_SIGNS.T) / 4.0


def swap_bell(bell1, bell2):
    r"""Bell-diagonal vector (..., 4) after swapping Bell-diagonal pairs ``bell1`` and ``bell2`` (each (..., 4)).

    The Pauli correction maps the outcome of the Bell measurement back to the :math:`|\Phi^+\rangle` frame, so
    two perfect pairs give a perfect pair; correlations multiply: :math:`t = t_1 \circ t_2 \circ (1, -1, 1)`.
    """
    return _swap_bell(_check_bell(bell1), _check_bell(bell2))
