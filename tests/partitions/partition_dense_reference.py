"""A plain dense density-matrix simulator for the partition tests, independent of ``ceas.partitions``.

Full 2^n×2^n operators from ``np.kron`` and textbook gate definitions; channels as explicit Kraus sums; one sample
at a time. The layer split, the qubit placement and the error channels are written here from the physics (the
remote-CNOT channel from a simulation of the gate-teleportation protocol in this file), not imported.
"""

from __future__ import annotations

import numpy as np

I2 = np.eye(2, dtype=complex)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1.0, -1.0]).astype(complex)
H = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)
P0 = np.diag([1.0, 0.0]).astype(complex)
P1 = np.diag([0.0, 1.0]).astype(complex)

# Bell states in the order (phi+, psi-, psi+, phi-), vectors over |a b>, a the most significant bit.
BELL = np.array(
    [[1, 0, 0, 1], [0, 1, -1, 0], [0, 1, 1, 0], [1, 0, 0, -1]], dtype=complex
) / np.sqrt(2)


def ry(a):
    c, s = np.cos(a / 2), np.sin(a / 2)
    return np.array([[c, -s], [s, c]], dtype=complex)


def rz(a):
    return np.diag([np.exp(-0.5j * a), np.exp(0.5j * a)])


def on_wires(ops: dict, n: int) -> np.ndarray:
    """Tensor product with ``ops[wire]`` on the given wires and identities elsewhere (wire 0 leftmost)."""
    out = np.array([[1.0 + 0j]])
    for w in range(n):
        out = np.kron(out, ops.get(w, I2))
    return out


def cnot(control: int, target: int, n: int) -> np.ndarray:
    return on_wires({control: P0}, n) + on_wires({control: P1, target: X}, n)


def cz(a: int, b: int, n: int) -> np.ndarray:
    return on_wires({a: P0}, n) + on_wires({a: P1, b: Z}, n)


def entangler_pairs(name, n: int) -> list[tuple[int, int]]:
    """The named pattern, written out here; a list of (control, target) pairs is taken as given."""
    if not isinstance(name, str):
        return [tuple(p) for p in name]
    if name == "ring":
        if n == 1:
            return []
        if n == 2:
            return [(0, 1), (1, 0)]
        return [(q, q + 1) for q in range(n - 1)] + [(n - 1, 0)]
    if name == "linear":
        return [(q, q + 1) for q in range(n - 1)]
    if name == "all_to_all":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    raise ValueError(name)


def kraus_apply(rho: np.ndarray, kraus: list[np.ndarray]) -> np.ndarray:
    return sum(k @ rho @ k.conj().T for k in kraus)


def bell_state(lam) -> np.ndarray:
    """Two-qubit density matrix Σ_k λ_k |B_k⟩⟨B_k|."""
    return sum(l * np.outer(b, b.conj()) for l, b in zip(lam, BELL))


def partial_trace(rho: np.ndarray, keep: list[int], n: int) -> np.ndarray:
    """Reduced state on wires ``keep`` (in increasing order)."""
    r = rho.reshape([2] * (2 * n))
    drop = [w for w in range(n) if w not in keep]
    for count, w in enumerate(sorted(drop, reverse=True)):
        m = n - count
        r = np.trace(r, axis1=w, axis2=w + m)
    d = 2 ** len(keep)
    return r.reshape(d, d)


# ---------------------------------------------------------------------------------------------------------------
# the two protocols, simulated gate by gate (deferred measurement: a measured qubit controls the correction, then
# is traced out)
# ---------------------------------------------------------------------------------------------------------------
def teleport_protocol(rho_in: np.ndarray, lam) -> np.ndarray:
    """Teleport qubit s through pair (a, b) in Bell-diagonal state ``lam``; wires (s, a, b); returns ρ_b."""
    rho = np.kron(rho_in, bell_state(lam))
    for u in (cnot(0, 1, 3), on_wires({0: H}, 3), cnot(1, 2, 3), cz(0, 2, 3)):
        rho = u @ rho @ u.conj().T
    return partial_trace(rho, [2], 3)


def remote_cnot_protocol(rho_ct: np.ndarray, lam) -> np.ndarray:
    """Gate teleportation of CNOT(c→t) through pair (a, b); wires (c, a, b, t); returns ρ on (c, t)."""
    rho_c_t = rho_ct.reshape(2, 2, 2, 2)
    pair = bell_state(lam).reshape(2, 2, 2, 2)
    # wires (c, a, b, t): ρ = ρ_ct ⊗ ρ_ab reordered
    rho = np.einsum("ctCT,abAB->cabtCABT", rho_c_t, pair).reshape(16, 16)
    steps = (
        cnot(0, 1, 4),  # CNOT(c -> a)
        cnot(1, 2, 4),  # measure a in Z, X^{m1} on b (deferred)
        cnot(2, 3, 4),  # CNOT(b -> t)
        on_wires({2: H}, 4),  # measure b in X ...
        cz(2, 0, 4),  # ... and Z^{m2} on c (deferred)
    )
    for u in steps:
        rho = u @ rho @ u.conj().T
    return partial_trace(rho, [0, 3], 4)


