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


def _rows(overrides, tmp_path):
    from ceas.experiment.runner import run

    cfg = load_config(
        "paper",
        [
            "run.rounds=4",
            "training.nodes=20",
            "scheduling.participants=4",
            "security.byzantine_fraction=0",
            "security.attacks=[]",
            f'run.out_dir="{tmp_path}"',
            *overrides,
        ],
    )
    return run(cfg, progress=False, overwrite=True, plots=False).metrics


def test_random_selection_with_on_demand_generation(tmp_path):
    """Same participants (the policy draws them the same way), but no link generates beyond its requests: the
    pairs made are about the pairs used, instead of 20 links generating all round."""
    from ceas.scheduling.params import SchedulingParams
    from ceas.scheduling.registry import make_policy

    always = _rows(['scheduling.policy="random"'], tmp_path / "a")
    on_demand = _rows(
        ['scheduling.policy="random"', 'scheduling.policy_params.generation="on-demand"'],
        tmp_path / "b",
    )
    # measured: 14,194 pairs in round 0 against 553; utilisation 0.038 against 0.947 after 4 rounds
    assert all(b["pairs_generated"] * 10 < a["pairs_generated"] for a, b in zip(always, on_demand))
    assert on_demand[-1]["utilisation"] > 0.8 and always[-1]["utilisation"] < 0.2
    # the policy draws the participants the same way (learning differs only through the pairs' ages at use)
    for key in ("participants", "byzantine_participants"):
        assert [r[key] for r in always] == [r[key] for r in on_demand]
    policy = make_policy(
        "random", SchedulingParams(policy="random", policy_params={"generation": "on-demand"})
    )
    assert policy.generation == "on-demand"
    assert make_policy("random", SchedulingParams(policy="random")).generation == "continuous"
    from ceas.errors import CeasError

    with pytest.raises(CeasError, match="generation"):
        load_config(
            "paper",
            ['scheduling.policy="random"', 'scheduling.policy_params.generation="sometimes"'],
        )
    with pytest.raises(CeasError, match="generation"):
        load_config(
            "paper", ['scheduling.policy_params.generation="on-demand"']
        )  # ceas takes no such key


def test_ceas_without_authentication_lets_injections_take_seats(tmp_path):
    """Paper preset, 30 rounds, forgery: with tags checked every injection is rejected; without, injections that
    name a seated node replace its reply (measured 224 of 300 accepted, aggregate MSE 1.2e-3 -> 3.1e-3)."""
    from ceas.broker.round import BrokerTrainer

    def run(auth):
        cfg = load_config(
            "paper",
            [
                "run.rounds=6",
                'security.attacks=["forgery"]',
                f"security.authentication={auth}",
                f'run.out_dir="{tmp_path}"',
            ],
        )
        trainer = BrokerTrainer(cfg)
        theta, opt = trainer.initial_parameters(), trainer.make_optimizer()
        out = []
        for t in range(cfg.run.rounds):
            res = trainer.run_round(t, theta, opt)
            theta = res.theta
            out.append(res.metrics)
        return out, theta

    on, theta_on = run("true")
    off, theta_off = run("false")
    assert all(r["rejected_injected"] == 10 for r in on)  # 10 Byzantine nodes, one forgery each
    assert sum(r["rejected_injected"] for r in off) < sum(r["rejected_injected"] for r in on)
    assert not np.array_equal(theta_on, theta_off)
    # same network, schedule and key economy: only what the broker accepted differs
    assert [r["participants"] for r in on] == [r["participants"] for r in off]
    assert [r["key_bits"] for r in on] == [r["key_bits"] for r in off]


def test_authentication_off_is_refused_where_it_means_nothing():
    from ceas.errors import CeasError

    for extra, needs in (
        (["security.byzantine_fraction=0", "security.attacks=[]"], "byzantine_fraction = 0"),
        (["consensus.trusted_broker=false"], "trusted_broker = false"),
        (
            ["broker.enabled=false", "security.byzantine_fraction=0", "security.attacks=[]"],
            "broker.enabled",
        ),
    ):
        with pytest.raises(
            CeasError, match=f"security.authentication: False is not allowed with .*{needs}"
        ):
            load_config("paper", ["security.authentication=false", *extra])
