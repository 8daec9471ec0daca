r"""Link physics: heralded entanglement generation at a midpoint station (SPEC §4).

Each fibre link of length :math:`L` has a heralding station in the middle. Per arm the transmissivity is

.. math:: \eta = \eta_0 \cdot 10^{-\alpha (L/2)/10},

with device efficiency :math:`\eta_0` and attenuation :math:`\alpha` in dB/km. Per attempt,

* **single-click** (one photon detected): success :math:`p = 2\theta\eta`, fidelity :math:`F_0 = 1 - \theta`
  (the bright-state population :math:`\theta` trades rate against fidelity);
* **double-click** (two photons, Barrett–Kok): success :math:`p = \eta^2/2`, fidelity set by the devices.

An attempt takes the round trip to the station, :math:`L/c`, so waiting times are geometric in units of
:math:`L/c` and the mean rate is :math:`p c / L`. The heralded state is taken as the Werner state of fidelity
:math:`F_0` (a twirl; the standard conservative model). The pair decays with :math:`1/T = 1/T_u + 1/T_v` from the
coherence times of its two memories.

Functions are networkx-style: the graph comes first, physical quantities are edge and node attributes whose
names carry their unit (``length_km``, ``t_coh_s``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ceas._lazy import lazy_import
from ceas._validate import check_values, lookup
from ceas.errors import ValidationError
from ceas.network.params import LinkParams, MemoryParams
from ceas.network.werner import _cutoff_age, _werner_at_age, _werner_from_fidelity

nx = lazy_import("networkx")

__all__ = [
    "HERALDING_SCHEMES",
    "LinkTable",
    "annotate_links",
    "arm_transmissivity",
    "attempt_period_s",
    "initial_fidelity",
    "link_coherence_s",
    "link_table",
    "success_probability",
]

HERALDING_SCHEMES = ("single_click", "double_click")


def arm_transmissivity(length_km, *, eta0: float, alpha_db_per_km: float):
    r"""Per-arm transmissivity :math:`\eta_0 10^{-\alpha L / 20}` of links of length ``length_km`` (> 0, km).

    Examples
    --------
    >>> round(float(arm_transmissivity(20.0, eta0=0.5, alpha_db_per_km=0.2)), 6)
    0.315479
    """
    length = check_values("length_km", length_km, 0.0, None, low_open=True)
    return eta0 * 10.0 ** (-alpha_db_per_km * (length / 2.0) / 10.0)


def success_probability(eta, *, scheme: str, theta: float):
    r"""Heralding probability per attempt: :math:`2\theta\eta` (single-click) or :math:`\eta^2/2` (double-click)."""
    eta = check_values("eta", eta, 0.0, 1.0)
    if lookup("heralding scheme", scheme, HERALDING_SCHEMES) == "single_click":
        return 2.0 * theta * eta
    return eta**2 / 2.0


def initial_fidelity(*, scheme: str, theta: float, double_click_fidelity: float) -> float:
    r"""Fidelity of a freshly heralded pair: :math:`1 - \theta` (single-click) or the device value (double-click)."""
    if lookup("heralding scheme", scheme, HERALDING_SCHEMES) == "single_click":
        return 1.0 - theta
    return float(double_click_fidelity)


def attempt_period_s(length_km, *, c_km_per_s: float):
    """Duration of one attempt, the round trip to the midpoint station: ``length_km / c_km_per_s`` seconds."""
    return check_values("length_km", length_km, 0.0, None, low_open=True) / c_km_per_s


def link_coherence_s(t_u_s, t_v_s):
    r"""Coherence time of a pair stored at two nodes: :math:`1/T = 1/T_u + 1/T_v` (``inf`` = ideal memory)."""
    t_u = check_values("t_coh_s", t_u_s, 0.0, None, low_open=True, allow_inf=True)
    t_v = check_values("t_coh_s", t_v_s, 0.0, None, low_open=True, allow_inf=True)
    with np.errstate(divide="ignore"):
        return 1.0 / (1.0 / t_u + 1.0 / t_v)


@dataclass(frozen=True)
class LinkTable:
    """Per-link physical constants, arrays of shape (n_links,) in the graph's edge order.

    Attributes
    ----------
    edges : tuple of (node, node)
        The link endpoints, in link-index order.
    length_km, eta, p_success, attempt_s : ndarray
        Fibre length (km), per-arm transmissivity, success probability per attempt, attempt period (s).
    f0 : ndarray
        Fidelity of a freshly heralded pair.
    t_coh_s : ndarray
        Coherence time of a stored pair (s), from its two nodes' memories.
    cutoff_s : ndarray
        Usable-age cutoff of a fresh pair (s): age at which its fidelity falls to F_min.
    """

    edges: tuple[tuple, ...]
    length_km: np.ndarray
    eta: np.ndarray
    p_success: np.ndarray
    attempt_s: np.ndarray
    f0: np.ndarray
    t_coh_s: np.ndarray
    cutoff_s: np.ndarray

    @property
    def n_links(self) -> int:
        return len(self.edges)

    @property
    def rate_hz(self) -> np.ndarray:
        """Mean generation rate p / (L/c) of each link, pairs per second, shape (n_links,)."""
        return self.p_success / self.attempt_s


def link_table(G: nx.Graph, link: LinkParams, memory: MemoryParams) -> LinkTable:
    """Compute every link's physics from edge ``length_km`` and node ``t_coh_s`` attributes.

    Parameters
    ----------
    G : networkx.Graph
        A validated topology (see :func:`ceas.network.topology.validate_topology`).
    link : LinkParams
        Heralding physics.
    memory : MemoryParams
        Supplies ``f_min`` for the cutoff age.

    Returns
    -------
    LinkTable
        Arrays in ``G.edges`` order.

    Raises
    ------
    ValidationError
        If a link's success probability underflows to 0 (it could never herald a pair).
    """
    edges = tuple(G.edges())
    length = np.array([G.edges[e]["length_km"] for e in edges], dtype=float)
    t_u = np.array([G.nodes[u]["t_coh_s"] for u, _ in edges], dtype=float)
    t_v = np.array([G.nodes[v]["t_coh_s"] for _, v in edges], dtype=float)
    eta = arm_transmissivity(length, eta0=link.eta0, alpha_db_per_km=link.alpha_db_per_km)
    p = success_probability(eta, scheme=link.scheme, theta=link.theta)
    if np.any(p <= 0.0):
        k = int(np.argmin(p))
        raise ValidationError(
            f"link {edges[k]} of {length[k]:g} km can never herald a pair (success probability underflows "
            "to 0); allowed: shorter links or lower alpha_db_per_km"
        )
    f0 = initial_fidelity(
        scheme=link.scheme, theta=link.theta, double_click_fidelity=link.double_click_fidelity
    )
    t_coh = link_coherence_s(t_u, t_v)
    f0_arr = np.full(len(edges), f0)
    return LinkTable(
        edges=edges,
        length_km=length,
        eta=eta,
        p_success=p,
        attempt_s=attempt_period_s(length, c_km_per_s=link.c_km_per_s),
        f0=f0_arr,
        t_coh_s=t_coh,
        cutoff_s=_cutoff_age(f0_arr, t_coh, memory.f_min),
    )


def annotate_links(G: nx.Graph, link: LinkParams, memory: MemoryParams) -> nx.Graph:
    r"""A copy of ``G`` whose edges carry ``p_success``, ``attempt_s``, ``f0``, ``t_coh_s``, ``cutoff_s`` and
    ``reliability``.

    ``reliability`` is the visibility a fresh pair keeps over the mean waiting time of its link,
    :math:`w_0\,e^{-(L/c)/(pT)}`: the factor a swap along this link contributes, used by
    :func:`ceas.network.topology.most_reliable_path`.
    """
    table = link_table(G, link, memory)
    H = G.copy()
    reliability = _werner_at_age(
        _werner_from_fidelity(table.f0), table.attempt_s / table.p_success, table.t_coh_s
    )
    for k, e in enumerate(table.edges):
        H.edges[e].update(
            p_success=float(table.p_success[k]),
            attempt_s=float(table.attempt_s[k]),
            f0=float(table.f0[k]),
            t_coh_s=float(table.t_coh_s[k]),
            cutoff_s=float(table.cutoff_s[k]),
            reliability=float(reliability[k]),
        )
    return H
