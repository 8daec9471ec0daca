"""Issue 11, item 3 (a fair headline): ALIE in its network-wide form inside a broker run, random selection with
on-demand generation, and CEAS without authentication."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.config import load_config


def test_the_broker_gives_alie_the_whole_federation():
    """Paper preset: 10 of 50 Byzantine -> z = Phi^-1(0.68) = 0.4677 whatever the round seats (Baruch et al.)."""
    from ceas.broker.setup import build_context

    ctx = build_context(load_config("paper", ["run.rounds=1"]))
    alie = ctx.adversary.attacks[0]
    assert alie.name == "alie" and alie.network == (50, 10)
    honest = np.random.default_rng(0).normal(size=(9, 3))
    np.testing.assert_allclose(
        alie(honest, 1, np.random.default_rng(0))[0],
        honest.mean(0) - 0.4676988 * honest.std(0),
        atol=1e-6,
    )
    by_round = build_context(
        load_config("paper", ["run.rounds=1", 'security.attack_params.alie.alie_form="round"'])
    ).adversary.attacks[0]
    assert by_round.network is None
    np.testing.assert_allclose(by_round(honest, 1, np.random.default_rng(0))[0], honest.mean(0))