def remote_cnot_kraus(control: int, target: int, n: int, lam) -> list[np.ndarray]:
    """Kraus operators of the remote CNOT on an n-qubit register, read off the protocol above.

    The protocol's output is fitted with the ideal CNOT followed by a Pauli channel on (control, target): the
    Pauli-transfer coefficients of ``remote_cnot_protocol`` give the Pauli probabilities (by Pauli twirl
    identity, computed exactly from 16 probe inputs) — done once per call, independent of ``ceas``.
    """
    probs = protocol_pauli_probs(lam)
    paulis = {"I": I2, "X": X, "Y": Y, "Z": Z}
    gate = cnot(control, target, n)
    out = []
    for (pc, pt), p in probs.items():
        if p > 0:
            out.append(np.sqrt(p) * on_wires({control: paulis[pc], target: paulis[pt]}, n) @ gate)
    return out


def protocol_pauli_probs(lam) -> dict[tuple[str, str], float]:
    """Probabilities of the Pauli errors E (on c, t) with protocol(ρ) = Σ p_E E·CNOT ρ CNOT·E.

    Process-matrix diagonal: p_E = Σ over an operator basis, via the Choi state of the protocol composed with the
    inverse CNOT, whose overlap with (E ⊗ I)|Φ⟩⟨Φ|(E ⊗ I) is p_E (and the off-Pauli part must vanish).
    """
    names = "IXYZ"
    paulis = {"I": I2, "X": X, "Y": Y, "Z": Z}
    cn = cnot(0, 1, 2)
    # Choi state of ρ -> CNOT · protocol(ρ) · CNOT on 2 system qubits (+2 reference qubits)
    phi = np.zeros(16, dtype=complex)
    for j in range(4):
        phi[j * 4 + j] = 0.5
    choi = np.zeros((16, 16), dtype=complex)
    for j in range(4):
        for k in range(4):
            e_jk = np.zeros((4, 4), dtype=complex)
            e_jk[j, k] = 1.0
            out = cn @ remote_cnot_protocol(e_jk, lam) @ cn
            choi += np.kron(out, e_jk) / 4.0
    probs = {}
    for a in names:
        for b in names:
            e = np.kron(np.kron(paulis[a], paulis[b]), np.eye(4))
            v = e @ phi
            probs[(a, b)] = float(np.real(v.conj() @ choi @ v))
    return probs


# ---------------------------------------------------------------------------------------------------------------
# the partitioned circuits
# ---------------------------------------------------------------------------------------------------------------
def depolarising_kraus(qubit: int, n: int, w: float) -> list[np.ndarray]:
    p_i, p_e = (1 + 3 * w) / 4, (1 - w) / 4
    return [np.sqrt(p_i) * np.eye(2**n)] + [
        np.sqrt(p_e) * on_wires({qubit: p}, n) for p in (X, Y, Z)
    ]


def werner_vector(w: float) -> np.ndarray:
    return np.array([(1 + 3 * w) / 4, (1 - w) / 4, (1 - w) / 4, (1 - w) / 4])


def local_layer(theta_layer, x, n, encode: bool) -> np.ndarray:
    u = np.eye(2**n, dtype=complex)
    for q in range(n):
        g = rz(theta_layer[q, 1]) @ ry(theta_layer[q, 0])
        if encode:
            g = g @ ry(x[q])
        u = on_wires({q: g}, n) @ u
    return u


def readout(n: int, n_classes: int, entangler: str) -> list[int]:
    o = 1 if n_classes == 2 else n_classes
    return list(range(o)) if entangler == "ring" else list(range(n - o, n))


PAULI_1Q = (I2, X, Y, Z)


def pauli_strings(qubits: list[int], n: int) -> list[np.ndarray]:
    """All 4^|Q| Pauli strings on ``qubits`` (identity elsewhere) as n-qubit matrices, the identity first."""
    out = []
    for idx in np.ndindex(*([4] * len(qubits))):
        out.append(on_wires({q: PAULI_1Q[i] for q, i in zip(qubits, idx)}, n))
    return out


def block_depolarising_kraus(qubits: list[int], n: int, p: float) -> list[np.ndarray]:
    """ρ → (1−p)ρ + p·tr_Q(ρ)⊗I/2^|Q| as Kraus operators: with probability p a uniformly random Pauli string on
    Q (the twirl over the Pauli group is the full depolariser of Q), the identity otherwise."""
    strings = pauli_strings(qubits, n)
    weight = p / len(strings)
    return [np.sqrt(1.0 - p + weight) * strings[0]] + [np.sqrt(weight) * s for s in strings[1:]]


