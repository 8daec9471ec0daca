"""Gradient attacks see the round (issue 12, item 5): the round index and the Byzantine nodes seated, and may abstain.

A plugin attack that behaves honestly for three rounds and then strikes reads ``context.round``, so a resumed run
strikes in the same rounds as an unbroken one (an attack counting its own calls would restart at zero).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from pydantic import BaseModel, Field

from ceas.security import check_attack
from ceas.security.attacks import (
    ATTACKS,
    CoordinatedAttack,
    RoundContext,
    SignFlip,
    register_attack,
)

SEEN: list[
    tuple[int, tuple[int, ...]]
] = []  # (round, Byzantine ids seated) of every call, for the tests
CRASH_AT: list[
    int
] = []  # a round at which the attack raises KeyboardInterrupt once (a kill in the middle)


@dataclass(frozen=True)
class StrikeAfter:
    """Honest (abstains) before round ``start``, then sends -scale * mean of the honest updates."""

    start: int = 3
    scale: float = 5.0
    name: ClassVar[str] = "strike-after"
    surface: ClassVar[str] = "gradient"

    class Params(BaseModel):
        start: int = Field(3, ge=0, description="first round of the strike")
        scale: float = Field(5.0, gt=0, description="the strike sends -scale * honest mean")

    def __call__(self, honest, f, rng, *, context: RoundContext | None = None):
        if context is not None:
            SEEN.append((context.round, tuple(int(k) for k in context.byzantine)))
            if CRASH_AT and context.round == CRASH_AT[0]:
                CRASH_AT.clear()
                raise KeyboardInterrupt
            if context.round < self.start:
                return None
        return np.tile(-self.scale * np.asarray(honest).mean(axis=0), (f, 1))

    @classmethod
    def from_params(cls, params, **_):
        return cls(params.start, params.scale)


@pytest.fixture
def strike_after():
    ATTACKS.names()  # built-ins loaded before the snapshot
    saved = dict(ATTACKS)
    register_attack(StrikeAfter)
    SEEN.clear()
    yield
    ATTACKS.clear()
    ATTACKS.update(saved)
    SEEN.clear()
    CRASH_AT.clear()


def test_strike_after_passes_check_attack():
    check_attack(StrikeAfter())


def test_coordinated_attack_passes_the_round_and_each_share_its_own_nodes():
    honest = np.arange(12.0).reshape(3, 4)
    own = -np.ones((5, 4))
    adversary = CoordinatedAttack((StrikeAfter(start=3), SignFlip()))
    SEEN.clear()
    ctx = RoundContext(
        round=1, byzantine=np.array([7, 8, 9, 11, 12]), participants=np.arange(20), own=own
    )
    early = adversary.updates(honest, 5, np.random.default_rng(0), context=ctx)
    assert SEEN == [(1, (7, 8, 9))]  # its share: the first three Byzantine nodes, split in order
    np.testing.assert_array_equal(
        early[:3], own[:3]
    )  # abstained: its nodes send their own gradients
    np.testing.assert_array_equal(
        early[3:], np.tile(-honest.mean(axis=0), (2, 1))
    )  # sign flip is context-free
    late = adversary.updates(
        honest,
        5,
        np.random.default_rng(0),
        context=RoundContext(5, ctx.byzantine, ctx.participants, own),
    )
    np.testing.assert_array_equal(late[:3], np.tile(-5.0 * honest.mean(axis=0), (3, 1)))
    # every composed attack abstains -> None (the broker leaves the honest gradients in place)
    assert (
        CoordinatedAttack((StrikeAfter(),)).updates(
            honest, 2, np.random.default_rng(0), context=ctx
        )
        is None
    )
    # without context (a caller of the old interface) the attack is called as before
    np.testing.assert_array_equal(
        CoordinatedAttack((StrikeAfter(),)).updates(honest, 2, np.random.default_rng(0)),
        np.tile(-5.0 * honest.mean(axis=0), (2, 1)),
    )


TINY = ["training.nodes=10", "scheduling.participants=6", "training.batch_size=4", "training.shots=16",
        "model.n_qubits=2", "model.n_layers=1", "security.byzantine_fraction=0.3", "run.rounds=6",
        "run.checkpoint_every=1"]  # fmt: skip


def _cfg(tmp_path, name, attacks):
    from ceas.config import load_config

    return load_config(
        "paper",
        [
            *TINY,
            f"run.out_dir={json.dumps(str(tmp_path))}",
            f"run.name={name}",
            f"security.attacks={json.dumps(attacks)}",
        ],
    )


def test_honest_for_three_rounds_then_strike_survives_a_resume(tmp_path, strike_after):
    from ceas.experiment import store
    from ceas.experiment.runner import run

    quiet = run(_cfg(tmp_path, "none", []), progress=False, plots=False)
    unbroken_cfg = _cfg(tmp_path, "unbroken", ["strike-after"])
    unbroken = run(unbroken_cfg, progress=False, plots=False)
    seen = dict(SEEN)
    assert sorted(seen) == list(range(6))  # Byzantine nodes were seated in every round of this seed
    from ceas.broker.round import BrokerTrainer

    byzantine = set(np.flatnonzero(BrokerTrainer(unbroken_cfg).ctx.is_byzantine).tolist())
    assert all(set(ids) <= byzantine for ids in seen.values())
    # honest before round 3: the metrics (loss measured before each round's step) equal the run without any attack
    # through round 3; the strike of round 3 shows from round 4 on
    loss = [r["train_loss"] for r in unbroken.metrics]
    assert loss[:4] == [r["train_loss"] for r in quiet.metrics][:4]
    assert loss[4] != quiet.metrics[4]["train_loss"]

    # a run killed in round 2 (after its checkpoint at round 2) and resumed strikes in the same rounds
    CRASH_AT.append(2)
    SEEN.clear()
    cfg = _cfg(tmp_path, "resumed", ["strike-after"])
    with pytest.raises(KeyboardInterrupt):
        run(cfg, progress=False, plots=False)
    resumed = run(cfg, resume=True, progress=False, plots=False)
    assert resumed.summary["resumed_from_round"] == 2
    assert resumed.metrics == unbroken.metrics
    want = store.read_metrics(unbroken.run_dir / store.METRICS)
    assert store.read_metrics(resumed.run_dir / store.METRICS) == want
