"""The gymnasium env: env checker, seeding, five-tuple, truncation, policy bridge, and the documented example."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from gymnasium.utils.env_checker import check_env

from ceas.errors import ValidationError
from ceas.scheduling import make_policy
from ceas.scheduling.env import ENV_ID, SchedulingEnv
from ceas.scheduling.mdp import example_spec

ROOT = Path(__file__).resolve().parents[2]


def test_passes_gymnasium_env_checker():
    env = SchedulingEnv(example_spec(5, seed=1), horizon=20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    assert [str(w.message) for w in caught] == []


def _rollout(env, seed, steps=30):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    env.action_space.seed(seed)
    for _ in range(steps):
        obs, *_ = env.step(env.action_space.sample())
        out.append(obs)
    return out


def test_same_seed_gives_equal_observations_and_rng_state():
    a, b = SchedulingEnv(horizon=50), SchedulingEnv(horizon=50)
    ra, rb = _rollout(a, 3), _rollout(b, 3)
    for x, y in zip(ra, rb):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    assert a.np_random.bit_generator.state == b.np_random.bit_generator.state
    rc = _rollout(SchedulingEnv(horizon=50), 4)
    assert any(not np.array_equal(x["pairs"], y["pairs"]) for x, y in zip(ra, rc))


def test_step_returns_five_tuple_and_truncates_at_the_horizon():
    env = SchedulingEnv(horizon=3)
    env.reset(seed=0)
    idle = {k: np.zeros(s.shape, s.dtype) for k, s in env.action_space.spaces.items()}
    results = [env.step(idle) for _ in range(3)]
    assert all(len(r) == 5 for r in results)
    assert [r[3] for r in results] == [False, False, True] and not any(r[2] for r in results)
    assert isinstance(results[0][1], float)
    assert results[0][4]["clipped"] is False


def test_infeasible_actions_are_clipped_not_rejected():
    env = SchedulingEnv(horizon=5)
    env.reset(seed=0)
    greedy = {
        k: (s.nvec - 1 if hasattr(s, "nvec") else np.ones(s.shape, np.int8))
        for k, s in env.action_space.spaces.items()
    }
    obs, _reward, *_, info = env.step(greedy)
    assert info["clipped"] is True
    assert env.observation_space.contains(obs)
    assert info["served"].sum() <= env.instance.m


def test_policies_play_the_env_through_their_views():
    env = SchedulingEnv(example_spec(6, seed=2), horizon=40)
    totals = {}
    for name in ("ceas", "random"):
        env.reset(seed=11)
        policy = make_policy(name, env.instance.params)
        rng = np.random.default_rng(0)
        total = 0.0
        for _ in range(40):
            inv, nodes = env.views()
            _, r, _, trunc, info = env.step(env.encode(policy(inv, nodes, rng)))
            assert info["clipped"] is False  # a validated decision is already feasible
            total += r
        assert trunc
        totals[name] = total
    assert totals["ceas"] > totals["random"]


def test_registered_with_gymnasium_and_usage_errors():
    env = gym.make(ENV_ID, instance=example_spec(4), horizon=7)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    raw = SchedulingEnv()
    with pytest.raises(ValidationError, match=r"call reset\(\) before step\(\)"):
        raw.step(raw.action_space.sample())
    with pytest.raises(ValidationError, match="horizon must be an integer >= 1, got 0"):
        SchedulingEnv(horizon=0)


def test_documented_example_runs():
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "gym_policy_eval.py"),
            "--episodes",
            "2",
            "--horizon",
            "15",
            "--nodes",
            "4",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("4 nodes, m = 1")
    assert [line.split()[0] for line in lines[2:]] == [
        "ceas",
        "greedy-fidelity",
        "oblivious",
        "random",
    ]
