"""A user's own aggregation rule and attack: registered in one place, usable from a config, run by the broker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from ceas.config import load_config
from ceas.consensus import AGGREGATORS, register_aggregator
from ceas.errors import ConfigError, ValidationError
from ceas.experiment.runner import run
from ceas.security.attacks import ATTACKS, register_attack


@dataclass(frozen=True)
class CoordinateMidrange:
    """Midpoint of each coordinate's smallest and largest value (a deliberately fragile rule)."""

    name: ClassVar[str] = "midrange"

    def __call__(self, updates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(updates, dtype=float)
        return 0.5 * (x.min(axis=0) + x.max(axis=0))


@dataclass(frozen=True)
class Zeros:
    """Byzantine nodes send zero updates (a stalling attack)."""

    name: ClassVar[str] = "zeros"
    surface: ClassVar[str] = "gradient"

    def __call__(self, honest: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros((f, np.asarray(honest).shape[1]))

    @classmethod
    def from_params(cls, params, **_: object) -> Zeros:
        return cls()


@pytest.fixture
def registered():
    register_aggregator(CoordinateMidrange)
    register_attack(Zeros)
    yield
    AGGREGATORS.pop("midrange", None)
    ATTACKS.pop("zeros", None)


def test_a_registered_rule_and_attack_run_from_a_config(registered, tmp_path):
    cfg = load_config(
        "paper",
        ['consensus.aggregator="midrange"', 'security.attacks=["zeros"]', "run.rounds=2",
         "training.nodes=12", "scheduling.participants=4", f'run.out_dir="{tmp_path}"'],
    )  # fmt: skip
    rows = run(cfg, progress=False).metrics
    assert len(rows) == 2 and all(np.isfinite(r["train_loss"]) for r in rows)


def test_names_not_registered_are_one_line_config_errors():
    with pytest.raises(
        ConfigError, match="consensus.aggregator: aggregator 'midrange' is unknown; allowed: one of"
    ):
        load_config("quick", ['consensus.aggregator="midrange"'])
    with pytest.raises(ConfigError, match="security.attacks: attack 'zeros' is unknown"):
        load_config("quick", ['security.attacks=["zeros"]'])


def test_a_taken_name_cannot_be_registered_twice(registered):
    @dataclass(frozen=True)
    class Other:
        name: ClassVar[str] = "midrange"

        def __call__(self, updates, weights=None):
            return np.mean(updates, axis=0)

    with pytest.raises(ValidationError, match="already registered"):
        register_aggregator(Other)
    register_aggregator(CoordinateMidrange)  # the same class again is fine
