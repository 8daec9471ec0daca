"""Every closed form of the network layer against an explicit density-matrix computation, to 1e-12.

The reference (``network_density_matrix.py``) builds states from kets and applies channels, gates and projectors on 2-, 3- and
4-qubit density matrices; nothing in it comes from ceas.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from network_density_matrix import (
    BELL_KETS,
    PAULIS,
    PHI_PLUS,
    X,
    Y,
    Z,
    bell_components,
    bell_diagonal,
    cnot,
    conjugate,
    depolarize,
    fidelity,
    kron,
    partial_trace,
    projector,
    rx,
    werner,
    z_projector,
)
from scipy.optimize import brentq

from ceas.errors import ValidationError
from ceas.network.links import link_coherence_s
from ceas.network.purification import bbpssw, bbpssw_bell, dejmps
from ceas.network.swapping import swap_bell, swap_fidelity, swap_werner
from ceas.network.teleportation import teleport_bloch, teleport_pauli, teleport_qubit
from ceas.network.werner import (
    basis_error_rates,
    bbm92_key_fraction,
    bell_correlations,
    bell_decay,
    bell_from_correlations,
    binary_entropy,
    chsh_max,
    chsh_value,
    cutoff_age,
    fidelity_at_age,
    qber,
    secret_fraction,
    werner_at_age,
    werner_bell_vector,
    werner_from_fidelity,
)

TOL = 1e-12
fid = st.floats(0.25, 1.0)
age = st.floats(0.0, 5.0)
coh = st.floats(0.01, 10.0)
simplex = (
    st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4)
    .filter(lambda v: sum(v) > 1e-3)
    .map(lambda v: np.array(v) / sum(v))
)


def random_qubit(rng):
    a = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
    rho = a @ a.conj().T
    return rho / np.trace(rho)


# ---------------------------------------------------------------------------------------------------------------
# decay and cutoff
# ---------------------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(f0=fid, a=age, t_u=coh, t_v=coh)
def test_werner_decay_equals_local_depolarising_of_both_memories(f0, a, t_u, t_v):
    rho = depolarize(depolarize(werner(f0), 0, 2, math.exp(-a / t_u)), 1, 2, math.exp(-a / t_v))
    t_link = float(link_coherence_s(t_u, t_v))
    assert abs(fidelity(rho) - float(fidelity_at_age(f0, a, t_link))) < TOL
    w_dm = (4 * fidelity(rho) - 1) / 3
    assert abs(w_dm - float(werner_at_age(werner_from_fidelity(f0), a, t_link))) < TOL
    # the decayed state is still Werner: the Bell vector agrees entry by entry
    assert (
        np.max(np.abs(bell_components(rho) - bell_decay(werner_bell_vector(f0), a, t_link))) < TOL
    )


@settings(max_examples=40, deadline=None)
@given(lam=simplex, a=age, t=coh)
def test_bell_diagonal_decay_equals_depolarising(lam, a, t):
    k = math.exp(-a / t)
    rho = depolarize(bell_diagonal(lam), 0, 2, k)  # all decay on one memory: T_other = inf
    assert np.max(np.abs(bell_components(rho) - bell_decay(lam, a, t))) < TOL


@settings(max_examples=60, deadline=None)
@given(f0=st.floats(0.3, 1.0), f_min=st.floats(0.26, 0.99), t=coh)
def test_cutoff_age_is_where_the_density_matrix_reaches_f_min(f0, f_min, t):
    a = float(cutoff_age(f0, t, f_min=f_min))
    if f0 <= f_min:
        assert a == 0.0
        return
    rho = depolarize(werner(f0), 0, 2, math.exp(-a / t))
    assert abs(fidelity(rho) - f_min) < TOL


def test_cutoff_age_spec_default_value():
    # SPEC §4: F0 = 1 - theta = 0.95, F_min = 0.8: a_cut = T ln(0.7/0.55)
    assert float(cutoff_age(0.95, 1.0, f_min=0.8)) == pytest.approx(math.log(0.7 / 0.55), abs=1e-15)
    assert float(cutoff_age(0.95, 0.1, f_min=0.25)) == math.inf
    assert float(cutoff_age(0.95, math.inf, f_min=0.8)) == math.inf


# ---------------------------------------------------------------------------------------------------------------
# swapping
# ---------------------------------------------------------------------------------------------------------------


def _swap_dm(rho1, rho2):
    """Bell measurement on the middle qubits of (A, B1)(B2, C), Pauli correction on C chosen from perfect pairs."""
    n = 4
    rho = np.kron(rho1, rho2)
    perfect = np.kron(projector(PHI_PLUS), projector(PHI_PLUS))
    out = np.zeros((4, 4), complex)
    for ket in BELL_KETS:
        proj = kron(np.eye(2), projector(ket), np.eye(2))
        # correction: the Pauli on C that maps the perfect post-measurement state back to |Phi+>
        best = max(
            PAULIS,
            key=lambda p: fidelity(
                partial_trace(conjugate(proj @ perfect @ proj, kron(np.eye(8), p)), (0, 3), n)
            ),
        )
        out += partial_trace(conjugate(proj @ rho @ proj, kron(np.eye(8), best)), (0, 3), n)
    return out


@settings(max_examples=25, deadline=None)
@given(f1=fid, f2=fid, a1=age, a2=age, t1=coh, t2=coh)
def test_swap_of_werner_pairs_multiplies_visibilities_at_their_own_ages(f1, f2, a1, a2, t1, t2):
    rho1 = depolarize(werner(f1), 0, 2, math.exp(-a1 / t1))
    rho2 = depolarize(werner(f2), 1, 2, math.exp(-a2 / t2))
    out = _swap_dm(rho1, rho2)
    w1 = werner_at_age(werner_from_fidelity(f1), a1, t1)
    w2 = werner_at_age(werner_from_fidelity(f2), a2, t2)
    assert abs((4 * fidelity(out) - 1) / 3 - float(swap_werner(w1, w2))) < TOL
    g1, g2 = fidelity_at_age(f1, a1, t1), fidelity_at_age(f2, a2, t2)
    assert abs(fidelity(out) - float(swap_fidelity(g1, g2))) < TOL


@settings(max_examples=25, deadline=None)
@given(l1=simplex, l2=simplex)
def test_swap_of_bell_diagonal_pairs(l1, l2):
    out = _swap_dm(bell_diagonal(l1), bell_diagonal(l2))
    assert np.max(np.abs(bell_components(out) - swap_bell(l1, l2))) < TOL


def test_swap_chain_is_the_product():
    assert float(swap_werner(0.9, 0.8, 0.5)) == pytest.approx(0.36, abs=1e-15)


# ---------------------------------------------------------------------------------------------------------------
# purification
# ---------------------------------------------------------------------------------------------------------------


def _purify_dm(rho1, rho2, rotate):
    """Bilateral CNOT from pair 1 (A1, B1) onto pair 2 (A2, B2); keep pair 1 when the Z outcomes agree."""
    rho = np.kron(rho1, rho2)  # qubits A1 B1 A2 B2
    if rotate:  # DEJMPS: Rx(pi/2) at Alice, Rx(-pi/2) at Bob, on both pairs
        rho = conjugate(rho, kron(rx(np.pi / 2), rx(-np.pi / 2), rx(np.pi / 2), rx(-np.pi / 2)))
    rho = conjugate(rho, cnot(1, 3, 4) @ cnot(0, 2, 4))
    keep = z_projector({2: 0, 3: 0}, 4) + z_projector({2: 1, 3: 1}, 4)
    kept = keep @ rho @ keep
    p = float(np.real(np.trace(kept)))
    return p, partial_trace(kept, (0, 1), 4) / p


@settings(max_examples=40, deadline=None)
@given(f1=fid, f2=fid)
def test_bbpssw_success_probability_and_output_fidelity(f1, f2):
    p_dm, out = _purify_dm(werner(f1), werner(f2), rotate=False)
    p, f_out = bbpssw(f1, f2)
    assert abs(p_dm - float(p)) < TOL
    assert abs(fidelity(out) - float(f_out)) < TOL
    p2, bell = bbpssw_bell(werner_bell_vector(f1), werner_bell_vector(f2))
    assert abs(float(p2) - p_dm) < TOL
    assert np.allclose(bell, werner_bell_vector(f_out), atol=TOL)  # twirled back to Werner


@settings(max_examples=40, deadline=None)
@given(l1=simplex, l2=simplex)
def test_dejmps_map(l1, l2):
    p, bell = dejmps(l1, l2)
    if float(p) == 0.0:  # the parity check never passes: no output state
        assert np.isnan(bell).all()
        return
    assume(float(p) > 1e-6)  # dividing by a vanishing p amplifies rounding in both computations
    p_dm, out = _purify_dm(bell_diagonal(l1), bell_diagonal(l2), rotate=True)
    assert abs(p_dm - float(p)) < TOL
    assert np.max(np.abs(bell_components(out) - bell)) < TOL


def test_purification_improves_good_werner_pairs():
    f = np.linspace(0.51, 0.99, 25)
    assert np.all(bbpssw(f, f)[1] > f)
    assert np.all(dejmps(werner_bell_vector(f), werner_bell_vector(f))[1][:, 0] > f)


# ---------------------------------------------------------------------------------------------------------------
# teleportation
# ---------------------------------------------------------------------------------------------------------------


def _teleport_dm(rho_in, pair):
    """Teleport qubit S through pair (A, B): Bell measurement on (S, A), Pauli correction on B."""
    n = 3
    rho = np.kron(rho_in, pair)
    perfect_pair = projector(PHI_PLUS)
    out = np.zeros((2, 2), complex)
    probe = np.array(
        [[0.7, 0.2 - 0.1j], [0.2 + 0.1j, 0.3]]
    )  # any state that distinguishes the Paulis
    for ket in BELL_KETS:
        proj = kron(projector(ket), np.eye(2))
        perfect = proj @ np.kron(probe, perfect_pair) @ proj
        best = max(
            PAULIS,
            key=lambda p: np.real(
                np.trace(partial_trace(conjugate(perfect, kron(np.eye(4), p)), (2,), n) @ probe)
            ),
        )
        out += partial_trace(conjugate(proj @ rho @ proj, kron(np.eye(4), best)), (2,), n)
    return out


@settings(max_examples=30, deadline=None)
@given(f=fid, seed=st.integers(0, 2**31))
def test_teleportation_through_a_werner_pair_is_depolarising(f, seed):
    rho = random_qubit(np.random.default_rng(seed))
    out = _teleport_dm(rho, werner(f))
    w = float(werner_from_fidelity(f))
    assert np.max(np.abs(out - teleport_qubit(rho, w))) < TOL
    bloch = np.real([np.trace(rho @ P) for P in (X, Y, Z)])
    bloch_out = np.real([np.trace(out @ P) for P in (X, Y, Z)])
    assert np.max(np.abs(bloch_out - teleport_bloch(bloch, w))) < TOL


@settings(max_examples=30, deadline=None)
@given(lam=simplex, seed=st.integers(0, 2**31))
def test_teleportation_through_a_bell_diagonal_pair_is_a_pauli_channel(lam, seed):
    rho = random_qubit(np.random.default_rng(seed))
    out = _teleport_dm(rho, bell_diagonal(lam))
    assert np.max(np.abs(out - teleport_pauli(rho, lam))) < TOL


# ---------------------------------------------------------------------------------------------------------------
# QBER, CHSH, key fraction
# ---------------------------------------------------------------------------------------------------------------

H = np.array([[1, 1], [1, -1]]) / np.sqrt(2)


def _error_rates_dm(rho):
    differ = z_projector({0: 0, 1: 1}, 2) + z_projector({0: 1, 1: 0}, 2)
    e_z = float(np.real(np.trace(differ @ rho)))
    e_x = float(np.real(np.trace(differ @ conjugate(rho, kron(H, H)))))
    e_y = (1 + float(np.real(np.trace(rho @ kron(Y, Y))))) / 2  # |Phi+> has YY = -1
    return np.array([e_x, e_y, e_z])


@settings(max_examples=40, deadline=None)
@given(f=fid)
def test_qber_of_a_werner_pair(f):
    rates = _error_rates_dm(werner(f))
    assert np.max(np.abs(rates - float(qber(f)))) < TOL


@settings(max_examples=40, deadline=None)
@given(lam=simplex)
def test_basis_error_rates_and_correlations_of_bell_diagonal_pairs(lam):
    rho = bell_diagonal(lam)
    assert np.max(np.abs(_error_rates_dm(rho) - basis_error_rates(lam))) < TOL
    t_dm = [float(np.real(np.trace(rho @ kron(P, P)))) for P in (X, Y, Z)]
    assert np.max(np.abs(np.array(t_dm) - bell_correlations(lam))) < TOL
    assert np.max(np.abs(bell_from_correlations(bell_correlations(lam)) - lam)) < TOL
    assert abs(1 - basis_error_rates(lam).sum() / 2 - lam[0]) < TOL


@settings(max_examples=40, deadline=None)
@given(f=fid)
def test_chsh_value_at_the_standard_settings(f):
    rho = werner(f)
    a = [Z, X]
    b = [(Z + X) / np.sqrt(2), (Z - X) / np.sqrt(2)]

    def e(i, j):
        return float(np.real(np.trace(rho @ kron(a[i], b[j]))))

    s = e(0, 0) + e(0, 1) + e(1, 0) - e(1, 1)
    assert abs(s - float(chsh_value(f))) < TOL
    assert abs(float(chsh_max(werner_bell_vector(f))) - float(chsh_value(f))) < TOL


@settings(max_examples=30, deadline=None)
@given(lam=simplex)
def test_chsh_max_equals_horodecki_from_the_correlation_matrix(lam):
    rho = bell_diagonal(lam)
    T = np.array([[np.real(np.trace(rho @ kron(P, Q))) for Q in (X, Y, Z)] for P in (X, Y, Z)])
    s = np.sort(np.linalg.svd(T, compute_uv=False))
    assert abs(2 * math.sqrt(s[-1] ** 2 + s[-2] ** 2) - float(chsh_max(lam))) < TOL


def test_chsh_violation_threshold_is_f_078():
    f_star = (3 / math.sqrt(2) + 1) / 4  # 2 sqrt2 w = 2
    assert f_star == pytest.approx(0.7803, abs=1e-4)
    assert float(chsh_value(f_star)) == pytest.approx(2.0, abs=1e-14)
    assert chsh_value(f_star + 1e-6) > 2 > chsh_value(f_star - 1e-6)


def test_secret_fraction_vanishes_above_eleven_percent_qber():
    root = brentq(lambda e: 1 - 2 * float(binary_entropy(e)), 0.05, 0.2)
    assert root == pytest.approx(0.110028, abs=1e-6)
    e = np.linspace(root + 1e-9, 0.5, 200)
    assert np.all(secret_fraction(e) == 0)
    assert np.all(secret_fraction(np.linspace(0, 0.11, 200)) > 0)
    assert float(secret_fraction(0.0)) == 1.0
    # key bits per pair: sifting 1/2 times the secret fraction of the Werner QBER
    f = np.linspace(0.25, 1, 301)
    expected = 0.5 * np.maximum(0, 1 - 2 * binary_entropy(2 * (1 - f) / 3))
    assert np.max(np.abs(bbm92_key_fraction(f) - expected)) < TOL
    assert np.all(bbm92_key_fraction(f[2 * (1 - f) / 3 > root]) == 0)


def test_binary_entropy_values():
    assert float(binary_entropy(0.5)) == 1.0
    assert float(binary_entropy(0.11)) == pytest.approx(
        -(0.11 * math.log2(0.11) + 0.89 * math.log2(0.89)), abs=1e-15
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fidelity_at_age(1.3, 0.1, 1.0), r"f0 must be in \[0.25, 1\], got 1.3"),
        (lambda: fidelity_at_age(0.9, -0.1, 1.0), r"age_s must be in \[0, inf\), got -0.1"),
        (lambda: fidelity_at_age(0.9, 0.1, 0.0), r"t_coh_s must be in \(0, inf\), got 0"),
        (lambda: cutoff_age(0.9, 1.0, f_min=0.2), r"f_min must be in \[0.25, 1\], got 0.2"),
        (lambda: werner_from_fidelity([0.9, 0.1]), r"fidelity must be in \[0.25, 1\], got 0.1"),
        (lambda: qber(float("nan")), "fidelity must be in"),
        (lambda: swap_werner(0.5, 1.2), r"werner\[1\] must be in \[0, 1\], got 1.2"),
        (lambda: bbpssw(0.2, 0.9), "f1 must be in"),
        (lambda: dejmps([0.5, 0.5, 0.5, 0.5], [1, 0, 0, 0]), "bell vector entries must sum to 1"),
        (lambda: bell_decay([1.0, 0.0, 0.0], 0.1, 1.0), r"bell vector must have shape \(..., 4\)"),
        (lambda: teleport_qubit(np.eye(3), 0.5), r"rho must have shape \(..., 2, 2\)"),
        (lambda: link_coherence_s(-1.0, 1.0), "t_coh_s must be in"),
    ],
)
def test_closed_forms_reject_bad_arguments(call, message):
    with pytest.raises(ValidationError, match=message):
        call()
