"""The adversary (Definition 4): each attack's formula on hand-checked inputs, composition, registry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from security_helpers import StubKeyPool

from ceas.errors import UnknownNameError, ValidationError
from ceas.security.attacks import (
    ALIE,
    ATTACKS,
    IPM,
    Adaptive,
    ChannelView,
    CoordinatedAttack,
    Equivocation,
    Forgery,
    Gaussian,
    Impersonation,
    LabelFlip,
    PairHoarding,
    Replay,
    ScaledNegativeMean,
    SignFlip,
    StampClaims,
    StampInflation,
    alie_z,
    choose_byzantine,
    make_adversary,
    make_attack,
)
from ceas.security.checks import check_attack
from ceas.security.mac import OneTimeMac
from ceas.security.messages import Reason, Signer, Verifier

# Honest updates whose mean and population std are easy by hand: mu = (3, 6), sigma = (sqrt(8/3), sqrt(32/3)).
HONEST = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]])
MU = np.array([3.0, 6.0])
SIGMA = np.array([np.sqrt(8 / 3), np.sqrt(32 / 3)])


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_sign_flip_scaled_negative_mean_and_ipm():
    np.testing.assert_array_equal(SignFlip()(HONEST, 2, rng()), [[-3, -6], [-3, -6]])
    np.testing.assert_array_equal(ScaledNegativeMean(10.0)(HONEST, 1, rng()), [[-30, -60]])
    np.testing.assert_allclose(IPM(0.1)(HONEST, 3, rng()), [[-0.3, -0.6]] * 3)
    assert SignFlip()(HONEST, 0, rng()).shape == (0, 2)


def test_ipm_turns_the_mean_against_the_honest_direction_past_eps_h_over_f():
    """<mean(H ∪ B), mu> = (h - f eps)/(h + f) |mu|^2: positive at eps = 0.1, negative at eps > h/f."""
    h, f = 3, 2
    for eps, sign in [(0.1, 1), (2.0, -1)]:
        agg = np.vstack([HONEST, IPM(eps)(HONEST, f, rng())]).mean(axis=0)
        expected = (h - f * eps) / (h + f) * MU @ MU
        assert agg @ MU == pytest.approx(expected)
        assert np.sign(agg @ MU) == sign


def test_alie_formula_and_z_from_n_and_f():
    np.testing.assert_allclose(ALIE(z=1.5)(HONEST, 2, rng()), [MU - 1.5 * SIGMA] * 2)
    np.testing.assert_allclose(ALIE(z=1.5)(HONEST, 1, rng()), [[0.5505103, 1.1010205]], atol=1e-7)
    # n = 3 + 2 = 5: s = floor(5/2 + 1) - 2 = 1, z = Phi^-1(4/5) = 0.8416212
    np.testing.assert_allclose(ALIE()(HONEST, 2, rng()), [MU - 0.8416212 * SIGMA] * 2, atol=1e-6)
    assert alie_z(50, 10) == pytest.approx(0.4676988, abs=1e-7)  # s = 16, Phi^-1(0.68)
    assert alie_z(50, 20) == pytest.approx(1.1749868, abs=1e-7)  # s = 6, Phi^-1(0.88)
    with pytest.raises(
        ValidationError,
        match=r"ALIE needs 0 < s = floor\(n/2 \+ 1\) - f < n, got s = 0 for n = 10 nodes and f = 6 Byzantine",
    ):
        alie_z(10, 6)


def test_alie_network_form_takes_z_from_the_whole_federation():
    """Baruch et al.: N = 50, f = 10 -> s = floor(26) - 10 = 16, z = Phi^-1(34/50 = 0.68) = 0.4676988, whatever
    the round seats; the round form with m = 10 participants gives s = 6 - 1 = 5, z = Phi^-1(0.5) = 0 for one
    Byzantine node seated and s = 4, z = Phi^-1(0.6) = 0.2533471 for two."""
    network = make_attack("alie", None, network=(50, 10))
    assert network.network == (50, 10) and network.z is None
    for f, h in ((1, 9), (2, 8), (3, 7)):
        honest = rng(f).normal(size=(h, 4))
        mu, sigma = honest.mean(0), honest.std(0)
        np.testing.assert_allclose(network(honest, f, rng()), [mu - 0.4676988 * sigma] * f, atol=1e-6)
    honest = rng(1).normal(size=(9, 4))
    by_round = make_attack("alie", {"alie_form": "round"}, network=(50, 10))
    np.testing.assert_allclose(by_round(honest, 1, rng()), [honest.mean(0)], atol=1e-12)  # z = 0
    honest = rng(2).normal(size=(8, 4))
    np.testing.assert_allclose(
        by_round(honest, 2, rng()), [honest.mean(0) - 0.2533471 * honest.std(0)] * 2, atol=1e-6
    )
    # a given z wins over either form
    np.testing.assert_allclose(
        make_attack("alie", {"alie_z": 2.0}, network=(50, 10))(HONEST, 1, rng()), [MU - 2 * SIGMA]
    )
    # the network form is the default and cannot guess the federation
    with pytest.raises(ValidationError, match=r"alie_form = 'network' needs the network's size"):
        make_attack("alie")
    with pytest.raises(ValidationError, match=r"got s = 0 for n = 10 nodes and f = 6"):
        ALIE(network=(10, 6))
    # a network without Byzantine nodes (2 nodes at 20 %: f = 0) builds it; it never runs there
    assert ALIE(network=(2, 0))(HONEST, 0, rng()).shape == (0, 2)


def test_gaussian_draws_from_the_given_generator():
    out = Gaussian(0.5, 2.0)(HONEST, 4, rng(9))
    np.testing.assert_array_equal(out, rng(9).normal(0.5, 2.0, size=(4, 2)))
    many = Gaussian(0.5, 2.0)(np.zeros((2, 3)), 20_000, rng(1))
    assert abs(many.mean() - 0.5) < 5 * 2.0 / np.sqrt(many.size)
    assert abs(many.std() - 2.0) < 5 * 2.0 / np.sqrt(2 * many.size)
    assert not np.array_equal(Gaussian()(HONEST, 4, rng(1)), Gaussian()(HONEST, 4, rng(2)))


def test_label_flip():
    np.testing.assert_array_equal(
        LabelFlip().poison(np.array([0, 1, 2, 1]), 3, rng()), [2, 1, 0, 1]
    )
    np.testing.assert_array_equal(LabelFlip().poison(np.array([0, 1, 1]), 2, rng()), [1, 0, 0])
    with pytest.raises(ValidationError, match=r"labels must be integers in \[0, 2\)"):
        LabelFlip().poison(np.array([0, 2]), 2, rng())


@settings(max_examples=50, deadline=None)
@given(
    st.integers(2, 10).flatmap(
        lambda c: st.tuples(st.just(c), st.lists(st.integers(0, c - 1), max_size=30))
    )
)
def test_label_flip_is_an_involution_without_fixed_points_for_even_c(case):
    c, labels = case
    y = np.array(labels, dtype=int)
    once = LabelFlip().poison(y, c, rng())
    np.testing.assert_array_equal(LabelFlip().poison(once, c, rng()), y)
    if c % 2 == 0:
        assert np.all(once != y)


def test_stamp_inflation_and_pair_hoarding():
    claims = StampInflation(qfi=1.0).claim(StampClaims(np.array([0.8, 0.9]), np.array([0.3, 0.2])))
    np.testing.assert_array_equal(claims.fidelity, [1.0, 1.0])
    np.testing.assert_array_equal(claims.qfi, [1.0, 1.0])
    np.testing.assert_array_equal(PairHoarding(4.0).demand(np.array([3, 0, 5])), [12, 0, 20])
    np.testing.assert_array_equal(PairHoarding(1.5).demand(np.array([3])), [5])  # ceil(4.5)


def test_equivocation_sends_different_updates_to_different_receivers():
    out = Equivocation(SignFlip(), 0.5)(HONEST, 2, 4, rng(3))
    assert out.shape == (4, 2, 2)
    targeted = [np.array_equal(r, [-MU, -MU]) for r in out]
    spared = [np.array_equal(r, [MU, MU]) for r in out]
    assert sum(targeted) == 2 and sum(spared) == 2
    np.testing.assert_array_equal(out, Equivocation(SignFlip(), 0.5)(HONEST, 2, 4, rng(3)))
    # Even an extreme split keeps at least one receiver on each side.
    two = Equivocation(SignFlip(), 0.99)(HONEST, 1, 2, rng(0))
    assert {tuple(two[0, 0]), tuple(two[1, 0])} == {(3.0, 6.0), (-3.0, -6.0)}


def mean_rule(updates: np.ndarray) -> np.ndarray:
    return updates.mean(axis=0)


def krum(f: int):
    """Krum (Blanchard et al. 2017), written here so the attack is tested against an independent rule."""

    def rule(updates: np.ndarray) -> np.ndarray:
        n = len(updates)
        d2 = ((updates[:, None, :] - updates[None, :, :]) ** 2).sum(-1)
        scores = np.sort(d2, axis=1)[:, 1 : n - f - 1].sum(axis=1)
        return updates[np.argmin(scores)]

    return rule


def test_adaptive_against_the_mean_uses_the_largest_scale():
    """For the mean, damage = f gamma / (h + f) exactly, so the search must pick gamma_max."""
    attack = Adaptive(mean_rule, "unit", gamma_max=64.0, steps=8)
    gammas, damage = attack.damage(HONEST, 2)
    np.testing.assert_allclose(gammas, 64.0 * 2.0 ** -np.arange(8))
    np.testing.assert_allclose(damage, 2 * gammas / 5, rtol=1e-12)
    out = attack(HONEST, 2, rng())
    np.testing.assert_allclose(out, [MU - 64.0 * MU / np.linalg.norm(MU)] * 2)


def test_adaptive_against_krum_stays_inside_the_rule_acceptance():
    honest = np.random.default_rng(7).normal(loc=1.0, scale=1.0, size=(12, 5))
    f = 4
    rule = krum(f)
    attack = Adaptive(rule, "unit", gamma_max=100.0, steps=24)
    gammas, damage = attack.damage(honest, f)
    star = attack.scale(honest, f)
    assert star < 100.0
    # gamma* is the best scale tried, and beats gamma_max, at which Krum discards the vector.
    assert damage.max() == damage[gammas == star][0] > damage[0]
    byz = attack(honest, f, rng())
    chosen = rule(np.vstack([honest, byz]))
    np.testing.assert_array_equal(chosen, byz[0])  # Krum selects the malicious vector
    assert not np.array_equal(rule(np.vstack([honest, byz + 4 * (byz - honest.mean(0))])), byz[0])


def test_adaptive_directions():
    assert np.allclose(Adaptive(mean_rule, "sign").perturbation(HONEST), [-1, -1])
    assert np.allclose(Adaptive(mean_rule, "std").perturbation(HONEST), -SIGMA)
    with pytest.raises(ValidationError, match="needs the aggregation rule as a callable"):
        Adaptive("median")


def test_registry_matches_the_config_names_and_every_attack_passes_the_checker():
    for name in ATTACKS.names():
        attack = make_attack(name, None, aggregator=mean_rule, network=(50, 10))
        assert attack.name == name
        check_attack(attack)


def test_make_attack_uses_the_hyperparameters():
    snm = make_attack("scaled-negative-mean", {"negative_scale": 3.0})
    np.testing.assert_allclose(snm(HONEST, 1, rng()), [-3 * MU])
    np.testing.assert_allclose(
        make_attack("ipm", {"ipm_epsilon": 0.5})(HONEST, 1, rng()), [-0.5 * MU]
    )
    np.testing.assert_allclose(
        make_attack("alie", {"alie_z": 2.0})(HONEST, 1, rng()), [MU - 2 * SIGMA]
    )
    hoard = make_attack("pair-hoarding", {"hoarding_multiplier": 2.0})
    np.testing.assert_array_equal(hoard.demand(np.array([2])), [4])
    inner = make_attack("equivocation", {"equivocation_inner": "ipm"}).inner
    assert (
        isinstance(inner, IPM) and inner.epsilon == 0.1
    )  # the inner attack keeps its own defaults
    with pytest.raises(
        ValueError, match="security.attack_params.ipm.negative_scale: unknown key; attack 'ipm'"
    ):
        make_attack("ipm", {"negative_scale": 3.0})


def test_unknown_names_suggest_the_closest():
    with pytest.raises(UnknownNameError) as caught:
        make_attack("sign-flp")
    assert str(caught.value).startswith(
        "attack 'sign-flp' is unknown (did you mean 'sign-flip'?); allowed: one of adaptive, alie"
    )
    with pytest.raises(
        ValidationError,
        match=r"attack 'adaptive' needs the aggregation rule: pass aggregator=callable \(n, d\) -> \(d,\)",
    ):
        make_attack("adaptive")


def test_coordinated_attack_splits_byzantine_nodes_and_composes_surfaces():
    adversary = make_adversary(
        ["alie", "sign-flip", "stamp-inflation", "label-flip", "pair-hoarding"],
        {"alie": {"alie_form": "round"}},
    )
    assert adversary.names == (
        "alie",
        "sign-flip",
        "stamp-inflation",
        "label-flip",
        "pair-hoarding",
    )
    out = adversary.updates(HONEST, 5, rng())
    assert out.shape == (5, 2)
    # array_split gives ALIE 3 nodes and sign-flip 2; ALIE's z uses its own share (n = 3 + 3).
    np.testing.assert_allclose(out[:3], ALIE()(HONEST, 3, rng()))
    np.testing.assert_array_equal(out[3:], [-MU, -MU])
    assert adversary.claims(StampClaims(np.array([0.9]), np.array([0.1]))).fidelity[0] == 1.0
    np.testing.assert_array_equal(adversary.poison_labels(np.array([0, 1]), 2, rng()), [1, 0])
    np.testing.assert_array_equal(adversary.demand(np.array([10])), [40])
    assert adversary.equivocate(HONEST, 2, 3, rng()) is None
    assert adversary.inject(ChannelView(0, (), (), (0,), (1,)), rng()) == []
    honest_only = CoordinatedAttack()
    assert honest_only.updates(HONEST, 2, rng()) is None
    assert honest_only.demand(np.array([7]))[0] == 7
    with pytest.raises(ValidationError, match="attack names must be a list of names"):
        make_adversary("alie")


def test_choose_byzantine():
    ids = choose_byzantine(50, 0.2, rng(4))
    assert ids.shape == (10,) and len(set(ids)) == 10 and np.all(np.diff(ids) > 0)
    assert ids.min() >= 0 and ids.max() < 50
    np.testing.assert_array_equal(ids, choose_byzantine(50, 0.2, rng(4)))
    assert choose_byzantine(50, 0.0, rng()).shape == (0,)
    with pytest.raises(ValidationError, match=r"byzantine fraction must be in \[0, 0.5\), got 0.5"):
        choose_byzantine(50, 0.5, rng())


def test_channel_attacks_are_all_rejected_by_the_verifier():
    """Rounds 0 and 1 of 6 nodes (nodes 4, 5 Byzantine); 40 injections per attack per round, none accepted."""
    n_nodes = 6
    macs = {k: OneTimeMac(StubKeyPool(4096, seed=k)) for k in range(n_nodes)}
    signers = {k: Signer(k, mac) for k, mac in macs.items()}
    verifier = Verifier(macs)
    honest_nodes, byzantine = (0, 1, 2, 3), (4, 5)
    history: tuple[bytes, ...] = ()
    seen: dict[str, set[Reason]] = {"replay": set(), "forgery": set(), "impersonation": set()}
    for rnd in range(2):
        wires = tuple(signers[k].sign(rnd, b"stamp", np.full(3, float(k))) for k in range(n_nodes))
        assert all(v.accepted for v in verifier.verify_many(wires, round=rnd))
        view = ChannelView(rnd, wires, history, honest_nodes, byzantine)
        for attack in (Replay(20), Forgery(20), Impersonation(20)):
            injected = attack.inject(view, rng(rnd))
            assert len(injected) == 40
            verdicts = verifier.verify_many(injected, round=rnd)
            assert not any(v.accepted for v in verdicts)
            seen[attack.name] |= {v.reason for v in verdicts}
        history += wires
    assert seen["replay"] == {Reason.REPLAY, Reason.STALE_ROUND}
    assert seen["forgery"] <= {Reason.BAD_TAG, Reason.REPLAY} and Reason.BAD_TAG in seen["forgery"]
    assert seen["impersonation"] <= {Reason.BAD_TAG, Reason.REPLAY}


def test_impersonation_readdresses_a_byzantine_message():
    macs = {k: OneTimeMac(StubKeyPool(64, seed=k)) for k in range(3)}
    wire = Signer(2, macs[2]).sign(0, b"s", b"p")
    (fake,) = Impersonation(1).inject(ChannelView(0, (wire,), (), (0, 1), (2,)), rng())
    assert fake[:9] == wire[:9] and fake[13:] == wire[13:]  # same bytes but the node id field
    assert int.from_bytes(fake[9:13], "big") in (0, 1)


def test_alie_with_byzantine_majority_uses_the_largest_scale():
    """A round where f >= floor(n/2 + 1) (possible under random selection) must not crash: z = Phi^-1((n-1)/n)."""
    import numpy as np
    from scipy import stats

    from ceas.security.attacks import ALIE

    honest = np.array([[1.0, 0.0], [3.0, 2.0], [2.0, 1.0], [2.0, 1.0]])
    out = ALIE()(honest, 6, np.random.default_rng(0))
    z = stats.norm.ppf(9 / 10)
    np.testing.assert_allclose(out, np.tile(honest.mean(0) - z * honest.std(0), (6, 1)))
