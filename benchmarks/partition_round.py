"""Per-round cost of each partition scheme through the broker (issue 13): wall seconds of one round, split into the
QPU-QPU pair stream, the local updates (circuit simulation) and the rest, at the ``ceas schemes`` configuration and
at the paper's 512 shots × 32 samples.

Run: ``python benchmarks/partition_round.py`` (a few minutes on 2 cores). Writes
``benchmarks/results/partition_round.json``; the table is in docs/performance.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCHEMES = {
    "data": [],
    "unitary": ["partitions.scheme=unitary", "partitions.blocks=2"],
    "circuit": ["partitions.scheme=circuit", "partitions.qubits_per_qpu=2"],
}
SETTINGS = {
    "schemes (16 samples, 32 shots)": ["training.batch_size=16", "training.shots=32"],
    "paper (32 samples, 512 shots)": [],
}
BASE = ["broker.payload=classical", "security.byzantine_fraction=0"]
ROUNDS = 3


def time_rounds(overrides: list[str]) -> dict[str, float]:
    """Median seconds per round of phases 'configure' (incl. the pair stream), 'local' and the whole round."""
    import ceas.broker.configure as configure_mod
    import ceas.broker.round as round_mod
    from ceas.broker.round import BrokerTrainer
    from ceas.config import load_config

    cfg = load_config("paper", BASE + overrides)
    trainer = BrokerTrainer(cfg)
    theta, opt = trainer.initial_parameters(), trainer.make_optimizer()
    spent = {"configure": [], "local": [], "round": []}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            spent[name].append(time.perf_counter() - start)
            return out

        return wrapper

    originals = (round_mod.configure, round_mod.local_updates)
    round_mod.configure = timed("configure", configure_mod.configure)
    round_mod.local_updates = timed("local", originals[1])
    try:
        trainer.run_round(0, theta, opt)  # warm-up (builds the network, imports)
        for name in spent:
            spent[name].clear()
        for t in range(1, ROUNDS + 1):
            start = time.perf_counter()
            theta = trainer.run_round(t, theta, opt).theta
            spent["round"].append(time.perf_counter() - start)
    finally:
        round_mod.configure, round_mod.local_updates = originals
    return {k: float(np.median(v)) for k, v in spent.items()}


def main() -> None:
    rows = []
    for setting, extra in SETTINGS.items():
        for scheme, chosen in SCHEMES.items():
            t = time_rounds(extra + chosen)
            rows.append({"setting": setting, "scheme": scheme, **t})
            print(f"{setting:34s} {scheme:8s} round {t['round']:.2f} s  configure {t['configure']:.2f} s  "
                  f"local {t['local']:.2f} s")  # fmt: skip
    (ROOT / "benchmarks" / "results" / "partition_round.json").write_text(
        json.dumps({"rounds_timed": ROUNDS, "rows": rows}, indent=1)
    )


if __name__ == "__main__":
    main()
