"""Evaluate scheduling policies on the CEAS scheduling MDP through its gymnasium interface.

    .venv/bin/python examples/gym_policy_eval.py [--episodes 20] [--horizon 100] [--nodes 8]

Each registered policy plays ``--episodes`` episodes of ``--horizon`` rounds on the same seeds (common random numbers
for the env's arrivals and readiness), through the views it was written for: ``env.views()`` gives the broker's
InventoryView and NodeView of the current state, the policy returns a Decision, ``env.encode`` turns it into an action
of ``env.action_space``. The script prints each policy's mean discounted return with a 95 % interval over episodes,
the Bell-pair utilisation (pairs consumed by a served participant or distilled into key / pairs generated) and the
expired and evicted fractions. Any gymnasium agent can play the same env with actions from ``env.action_space``.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

from ceas.rng import stream
from ceas.scheduling import make_policy
from ceas.scheduling.env import ENV_ID
from ceas.scheduling.mdp import example_spec


def play(env: gym.Env, policy, seed: int) -> dict[str, float]:
    """One episode; returns the discounted return and pair accounting."""
    env.reset(seed=seed)
    rng = stream(seed, "policy")
    gamma = env.unwrapped.instance.params.discount
    ret, disc, used, generated, expired, evicted = 0.0, 1.0, 0, 0, 0, 0
    truncated = terminated = False
    while not (truncated or terminated):
        inventory, nodes = env.unwrapped.views()
        action = env.unwrapped.encode(policy(inventory, nodes, rng))
        _obs, reward, terminated, truncated, info = env.step(action)
        ret += disc * reward
        disc *= gamma
        used += int(info["utilised"].sum())
        generated += int(info["generated"].sum())
        expired += int(info["expired"].sum())
        evicted += int(info["evicted"].sum())
    return {
        "return": ret,
        "used": used,
        "generated": generated,
        "expired": expired,
        "evicted": evicted,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    instance = example_spec(args.nodes, seed=args.seed)
    env = gym.make(ENV_ID, instance=instance, horizon=args.horizon)
    print(
        f"{args.nodes} nodes, m = {instance.m}, age bins {instance.bins.tolist()}, "
        f"{args.episodes} episodes x {args.horizon} rounds"
    )
    print(f"{'policy':16s} {'return':>16s} {'utilisation':>12s} {'expired':>8s} {'evicted':>8s}")
    for name in ("ceas", "greedy-fidelity", "oblivious", "random"):
        policy = make_policy(name, instance.params)
        runs = [play(env, policy, args.seed + 1000 + e) for e in range(args.episodes)]
        ret = np.array([r["return"] for r in runs])
        half = 1.96 * ret.std(ddof=1) / np.sqrt(len(ret)) if len(ret) > 1 else 0.0
        gen = sum(r["generated"] for r in runs)
        print(
            f"{name:16s} {ret.mean():9.3f} ± {half:5.3f} "
            f"{sum(r['used'] for r in runs) / gen:11.1%} "
            f"{sum(r['expired'] for r in runs) / gen:8.1%} {sum(r['evicted'] for r in runs) / gen:8.1%}"
        )


if __name__ == "__main__":
    main()
