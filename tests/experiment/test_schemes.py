"""``ceas schemes``: the three partition schemes on one network, CEAS vs random scheduling, as a grid."""

from __future__ import annotations

import json

from ceas.cli import main

TINY = ["run.rounds=2", "training.nodes=8", "scheduling.participants=2", "training.batch_size=4",
        "training.shots=8", "model.n_layers=2"]  # fmt: skip


def test_schemes_command_compares_every_scheme_and_policy(tmp_path, capsys):
    argv = ["schemes", "--seeds", "1", "--out", str(tmp_path / "s"), "-q"]
    for item in TINY:
        argv += ["--set", item]
    assert main(argv) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "s" / "results.json").read_text())
    assert set(result["table"]) == {"data", "unitary", "circuit"}
    for scheme, by_policy in result["table"].items():
        assert set(by_policy) == {"ceas", "random"}
        for fig in by_policy.values():
            qpu_pairs = fig["qpu_pairs_per_round"][0]
            assert (qpu_pairs == 0) == (scheme == "data")
            assert fig["round_time_s"][0] >= 1.0 and 0 <= fig["utilisation"][0] <= 1
    # the split schemes' demand: samples x (2P+1) x shots x pairs per run, per seated replica
    runs = 4 * (2 * 16 + 1) * 8
    assert result["table"]["unitary"]["random"]["qpu_pairs_per_round"][0] == 2 * 4 * runs
    assert out.count("| unitary |") == 2 and "6 cells" in out
