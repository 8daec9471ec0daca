"""Do stored pairs outlive a round? The storage presets against the paper physics (issue 11, item 2).

For each physics (``paper`` preset; ``configs/storage-nv.toml``; ``configs/storage-ion.toml``; and the storage presets
with the default 20 memory slots) and each policy (``ceas``; ``oblivious``, round robin using pairs in ledger order),
one broker run (seed 0 by default, the configuration's 20 % Byzantine nodes and default attack) is recorded by
:func:`ceas.experiment.regime_map.storage_probe`: the scheduling MDP's age bins on the run's own channels, the share of
payload pairs taken from storage and the share that had waited at least one round (age ≥ τ), the ages of stored pairs
spent, fidelity at use, accepted replies per round, utilisation and accuracy (mean of the last 10 % of rounds).

Run:  ``python benchmarks/storage_presets.py`` (about 3 minutes on 2 cores). Writes
``benchmarks/results/storage_presets.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHYSICS = {
    "paper": ("paper", []),
    "storage-nv": (str(ROOT / "configs" / "storage-nv.toml"), []),
    "storage-ion": (str(ROOT / "configs" / "storage-ion.toml"), []),
    "storage-nv-20-slots": (str(ROOT / "configs" / "storage-nv.toml"), ["network.memory.slots=20"]),
    "storage-ion-20-slots": (
        str(ROOT / "configs" / "storage-ion.toml"),
        ["network.memory.slots=20"],
    ),
}
POLICIES = ("ceas", "oblivious")


def main() -> None:
    from ceas.config import load_config
    from ceas.experiment.regime_map import storage_probe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "storage_presets.json"
    )
    args = ap.parse_args()
    rows = {}
    t0 = time.perf_counter()
    for name, (base, extra) in PHYSICS.items():
        for policy in POLICIES:
            cfg = load_config(base, extra + [f'scheduling.policy="{policy}"', f"run.seed={args.seed}",
                                             "broker.enabled=true"])  # fmt: skip
            t = time.perf_counter()
            r = storage_probe(cfg)
            r["wall_s"] = time.perf_counter() - t
            rows[f"{name}/{policy}"] = r
            ph = r["physics"]
            print(
                f"{name:22s} {policy:9s} bins {ph['age_bins_min']}-{ph['age_bins_max']} s/d "
                f"{ph['supply_over_demand']:.2f} stored {r['payload_share_stored']:.3f} aged>=1 round "
                f"{r['payload_share_aged_one_round']:.3f} F_use {r['fidelity_at_use']:.4f} accepted "
                f"{r['accepted']:.2f} util {r['utilisation']:.3f} acc {r['final10_accuracy']:.3f} "
                f"({r['wall_s']:.0f} s)",
                flush=True,
            )
    result = {"seed": args.seed, "wall_s": time.perf_counter() - t0, "runs": rows}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({result['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
