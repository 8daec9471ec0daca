"""Norm bounding before the robust rule, and the tighter stamp references the broker derives (issue 6)."""

from __future__ import annotations

import numpy as np
import pytest

from ceas.consensus.robust import FidelityWeightedAggregation
from ceas.consensus.stamps import tighten_claims


def test_bound_norms_caps_rows_at_the_median_norm_and_leaves_the_rest():
    from ceas.consensus.robust import bound_norms

    x = np.array(
        [[3.0, 4.0], [0.0, 1.0], [0.0, 2.0], [60.0, 80.0], [1.0, 0.0]]
    )  # norms 5, 1, 2, 100, 1
    y = bound_norms(x)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), [2.0, 1.0, 2.0, 2.0, 1.0])
    np.testing.assert_allclose(y[3], [1.2, 1.6])  # direction kept
    np.testing.assert_array_equal(y[[1, 2, 4]], x[[1, 2, 4]])
    assert bound_norms(np.zeros((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("seed", range(5))
def test_norm_bound_keeps_the_step_within_the_honest_norms_under_huge_byzantine_rows(seed):
    from ceas.consensus.aggregators import Mean

    rng = np.random.default_rng(seed)
    honest = rng.normal(0.3, 0.2, size=(6, 8))
    byz = rng.normal(0, 1, size=(4, 8)) * 1e6  # f = 4 < n/2 = 5
    x = np.vstack([honest, byz])
    plain = FidelityWeightedAggregation(Mean(), weighting=False).aggregate(x).update
    bounded = FidelityWeightedAggregation(Mean(), weighting=False, norm_bound=True)
    step = bounded.aggregate(x).update
    assert np.linalg.norm(plain) > 1e4
    assert np.linalg.norm(step) <= np.linalg.norm(honest, axis=1).max() + 1e-12
    # what the adaptive attacker simulates is the same reduction
    np.testing.assert_allclose(bounded.as_rule()(x), step)


def test_tighten_claims_caps_fidelity_at_the_ledger_and_qfi_at_the_median_ratio():
    measured = np.array([0.93, 0.95, 0.90])
    bound = np.array([0.99, 1.0, 0.97])
    qfi_max = np.array([10.0, 20.0, 40.0])
    claims = np.array([9.0, 20.0, 36.0])  # ratios 0.9, 1.0 (claims its bound), 0.9
    m, b, cap = tighten_claims(
        measured, bound, qfi_max, claims, ledger_fidelity=np.array([0.95, 0.94, 0.95])
    )
    np.testing.assert_allclose(m, [0.93, 0.94, 0.90])
    np.testing.assert_allclose(b, [0.95, 0.94, 0.95])
    np.testing.assert_allclose(
        cap, [9.0, 18.0, 36.0]
    )  # the node claiming its bound is worth the median ratio
    assert np.all(m <= b)
    # without a ledger the fidelity references are untouched
    m2, b2, _ = tighten_claims(measured, bound, qfi_max, claims)
    np.testing.assert_array_equal(m2, measured)
    np.testing.assert_array_equal(b2, bound)


def test_a_bound_claiming_node_gains_no_weight_over_honest_peers_after_tightening():
    from ceas.consensus.stamps import FidelityStamp, verify_stamps

    qfi_max = np.full(5, 10.0)
    claims = np.array([9.0, 9.1, 8.9, 9.0, 10.0])  # the last one claims its bound and F = 1
    fid = np.array([0.95, 0.95, 0.95, 0.95, 1.0])
    stamps = [
        FidelityStamp(node=k, round=0, phi=float(512 * claims[k] * ((4 * fid[k] - 1) / 3) ** 2),
                      qfi=float(claims[k]), fidelity=float(fid[k]), shots=512, nonce=bytes(8))
        for k in range(5)
    ]  # fmt: skip
    m, b, cap = tighten_claims(
        np.full(5, 0.95), np.full(5, 1.0), qfi_max, claims, ledger_fidelity=np.full(5, 0.95)
    )
    phi = verify_stamps(stamps, m, b, cap, assigned_shots=512, current_round=0).phi
    assert phi[4] <= phi[:4].max() + 1e-9
    loose = verify_stamps(
        stamps, np.full(5, 0.95), np.full(5, 1.0), qfi_max, assigned_shots=512
    ).phi
    assert loose[4] > 1.2 * loose[:4].max()  # what the SPEC bounds alone let it gain
