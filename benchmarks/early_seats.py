"""Byzantine seats in the first rounds, ``ceas`` vs ``random`` policy, over seeds (issue 12, item 1).

    python benchmarks/early_seats.py POLICY ATTACK FIRST_SEED END_SEED

Quick configuration through the broker, 10 Byzantine of 50 nodes, 10 seats; prints one JSON line with the mean and
the worst seed's Byzantine seats in each of the first three rounds.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from ceas.broker.round import BrokerTrainer
from ceas.config import load_config


def seats(policy: str, attack: str, seed: int, rounds: int = 3) -> list[int]:
    attacks = json.dumps([attack] if attack != "none" else [])
    cfg = load_config(
        "quick",
        ["broker.enabled=true", "security.byzantine_fraction=0.2", f'scheduling.policy="{policy}"',
         f"security.attacks={attacks}", f"run.seed={seed}", f"run.rounds={rounds}"],
    )  # fmt: skip
    trainer = BrokerTrainer(cfg)
    trainer.start()
    optimizer, theta = trainer.make_optimizer(), trainer.initial_parameters()
    out = []
    for t in range(rounds):
        result = trainer.run_round(t, theta, optimizer)
        theta = result.theta
        out.append(result.metrics["byzantine_participants"])
    return out


def main() -> None:
    policy, attack, first, end = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    t0 = time.time()
    arr = np.array([seats(policy, attack, s) for s in range(first, end)])
    print(json.dumps({"policy": policy, "attack": attack, "seeds": [first, end],
                      "mean_per_round": arr.mean(0).round(3).tolist(), "max_per_round": arr.max(0).tolist(),
                      "wall": round(time.time() - t0, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()
