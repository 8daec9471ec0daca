"""The engine of ``ceas network simulate``: a consistent report, a table and a plot."""

import io

import numpy as np
import pytest
from rich.console import Console

from ceas.errors import UnknownNameError, ValidationError
from ceas.network import MemoryParams, NetworkParams, TopologyParams
from ceas.network.simulate import Demand, plot_report, report_table, simulate

PARAMS = NetworkParams(topology=TopologyParams(n_nodes=8), memory=MemoryParams(slots=10))


@pytest.fixture(scope="module")
def report():
    return simulate(
        PARAMS, 3.0, seed=5, demand=Demand(rate_hz=40.0, min_fidelity=0.85, step_s=0.05)
    )


def test_report_is_consistent(report):
    assert np.array_equal(
        report.consumed + report.expired + report.evicted + report.held, report.generated
    )
    assert np.all(report.consumed <= report.requested)
    assert report.use_fidelity.size == report.consumed.sum()
    assert np.all(report.use_fidelity >= 0.85) and np.all(report.use_fidelity <= 0.95 + 1e-12)
    assert np.all(report.served_fraction <= 1)
    np.testing.assert_allclose(report.utilisation, report.consumed / report.generated)
    totals = report.totals()
    assert totals["generated"] == report.generated.sum()
    # supply tracks p c / L: a loose 5-sigma check per link over 3 s (Poisson-like counts)
    expected = report.rate_hz * 3.0
    assert np.all(np.abs(report.generated - expected) < 5 * np.sqrt(expected))


def test_same_seed_same_report(report):
    again = simulate(
        PARAMS, 3.0, seed=5, demand=Demand(rate_hz=40.0, min_fidelity=0.85, step_s=0.05)
    )
    assert np.array_equal(again.generated, report.generated)
    assert np.array_equal(again.use_fidelity, report.use_fidelity)


def test_table_and_plot(report, tmp_path):
    buf = io.StringIO()
    Console(file=buf, width=200).print(report_table(report))
    text = buf.getvalue()
    assert "supply /s" in text and "all" in text and len(text.splitlines()) >= 8 + 5
    path = plot_report(report, tmp_path / "sub" / "network.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_demand_validation():
    with pytest.raises(ValidationError, match=r"rate_hz must be in \[0, inf\), got -1"):
        Demand(rate_hz=-1)
    with pytest.raises(ValidationError, match="min_fidelity must be in"):
        Demand(min_fidelity=1.2)
    with pytest.raises(UnknownNameError):
        Demand(purpose="nope")
    with pytest.raises(ValidationError, match="duration_s"):
        simulate(PARAMS, 0.0)