def readout_flip_kraus(qubit: int, n: int, r: float) -> list[np.ndarray]:
    """The measured bit of ``qubit`` flipped with probability r: ρ → (1−r)ρ + r·XρX before measuring."""
    return [np.sqrt(1.0 - r) * np.eye(2**n), np.sqrt(r) * on_wires({qubit: X}, n)]


def run_circuit(
    theta, x, n, n_layers, entangler, reupload, n_classes, after_cnot, after_layer, before_readout=None
):
    """ρ through the circuit; ``after_cnot(layer, c, t, rho)`` and ``after_layer(layer, rho)`` insert channels,
    ``before_readout(q, rho)`` a channel before measuring readout qubit q."""
    t = np.asarray(theta).reshape(n_layers, n, 2)
    d = 2**n
    rho = np.zeros((d, d), dtype=complex)
    rho[0, 0] = 1.0
    for layer in range(n_layers):
        u = local_layer(t[layer], x, n, reupload or layer == 0)
        rho = u @ rho @ u.conj().T
        for c, tg in entangler_pairs(entangler, n):
            g = cnot(c, tg, n)
            rho = g @ rho @ g.conj().T
            rho = after_cnot(layer, c, tg, rho)
        rho = after_layer(layer, rho)
    out = []
    for q in readout(n, n_classes, entangler):
        rq = rho if before_readout is None else before_readout(q, rho)
        out.append(np.real(np.trace(on_wires({q: Z}, n) @ rq)))
    return np.array(out)


def unitary_level(
    theta,
    x,
    werner,
    *,
    n,
    n_layers,
    blocks,
    entangler="ring",
    reupload=False,
    n_classes=2,
    node_p=None,
    node_r=None,
):
    """⟨Z⟩ of the layer-split circuit; ``werner`` (blocks-1, n). Block sizes: ceil first, as documented.

    ``node_p``, ``node_r`` (blocks,): QPU k depolarises the whole register after each layer of its block (before
    the state leaves), and the last QPU's readout flips each measured bit with probability r."""
    sizes = [n_layers // blocks + (1 if i < n_layers % blocks else 0) for i in range(blocks)]
    boundary = {int(np.sum(sizes[: h + 1])) - 1: h for h in range(blocks - 1)}
    owner = [b for b in range(blocks) for _ in range(sizes[b])]

    def after_layer(layer, rho):
        if node_p is not None:
            rho = kraus_apply(rho, block_depolarising_kraus(list(range(n)), n, node_p[owner[layer]]))
        if layer in boundary:
            for q in range(n):
                rho = kraus_apply(rho, depolarising_kraus(q, n, werner[boundary[layer]][q]))
        return rho

    def before_readout(q, rho):
        return kraus_apply(rho, readout_flip_kraus(q, n, node_r[-1]))

    return run_circuit(
        theta, x, n, n_layers, entangler, reupload, n_classes, lambda *a: a[-1], after_layer,
        None if node_r is None else before_readout,
    )  # fmt: skip


def circuit_level(
    theta,
    x,
    werner,
    *,
    n,
    n_layers,
    qubits_per_qpu,
    entangler="ring",
    reupload=False,
    n_classes=2,
    node_p=None,
    node_r=None,
    placement=None,
):
    """⟨Z⟩ of the qubit-split circuit; ``werner`` (L, R) for the R remote CNOTs of each layer, in order.

    The remote CNOT's channel comes from the simulated gate-teleportation protocol, not from ``ceas``.
    ``placement`` (n,) gives the QPU of each qubit (default: blocks of ``qubits_per_qpu``). ``node_p``,
    ``node_r`` (K,): after each layer QPU j depolarises its own qubits, and flips the measured bits of its qubits.
    """
    qpu = list(placement) if placement is not None else [q // qubits_per_qpu for q in range(n)]
    counter = {}

    def after_cnot(layer, c, t, rho):
        if qpu[c] == qpu[t]:
            return rho
        r = counter.get(layer, 0)
        counter[layer] = r + 1
        lam = werner_vector(werner[layer][r])
        g = cnot(c, t, n)
        # undo the ideal CNOT, apply the protocol's full channel (CNOT then its Pauli errors)
        rho = g.conj().T @ rho @ g
        return kraus_apply(rho, remote_cnot_kraus(c, t, n, lam))

    def after_layer(layer, rho):
        if node_p is not None:
            for j in sorted(set(qpu)):
                mine = [q for q in range(n) if qpu[q] == j]
                rho = kraus_apply(rho, block_depolarising_kraus(mine, n, node_p[j]))
        return rho

    def before_readout(q, rho):
        return kraus_apply(rho, readout_flip_kraus(q, n, node_r[qpu[q]]))

    return run_circuit(
        theta, x, n, n_layers, entangler, reupload, n_classes, after_cnot, after_layer,
        None if node_r is None else before_readout,
    )  # fmt: skip
