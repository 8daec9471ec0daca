"""What a Byzantine QPU can do to a split circuit, and what CEAS's defences catch (issue 13, item 4).

Two kinds of attack on the unitary- and circuit-level schemes (the ``ceas schemes`` configuration: paper network,
classical replies, 40 rounds, 10 replicas a round, 16 samples, 32 shots), 20 % of the QPUs Byzantine:

* ``sign-flip`` (surface ``gradient``): the Byzantine QPU computes honestly but sends the negated gradient of its
  own block. Its replicas' honest blocks are untouched; layer-wise consensus sees one bad row in its block.
* ``scramble-state`` (surface ``state``): the Byzantine QPU fully depolarises the state it holds and forwards. Every
  QPU of its replica -- the honest ones included -- computes and honestly reports a gradient of a corrupted circuit;
  nothing it sends is forged, so authentication, stamps and verification tests cannot see it.

Each under the CEAS defaults (trimmed mean among a block's replicas, trust, predicted-MSE stamps) and under the plain
mean (``consensus.aggregator = "mean"``), against the same runs without attack, paired by seed (same data, network,
Byzantine set). Per cell: test accuracy (mean of the last 4 rounds), the drop against no attack (mean, 95 %
interval, worst seed), the share of replies the rule accepted, the Byzantine replies' weight in the aggregate, and the
final trust of the Byzantine QPUs, of the honest QPUs that share a replica with one, and of the other honest QPUs.

Run: ``python benchmarks/partition_attacks.py --seeds 5`` (about 20 minutes on 2 cores). Writes
``benchmarks/results/partition_attacks.json``.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCHEMES = {
    "unitary": ["partitions.scheme=unitary", "partitions.blocks=2"],
    "circuit": ["partitions.scheme=circuit", "partitions.qubits_per_qpu=2"],
}
ATTACKS = {"none": [], "sign-flip": ['security.attacks=["sign-flip"]'],
           "scramble-state": ['security.attacks=["scramble-state"]']}  # fmt: skip
RULES = {"ceas": [], "mean": ["consensus.aggregator=mean"]}
BASE = [
    "broker.payload=classical",
    "run.rounds=40",
    "training.batch_size=16",
    "training.shots=32",
    "security.byzantine_fraction=0.2",
]


def one(job: tuple[str, str, str, int, str]) -> dict:
    scheme, attack, rule, seed, out_dir = job
    from ceas.config import load_config
    from ceas.experiment.runner import run

    name = f"{scheme}-{attack}-{rule}-s{seed}"
    overrides = [*BASE, *SCHEMES[scheme], *ATTACKS[attack], *RULES[rule], f"run.seed={seed}",
                 f"run.name={name}", f"run.out_dir={json.dumps(out_dir)}"]  # fmt: skip
    cfg = load_config("paper", overrides)
    rows = run(cfg, progress=False, overwrite=True, plots=False).metrics
    acc = float(np.nanmean([r["test_accuracy"] for r in rows[-4:]]))
    trust = _final_trust(cfg, Path(out_dir) / name)
    return {"scheme": scheme, "attack": attack, "rule": rule, "seed": seed, "accuracy": acc,
            "accepted": float(np.mean([r["accepted"] / max(r["participants"], 1) for r in rows])),
            "byzantine_weight": float(np.mean([r["byzantine_weight"] for r in rows])), **trust}  # fmt: skip


def _final_trust(cfg, folder: Path) -> dict:
    """Mean final trust of the Byzantine QPUs, of the honest QPUs sharing a replica with one, and of the others
    (from the run's last checkpoint): what attribution the defences manage."""
    import pickle

    from ceas.broker.setup import build_context
    from ceas.experiment import store

    arrays, _ = store.load_checkpoint(folder / store.CHECKPOINT)
    state = pickle.loads(arrays["extra_state"].tobytes())
    ctx = build_context(cfg)
    scores = np.asarray(state.trust.snapshot(cfg.run.rounds).scores, float)
    members = ctx.replicas.members
    byz = ctx.is_byzantine
    shared = np.zeros(byz.size, bool)
    for row in members:
        if byz[row].any():
            shared[row] = True
    mate = shared & ~byz
    return {"trust_byzantine": float(scores[byz].mean()) if byz.any() else float("nan"),
            "trust_honest_in_compromised_replica": float(scores[mate].mean()) if mate.any() else float("nan"),
            "trust_honest_elsewhere": float(scores[~shared].mean())}  # fmt: skip


def summarise(rows: list[dict]) -> dict:
    out: dict = {}
    for scheme in SCHEMES:
        for rule in RULES:
            base = {r["seed"]: r["accuracy"] for r in rows
                    if (r["scheme"], r["attack"], r["rule"]) == (scheme, "none", rule)}  # fmt: skip
            for attack in ATTACKS:
                mine = [r for r in rows if (r["scheme"], r["attack"], r["rule"]) == (scheme, attack, rule)]
                acc = np.array([r["accuracy"] for r in mine])
                drop = np.array([base[r["seed"]] - r["accuracy"] for r in mine])
                half = 1.96 * drop.std(ddof=1) / np.sqrt(drop.size) if drop.size > 1 else 0.0
                out[f"{scheme}/{attack}/{rule}"] = {
                    "accuracy": float(acc.mean()),
                    "drop_points": float(100 * drop.mean()),
                    "drop_ci95_points": float(100 * half),
                    "worst_seed_drop_points": float(100 * drop.max()),
                    "accepted": float(np.mean([r["accepted"] for r in mine])),
                    "byzantine_weight": float(np.mean([r["byzantine_weight"] for r in mine])),
                    **{k: float(np.nanmean([r[k] for r in mine])) for k in
                       ("trust_byzantine", "trust_honest_in_compromised_replica", "trust_honest_elsewhere")},
                    "seeds": int(acc.size),
                }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "runs" / "partition_attacks"))
    args = parser.parse_args()
    jobs = [(s, a, r, seed, args.out) for s in SCHEMES for a in ATTACKS for r in RULES
            for seed in range(args.seeds)]  # fmt: skip
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(one, jobs))
    result = {"config": BASE, "rows": rows, "summary": summarise(rows)}
    path = ROOT / "benchmarks" / "results" / "partition_attacks.json"
    path.write_text(json.dumps(result, indent=1))
    for key, value in result["summary"].items():
        print(f"{key:34s} acc {value['accuracy']:.3f}  drop {value['drop_points']:+.1f} ± "
              f"{value['drop_ci95_points']:.1f}  worst {value['worst_seed_drop_points']:+.1f}  "
              f"accepted {value['accepted']:.2f}  trust byz/mates/others {value['trust_byzantine']:.2f}/"
              f"{value['trust_honest_in_compromised_replica']:.2f}/{value['trust_honest_elsewhere']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
