"""`ceas sweep`: one value varied, scenarios compared at each value; bad input fails before anything runs."""

from __future__ import annotations

import json

import pytest

from ceas.cli import main
from ceas.errors import ConfigError
from ceas.experiment.sweep import parse_vary

TINY = ["--set", "run.rounds=2", "--set", "training.nodes=12", "--set", "scheduling.participants=4"]


def test_parse_vary_keeps_lists_and_quoted_commas_whole():
    assert parse_vary("security.byzantine_fraction=0,0.1, 0.2") == (
        "security.byzantine_fraction",
        ["0", "0.1", "0.2"],
    )
    key, values = parse_vary('security.attacks=["alie","ipm"],["sign-flip"],[]')
    assert key == "security.attacks" and values == ['["alie","ipm"]', '["sign-flip"]', "[]"]
    assert parse_vary('run.name="a,b",c')[1] == ['"a,b"', "c"]


@pytest.mark.parametrize(
    "spec",
    [
        "byzantine_fraction=0,1",
        "security.byzantine_fraction",
        "=1,2",
        "a.b=1,,2",
        "a.b=1,1",
        "a.b=",
    ],
)
def test_parse_vary_rejects_malformed_specs(spec):
    with pytest.raises(ConfigError):
        parse_vary(spec)


def test_tiny_sweep_writes_a_table_per_value_and_scenario(tmp_path, capsys):
    argv = ["sweep", "--quick", "--vary", "security.byzantine_fraction=0,0.25", "--seeds", "1",
            "--workers", "1", "--quiet", "--out", str(tmp_path), *TINY]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| security.byzantine_fraction | ceas | random-fedavg |" in out
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["values"] == ["0", "0.25"] and res["scenarios"] == ["ceas", "random-fedavg"]
    for value in res["values"]:
        for s in res["scenarios"]:
            assert 0.0 <= res["table"][value][s]["final10_accuracy"][0] <= 1.0
    assert (tmp_path / "sweep.png").stat().st_size > 0
    assert (tmp_path / "ceas-v1-s0" / "metrics.parquet").exists()
    # the Byzantine fraction reached the runs: 3 of 12 nodes at 0.25, none at 0
    rows0 = json.loads((tmp_path / "ceas-v0-s0" / "summary.json").read_text())
    assert (
        rows0["config_digest"]
        != json.loads((tmp_path / "ceas-v1-s0" / "summary.json").read_text())["config_digest"]
    )


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--vary", "security.byzantine_fraction=0,2"], "byzantine_fraction"),
        (
            ["--vary", "security.byzantine_fraction=0", "--scenarios", "ceas,nope"],
            "scenario 'nope' is unknown",
        ),
        (["--vary", "nosuch.key=1,2"], "nosuch"),
    ],
)
def test_bad_sweeps_are_one_line_errors_before_any_run(tmp_path, capsys, extra, needle):
    assert main(["sweep", "--quick", "--out", str(tmp_path), "--quiet", *extra, *TINY]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_fresh_reruns_instead_of_reusing(tmp_path, capsys):
    argv = ["sweep", "--quick", "--vary", "security.byzantine_fraction=0", "--scenarios", "ceas",
            "--seeds", "1", "--workers", "1", "--quiet", "--out", str(tmp_path), *TINY]  # fmt: skip
    assert main(argv) == 0
    metrics = tmp_path / "ceas-v0-s0" / "metrics.parquet"
    first = metrics.stat().st_mtime_ns
    assert main(argv) == 0
    assert metrics.stat().st_mtime_ns == first  # reused
    assert main([*argv, "--fresh"]) == 0
    assert metrics.stat().st_mtime_ns != first  # rerun
