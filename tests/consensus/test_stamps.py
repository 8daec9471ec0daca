"""Fidelity stamps (Definition 1): weight formula, QFI noise bound, verification and weight caps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm

from ceas.consensus.stamps import (
    FidelityStamp,
    StampIssue,
    cap_weights,
    qfi_noise_bound,
    stamp_weight,
    verify_stamp,
    verify_stamps,
)
from ceas.errors import ValidationError
from ceas.network import werner
from ceas.network.werner import werner_from_fidelity as visibility


def stamp(**kw):
    base = {"node": 1, "round": 5, "phi": 100.0, "qfi": 0.5, "fidelity": 0.9, "shots": 512}
    base["nonce"] = b"\x01" * 16
    base.update(kw)
    return FidelityStamp(**base)


# -- closed forms -------------------------------------------------------------------------------------------------


def test_the_stamp_formulas_are_the_network_layers_not_a_copy():
    import ceas.consensus

    assert ceas.consensus.stamp_weight is werner.stamp_weight
    assert not hasattr(
        ceas.consensus, "visibility"
    )  # one name for v = (4F - 1)/3: werner_from_fidelity


def test_visibility_closed_form_and_endpoints():
    assert visibility(1.0) == 1.0
    assert visibility(0.25) == 0.0
    np.testing.assert_allclose(visibility(np.array([0.85, 0.7])), [0.8, 0.6], rtol=0, atol=1e-15)


def test_visibility_rejects_unphysical_fidelity():
    with pytest.raises(ValidationError, match=r"fidelity must be in \[0.25, 1\], got 1.3"):
        visibility(1.3)


def test_stamp_weight_is_shots_times_qfi_times_visibility_squared():
    assert stamp_weight(512, 0.5, 0.8) == pytest.approx(512 * 0.5 * 0.64, rel=1e-15)
    phi = stamp_weight(np.array([64, 128]), np.array([1.0, 0.25]), np.array([0.5, 1.0]))
    np.testing.assert_allclose(phi, [16.0, 32.0], rtol=1e-15)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 0.5, 0.8), r"shots must be in \[1, inf\), got 0"),
        ((64, -0.1, 0.8), r"qfi must be in \[0, inf\), got -0.1"),
        ((64, 0.5, 1.2), r"visibility must be in \[0, 1\], got 1.2"),
    ],
)
def test_stamp_weight_rejects_impossible_parts(args, message):
    with pytest.raises(ValidationError, match=message):
        stamp_weight(*args)


def _mixed_qfi(n_qubits: int, q: float, rng: np.random.Generator) -> tuple[float, float]:
    """QFI of a rotation angle on a random pure state and on its depolarised mixture, by the SLD formula."""
    d = 2**n_qubits
    psi0 = rng.normal(size=d) + 1j * rng.normal(size=d)
    psi0 /= np.linalg.norm(psi0)
    y = np.array([[0, -1j], [1j, 0]])
    gen = np.kron(y, np.eye(d // 2)) / 2  # RY on qubit 0: generator Y/2
    h = 1e-6

    def rho(theta):
        psi = expm(-1j * theta * gen) @ psi0
        return (1 - q) * np.outer(psi, psi.conj()) + q * np.eye(d) / d

    drho = (rho(h) - rho(-h)) / (2 * h)
    lam, vec = np.linalg.eigh(rho(0.0))
    m = vec.conj().T @ drho @ vec
    denom = lam[:, None] + lam[None, :]
    mask = denom > 1e-12
    mixed = float(2 * np.sum(np.abs(m[mask]) ** 2 / denom[mask]))
    pure = float(4 * (np.vdot(psi0, gen @ gen @ psi0).real - np.vdot(psi0, gen @ psi0).real ** 2))
    return pure, mixed


@pytest.mark.parametrize("n_qubits,p,layers", [(1, 0.1, 1), (2, 0.05, 4), (3, 0.2, 2)])
def test_qfi_noise_bound_matches_sld_qfi_of_depolarised_state(n_qubits, p, layers):
    """Independent check of the SPEC formula F_Q(rho) = (1-q)^2/((1-q)+2q/d) F_Q(psi) by the SLD eigen-sum."""
    q = 1 - (1 - p) ** layers
    pure, mixed = _mixed_qfi(n_qubits, q, np.random.default_rng(n_qubits))
    assert 0 < pure <= 1 + 1e-12  # the pure-state bound used by qfi_noise_bound
    predicted = qfi_noise_bound(p, layers, n_qubits, pure_qfi_max=pure)
    assert mixed == pytest.approx(predicted, rel=1e-6)


def test_qfi_noise_bound_limits():
    assert qfi_noise_bound(0.0, 4, 4) == 1.0
    assert qfi_noise_bound(1.0, 4, 4) == 0.0
    b = qfi_noise_bound(np.array([0.0, 0.1, 0.2]), 4, 4)
    assert np.all(np.diff(b) < 0)


# -- the stamp itself ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("fidelity", 1.3, "fidelity must be in [0.25, 1], got 1.3"),
        ("fidelity", 0.2, "fidelity must be in [0.25, 1], got 0.2"),
        ("shots", 0, "shots must be an integer in [1, 9223372036854775807], got 0"),
        ("phi", float("nan"), "phi must be in [0, inf), got nan"),
        ("qfi", -1.0, "qfi must be in [0, inf), got -1.0"),
        ("node", -2, "node must be an integer in [0, 4294967295], got -2"),
        ("nonce", b"", "nonce must be bytes of length in [1, 64], got b''"),
    ],
)
def test_stamp_fields_are_validated(field, value, message):
    with pytest.raises(ValidationError) as info:
        stamp(**{field: value})
    assert str(info.value) == message


@settings(max_examples=60, deadline=None)
@given(
    node=st.integers(0, 2**32 - 1),
    rnd=st.integers(0, 2**63 - 1),
    phi=st.floats(0, 1e12),
    qfi=st.floats(0, 10),
    fid=st.floats(0.25, 1.0),
    shots=st.integers(1, 2**40),
    nonce=st.binary(min_size=1, max_size=64),
)
def test_stamp_bytes_round_trip(node, rnd, phi, qfi, fid, shots, nonce):
    s = FidelityStamp(node, rnd, phi, qfi, fid, shots, nonce)
    assert FidelityStamp.from_bytes(s.to_bytes()) == s


def test_malformed_stamp_bytes_are_rejected():
    good = stamp().to_bytes()
    with pytest.raises(
        ValidationError, match="stamp bytes must have length 61 for a 16-byte nonce, got 60"
    ):
        FidelityStamp.from_bytes(good[:-1])
    with pytest.raises(
        ValidationError, match=r"stamp bytes must have length in \[46, 109\], got 10"
    ):
        FidelityStamp.from_bytes(good[:10])
    bad_fid = bytearray(good)
    bad_fid[28:36] = np.float64(1.5).byteswap().tobytes()  # fidelity field, big-endian
    with pytest.raises(ValidationError, match=r"fidelity must be in \[0.25, 1\], got 1.5"):
        FidelityStamp.from_bytes(bytes(bad_fid))


# -- verification -------------------------------------------------------------------------------------------------


def test_stamp_inflation_claiming_perfect_pairs_on_a_085_link_is_capped():
    """Issue 6 acceptance: a node claiming F = 1 on a link measured at 0.85 has its weight capped."""
    s_qfi, shots = 0.6, 512
    liar = stamp(node=7, fidelity=1.0, qfi=s_qfi, shots=shots, phi=stamp_weight(shots, s_qfi, 1.0))
    v = verify_stamp(liar, measured_fidelity=0.85, fidelity_bound=0.88, max_qfi=1.0)
    assert v.fidelity == 0.85
    assert v.phi == pytest.approx(shots * s_qfi * 0.8**2, rel=1e-12)  # v(0.85) = 0.8
    assert v.phi < liar.phi * 0.65
    assert StampIssue.FIDELITY_ABOVE_BOUND in v.issues and v.capped

    # In a round of 10 nodes the liar ends with exactly the weight of an honest node on a 0.85 link.
    honest = [
        stamp(node=k, fidelity=0.85, qfi=s_qfi, shots=shots, phi=shots * s_qfi * 0.64)
        for k in range(9)
    ]
    verified = verify_stamps(honest + [liar], 0.85, 0.88, 1.0)
    w = cap_weights(verified.phi, 2.0)
    np.testing.assert_allclose(w, np.full(10, 0.1), rtol=1e-12)
    # Without verification its claimed phi would have taken 1/0.64 more weight.
    claimed = np.array([s.phi for s in honest + [liar]])
    assert (claimed / claimed.sum())[-1] == pytest.approx(1 / (9 * 0.64 + 1), rel=1e-12)


def test_honest_stamp_within_bound_is_taken_as_claimed():
    s = stamp(fidelity=0.86, qfi=0.4, shots=256, phi=stamp_weight(256, 0.4, visibility(0.86)))
    v = verify_stamp(s, 0.85, 0.88, max_qfi=0.5, assigned_shots=256, current_round=5)
    assert v.issues == () and not v.capped and v.accepted
    assert v.phi == pytest.approx(s.phi, rel=1e-12)


def test_qfi_above_noise_bound_and_extra_shots_are_capped():
    s = stamp(qfi=1.0, shots=4096, fidelity=0.85, phi=1e9)
    v = verify_stamp(s, 0.85, 0.9, max_qfi=0.3, assigned_shots=512)
    assert v.issues == (
        StampIssue.QFI_ABOVE_NOISE_BOUND,
        StampIssue.SHOTS_ABOVE_ASSIGNED,
        StampIssue.PHI_INCONSISTENT,
    )
    assert (v.qfi, v.shots) == (0.3, 512)
    assert v.phi == pytest.approx(512 * 0.3 * 0.64, rel=1e-12)


def test_understated_phi_is_honoured():
    s = stamp(qfi=0.5, shots=100, fidelity=1.0, phi=10.0)  # S F v^2 would be 50
    assert verify_stamp(s, 0.99, 1.0, 1.0).phi == 10.0


@pytest.mark.parametrize("rnd,issue", [(4, StampIssue.STALE_ROUND), (6, StampIssue.FUTURE_ROUND)])
def test_stamps_from_other_rounds_are_rejected(rnd, issue):
    v = verify_stamp(stamp(round=rnd), 0.9, 0.95, 1.0, current_round=5)
    assert not v.accepted and v.phi == 0.0 and v.issues == (issue,)


def test_predicted_mse_stamps_are_capped_by_the_provable_floor_not_by_s_fq_v2():
    """consensus.stamp = 'mse': φ is not S·F_Q·v², so the verifier grants min(claim, cap) with the cap it can prove;
    an infinite cap (nothing provable) keeps the claim; stale rounds are still rejected."""
    claims = [stamp(phi=50.0, round=5), stamp(phi=5000.0, round=5), stamp(phi=50.0, round=4)]
    v = verify_stamps(
        claims, 0.9, 0.95, 1.0, current_round=5, phi_cap=np.array([400.0, 400.0, 400.0])
    )
    np.testing.assert_array_equal(v.phi, [50.0, 400.0, 0.0])
    assert StampIssue.PHI_INCONSISTENT in v.issues[1] and v.issues[0] == ()
    assert not v.accepted[2]
    free = verify_stamps(claims[:2], 0.9, 0.95, 1.0, current_round=5, phi_cap=np.inf)
    np.testing.assert_array_equal(free.phi, [50.0, 5000.0])
    with pytest.raises(ValidationError, match="phi_cap"):
        verify_stamps(claims[:1], 0.9, 0.95, 1.0, phi_cap=np.nan)


def test_a_predicted_mse_claim_above_the_fidelity_bound_is_corrected_to_the_verified_visibility():
    """Payload variance s²(1 − w²z²)/(S_p w²) differs between visibilities by s²/S_p (1/w_v² − 1/w_c²) whatever z:
    a claim made at F = 1 on a link verified at 0.85 keeps 1/(1/φ + k (1/v(0.85)² − 1)), k = s²/S_p."""
    k = 0.25**2 / 4
    v = verify_stamps(
        [stamp(phi=200.0, fidelity=1.0), stamp(phi=200.0, fidelity=0.88)],
        0.85,
        0.9,
        1.0,
        mse_payload=np.array([k, k]),
    )
    want = 1.0 / (1.0 / 200.0 + k * (1.0 / visibility(0.85) ** 2 - 1.0))
    assert v.phi[0] == pytest.approx(want, rel=1e-12) and v.phi[0] < 200.0
    assert StampIssue.FIDELITY_ABOVE_BOUND in v.issues[0]
    assert v.phi[1] == 200.0 and v.issues[1] == ()  # within the bound: taken as claimed


def test_bound_below_measurement_is_an_error():
    with pytest.raises(
        ValidationError, match=r"fidelity_bound must be in \[measured_fidelity, 1\] = \[0.9, 1\]"
    ):
        verify_stamp(stamp(), measured_fidelity=0.9, fidelity_bound=0.85, max_qfi=1.0)


# -- weight caps ----------------------------------------------------------------------------------------------------


def _reference_cap(phi: np.ndarray, c: float) -> np.ndarray:
    """Iterative water-filling, one node at a time (independent of the vectorised closed form)."""
    pos = phi > 0
    cap = c / pos.sum()
    w = np.zeros_like(phi)
    capped = np.zeros_like(pos)
    while True:
        free = pos & ~capped
        mass = 1.0 - cap * capped.sum()
        w[free] = mass * (phi[free] / phi[free].sum())
        w[capped] = cap
        over = free & (w > cap * (1 + 1e-12))
        if not over.any():
            return w
        capped |= over


@settings(max_examples=200, deadline=None)
@given(
    phi=st.lists(st.just(0.0) | st.floats(1e-100, 1e6), min_size=1, max_size=40).filter(
        lambda p: max(p) > 0
    ),
    c=st.floats(1.0, 10.0),
)
def test_cap_weights_properties(phi, c):
    p = np.array(phi)
    w = cap_weights(p, c)
    n_pos = int((p > 0).sum())
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(w <= c / n_pos * (1 + 1e-9))
    assert np.all(w[p == 0] == 0)
    np.testing.assert_allclose(w, _reference_cap(p, c), rtol=1e-9, atol=1e-15)
    # larger phi never gets less weight
    order = np.argsort(p)
    assert np.all(np.diff(w[order]) >= -1e-12)


def test_cap_weights_hand_case_and_uniform_limit():
    np.testing.assert_allclose(
        cap_weights(np.array([8.0, 1.0, 1.0]), 1.5), [0.5, 0.25, 0.25], rtol=1e-15
    )
    np.testing.assert_allclose(
        cap_weights(np.array([5.0, 1.0, 0.0, 2.0]), 1.0), [1 / 3, 1 / 3, 0, 1 / 3]
    )
    uncapped = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(cap_weights(uncapped, 3.0), uncapped / 6, rtol=1e-15)


def test_cap_weights_rejects_bad_input():
    with pytest.raises(
        ValidationError, match="phi must have at least one positive entry, got 3 entries all zero"
    ):
        cap_weights(np.zeros(3), 2.0)
    with pytest.raises(ValidationError, match=r"cap_c must be in \[1, inf\), got 0.5"):
        cap_weights(np.ones(3), 0.5)
