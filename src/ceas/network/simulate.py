"""The engine behind ``ceas network simulate CONFIG --duration ...``: supply, fidelity at use, expiries, utilisation.

:func:`simulate` builds the network from its parameters, runs it for a duration under a simple demand (each step,
each link wants a Poisson number of pairs, used as they become available) and returns a
:class:`SimulationReport`. :func:`report_table` renders it as a rich Table, :func:`plot_report` as a PNG.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.table import Table

from ceas._validate import check_real, lookup
from ceas.network.inventory import PAIR_PURPOSES, SELECTION_ORDERS
from ceas.network.network import QuantumNetwork, StreamDemand
from ceas.network.params import NetworkParams
from ceas.rng import stream

__all__ = ["Demand", "SimulationReport", "plot_report", "report_table", "simulate"]


@dataclass(frozen=True)
class Demand:
    """A simple demand: every link wants Poisson(``rate_hz`` x ``step_s``) pairs per step.

    Attributes
    ----------
    rate_hz : float
        Mean pairs wanted per link per second (>= 0).
    min_fidelity : float or None
        Pairs used must have at least this fidelity at use (None: any live pair).
    purpose : str
        Purpose the pairs are counted under.
    order : str
        Which stored pairs are used first.
    step_s : float
        Length of one clock step, seconds (> 0).
    """

    rate_hz: float = 10.0
    min_fidelity: float | None = None
    purpose: str = "payload"
    order: str = "oldest"
    step_s: float = 0.1

    def __post_init__(self) -> None:
        check_real("rate_hz", self.rate_hz, 0.0)
        if self.min_fidelity is not None:
            check_real("min_fidelity", self.min_fidelity, 0.25, 1.0)
        lookup("purpose", self.purpose, PAIR_PURPOSES)
        lookup("selection order", self.order, SELECTION_ORDERS)
        check_real("step_s", self.step_s, 0.0, None, low_open=True)


@dataclass(frozen=True)
class SimulationReport:
    """Per-link results of :func:`simulate`; arrays have shape (n_links,) unless stated.

    Attributes
    ----------
    duration_s : float
        Simulated time, seconds.
    seed : int
        Run seed.
    demand : Demand
        The demand simulated.
    length_km, t_coh_s, cutoff_s, rate_hz : ndarray
        Link length, pair coherence time, cutoff age of a fresh pair, analytic generation rate p c / L.
    generated, consumed, expired, evicted, held : ndarray of int
        Pair counts (held: at the end).
    requested : ndarray of int
        Pairs the demand asked for.
    use_link : ndarray of int, shape (n_used,)
        Link of each pair used.
    use_fidelity : ndarray, shape (n_used,)
        Fidelity of each pair at its moment of use.
    """

    duration_s: float
    seed: int
    demand: Demand
    length_km: np.ndarray
    t_coh_s: np.ndarray
    cutoff_s: np.ndarray
    rate_hz: np.ndarray
    generated: np.ndarray
    consumed: np.ndarray
    expired: np.ndarray
    evicted: np.ndarray
    held: np.ndarray
    requested: np.ndarray
    use_link: np.ndarray
    use_fidelity: np.ndarray

    @property
    def n_links(self) -> int:
        return int(self.length_km.size)

    @property
    def supply_hz(self) -> np.ndarray:
        """Measured generation rate, pairs per second per link."""
        return self.generated / self.duration_s if self.duration_s > 0 else np.zeros(self.n_links)

    @staticmethod
    def _ratio(a, b) -> np.ndarray:
        a = np.asarray(a, dtype=float)
        b = np.asarray(b, dtype=float)
        return np.divide(a, b, out=np.full(np.broadcast(a, b).shape, np.nan), where=b > 0)

    @property
    def utilisation(self) -> np.ndarray:
        """Consumed / generated per link."""
        return self._ratio(self.consumed, self.generated)

    @property
    def expired_fraction(self) -> np.ndarray:
        return self._ratio(self.expired, self.generated)

    @property
    def evicted_fraction(self) -> np.ndarray:
        return self._ratio(self.evicted, self.generated)

    @property
    def served_fraction(self) -> np.ndarray:
        """Consumed / requested per link."""
        return self._ratio(self.consumed, self.requested)

    @property
    def mean_fidelity_at_use(self) -> np.ndarray:
        """Mean fidelity of the pairs used on each link (NaN where none)."""
        sums = np.bincount(self.use_link, weights=self.use_fidelity, minlength=self.n_links)
        return self._ratio(sums, np.bincount(self.use_link, minlength=self.n_links))

    def totals(self) -> dict[str, float]:
        """Network-wide totals and fractions."""
        g = float(self.generated.sum())
        return {
            "generated": g,
            "consumed": float(self.consumed.sum()),
            "expired": float(self.expired.sum()),
            "evicted": float(self.evicted.sum()),
            "held": float(self.held.sum()),
            "requested": float(self.requested.sum()),
            "utilisation": float(self.consumed.sum() / g) if g else math.nan,
            "mean_fidelity_at_use": float(self.use_fidelity.mean())
            if self.use_fidelity.size
            else math.nan,
        }


def simulate(
    params: NetworkParams,
    duration_s: float,
    *,
    seed: int = 0,
    demand: Demand | None = None,
) -> SimulationReport:
    """Run the network for ``duration_s`` seconds under ``demand`` and report per-link statistics.

    Parameters
    ----------
    params : NetworkParams
        The network section of a run config.
    duration_s : float
        Simulated time, seconds (> 0).
    seed : int
        Run seed: the network uses stream ``network``, the demand stream ``network.demand``.
    demand : Demand, optional
        Default: ``Demand()`` (10 pairs per link per second, any live pair, 0.1 s steps).

    Examples
    --------
    >>> r = simulate(NetworkParams(topology={"n_nodes": 4}), 1.0, seed=1)
    >>> bool(((r.consumed + r.expired + r.evicted + r.held) == r.generated).all())
    True
    """
    duration_s = check_real("duration_s", duration_s, 0.0, None, low_open=True)
    demand = demand or Demand()
    net = QuantumNetwork.from_params(params, stream(seed, "network"))
    demand_rng = stream(seed, "network.demand")
    L = net.n_links
    requested = np.zeros(L, np.int64)
    links: list[np.ndarray] = []
    fids: list[np.ndarray] = []
    n_steps = max(1, math.ceil(duration_s / demand.step_s - 1e-9))
    for step in range(n_steps):
        dt = min(demand.step_s, duration_s - step * demand.step_s)
        want = demand_rng.poisson(demand.rate_hz * dt, size=L).astype(np.int64)
        requested += want
        report = net.advance(
            dt,
            StreamDemand(want, demand.purpose, demand.min_fidelity, demand.order),
        )
        links.append(report.delivered.link)
        fids.append(report.delivered.fidelity)
    c = net.counters()
    table = net.table
    return SimulationReport(
        duration_s=duration_s,
        seed=seed,
        demand=demand,
        length_km=table.length_km.copy(),
        t_coh_s=table.t_coh_s.copy(),
        cutoff_s=table.cutoff_s.copy(),
        rate_hz=table.rate_hz.copy(),
        generated=c.generated,
        consumed=c.consumed_total,
        expired=c.expired,
        evicted=c.evicted,
        held=c.held,
        requested=requested,
        use_link=np.concatenate(links),
        use_fidelity=np.concatenate(fids),
    )


def _pct(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{100 * x:.1f}"


def report_table(report: SimulationReport) -> Table:
    """A rich Table: one row per link plus a total row."""
    t = Table(
        title=f"network simulation: {report.duration_s:g} s, seed {report.seed}, demand "
        f"{report.demand.rate_hz:g} pairs/s/link"
    )
    for name in (
        "link",
        "L km",
        "T s",
        "cutoff ms",
        "supply /s",
        "p c/L /s",
        "served %",
        "F at use",
        "expired %",
        "evicted %",
        "used %",
    ):
        t.add_column(name, justify="right")
    mean_f = report.mean_fidelity_at_use
    for k in range(report.n_links):
        t.add_row(
            str(k),
            f"{report.length_km[k]:.1f}",
            f"{report.t_coh_s[k]:.3f}",
            f"{1e3 * report.cutoff_s[k]:.1f}",
            f"{report.supply_hz[k]:.1f}",
            f"{report.rate_hz[k]:.1f}",
            _pct(report.served_fraction[k]),
            "-" if not np.isfinite(mean_f[k]) else f"{mean_f[k]:.4f}",
            _pct(report.expired_fraction[k]),
            _pct(report.evicted_fraction[k]),
            _pct(report.utilisation[k]),
        )
    tot = report.totals()
    g = tot["generated"]
    t.add_section()
    t.add_row(
        "all",
        "",
        "",
        "",
        f"{report.supply_hz.sum():.1f}",
        f"{report.rate_hz.sum():.1f}",
        _pct(tot["consumed"] / tot["requested"] if tot["requested"] else math.nan),
        "-"
        if not np.isfinite(tot["mean_fidelity_at_use"])
        else f"{tot['mean_fidelity_at_use']:.4f}",
        _pct(tot["expired"] / g if g else math.nan),
        _pct(tot["evicted"] / g if g else math.nan),
        _pct(tot["utilisation"]),
    )
    return t


def plot_report(report: SimulationReport, path: str | Path) -> Path:
    """Write a four-panel PNG (supply vs length, fidelity at use, losses per link, utilisation) to ``path``.

    The file is written to a temporary name and renamed, so a reader never sees a partial image.
    """
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(11, 8), layout="constrained")
    ax = fig.subplots(2, 2)
    order = np.argsort(report.length_km)
    ax[0, 0].plot(report.length_km[order], report.rate_hz[order], "-", color="0.4", label="p c / L")
    ax[0, 0].plot(report.length_km, report.supply_hz, "o", ms=4, label="measured")
    ax[0, 0].set(
        xlabel="fibre length (km)", ylabel="pairs per second", yscale="log", title="supply per link"
    )
    ax[0, 0].legend()
    if report.use_fidelity.size:
        ax[0, 1].hist(report.use_fidelity, bins=50, color="C2")
    ax[0, 1].set(xlabel="fidelity at use", ylabel="pairs", title="fidelity at the moment of use")
    k = np.arange(report.n_links)
    ax[1, 0].bar(k, report.expired_fraction, label="expired", color="C3")
    ax[1, 0].bar(
        k, report.evicted_fraction, bottom=report.expired_fraction, label="evicted", color="C1"
    )
    ax[1, 0].set(xlabel="link", ylabel="fraction of generated", title="losses per link")
    ax[1, 0].legend()
    ax[1, 1].bar(k, report.utilisation, color="C0")
    ax[1, 1].set(xlabel="link", ylabel="consumed / generated", title="utilisation per link")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
