"""Fidelity stamps (Definition 1): what a node claims about its update, and the broker's check of that claim.

With each update node k sends a stamp

.. math:: \\sigma_k^{(t)} = (k,\\ t,\\ \\varphi_k,\\ \\hat F_{Q,k},\\ \\bar F_k,\\ S_k,\\ \\text{nonce}),

(the MAC tag is added by :mod:`ceas.security`), where :math:`\\varphi_k = S_k \\hat F_{Q,k} v_k^2` is the predicted
**inverse variance** of the gradient as delivered (SPEC §3): :math:`S_k` shots per expectation, :math:`\\hat F_{Q,k}`
the node's mean diagonal quantum Fisher information (dimensionless, per parameter) and :math:`v_k = (4\\bar F_k - 1)/3`
the Werner visibility of the payload pairs at use time. Both formulas have one home,
:func:`ceas.network.werner.stamp_weight` and :func:`ceas.network.werner.werner_from_fidelity`; this module imports them.

A stamp is a claim; the broker never uses it unchecked (SPEC §6, defences 2 and 3):

* the claimed pair fidelity is compared with the broker's own estimate from verification tests and its upper
  confidence bound; a claim above the bound is replaced by the broker's estimate;
* the claimed QFI is capped by the largest value the node's calibrated noise allows (:func:`qfi_noise_bound`);
* the shots may be capped by what the scheduler assigned;
* φ is recomputed from the verified parts, never read from the claim (a claimed φ above the recomputed value is
  reported); stale or future rounds are rejected outright.

Finally :func:`cap_weights` turns verified φ into weights with :math:`w_k \\le c/|A|`.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ceas._validate import check_array, check_int, check_real
from ceas.errors import ValidationError
from ceas.network.werner import stamp_weight, werner_from_fidelity

__all__ = [
    "FidelityStamp",
    "StampIssue",
    "VerifiedStamp",
    "VerifiedStamps",
    "cap_weights",
    "qfi_noise_bound",
    "stamp_weight",
    "tighten_claims",
    "verify_stamp",
    "verify_stamps",
]

#: Largest diagonal QFI of one RY/RZ parameter on a pure state: the generator is a Pauli/2, so
#: F_Q = 4 Var(P/2) = Var(P) <= 1. The node summary (a mean of diagonal entries) obeys the same bound.
PURE_QFI_MAX = 1.0

_HEADER = struct.Struct(">IQdddQB")  # node, round, phi, qfi, fidelity, shots, nonce length
_MAX_NONCE = 64


def qfi_noise_bound(
    depolarizing: float | np.ndarray,
    n_layers: int,
    n_qubits: int,
    pure_qfi_max: float = PURE_QFI_MAX,
) -> float | np.ndarray:
    """Largest QFI a node with global depolarising noise ``p`` per layer can honestly report.

    After L layers the state is :math:`\\rho = (1-q)|\\psi\\rangle\\langle\\psi| + q I/d` with
    :math:`q = 1 - (1-p)^L` and :math:`d = 2^n`, so (SPEC §3)

    .. math:: F_Q(\\rho) = \\frac{(1-q)^2}{(1-q) + 2q/d} F_Q(|\\psi\\rangle) \\le
              \\frac{(1-q)^2}{(1-q) + 2q/d} F_Q^{\\max}.

    Parameters
    ----------
    depolarizing : float or ndarray
        p per layer, in [0, 1].
    n_layers, n_qubits : int
        L >= 1 and n >= 1.
    pure_qfi_max : float
        Bound on the pure-state value (1 for Pauli-rotation parameters).

    Returns
    -------
    float or ndarray
        The bound, same shape as ``depolarizing``.

    Examples
    --------
    >>> qfi_noise_bound(0.0, 4, 4)
    1.0
    """
    p = check_array("depolarizing", depolarizing, ndim=np.ndim(depolarizing), low=0.0, high=1.0)
    n_layers = check_int("n_layers", n_layers, low=1)
    n_qubits = check_int("n_qubits", n_qubits, low=1, high=60)
    pure_qfi_max = check_real("pure_qfi_max", pure_qfi_max, low=0.0)
    keep = (1.0 - p) ** n_layers
    q = 1.0 - keep
    denom = keep + 2.0 * q / 2.0**n_qubits
    bound = np.where(denom > 0, keep**2 / np.where(denom > 0, denom, 1.0), 0.0) * pure_qfi_max
    return float(bound) if bound.ndim == 0 else bound


@dataclass(frozen=True)
class FidelityStamp:
    """The claim node ``node`` sends with its round-``round`` update (Definition 1; tag added by security).

    Parameters
    ----------
    node : int
        Sender id (>= 0).
    round : int
        Training round t (>= 0).
    phi : float
        Claimed φ = S·F̂_Q·v², in 1/(gradient variance) (>= 0).
    qfi : float
        Claimed mean diagonal QFI F̂_Q (>= 0).
    fidelity : float
        Claimed pair fidelity F̄ of the payload pairs at use time, in [0.25, 1].
    shots : int
        Shots per expectation S (>= 1); in exact simulation, the payload copies S_p.
    nonce : bytes
        1 to 64 bytes, unique per (node, round); binds the stamp to one message.

    Raises
    ------
    ValidationError
        When a field is outside its range (a malformed stamp is never constructed).
    """

    node: int
    round: int
    phi: float
    qfi: float
    fidelity: float
    shots: int
    nonce: bytes

    def __post_init__(self) -> None:
        check_int("node", self.node, low=0, high=2**32 - 1)
        check_int("round", self.round, low=0, high=2**63 - 1)
        check_real("phi", self.phi, low=0.0)
        check_real("qfi", self.qfi, low=0.0)
        check_real("fidelity", self.fidelity, low=0.25, high=1.0)
        check_int("shots", self.shots, low=1, high=2**63 - 1)
        if not isinstance(self.nonce, bytes) or not 1 <= len(self.nonce) <= _MAX_NONCE:
            raise ValidationError(
                f"nonce must be bytes of length in [1, {_MAX_NONCE}], got {self.nonce!r:.40}"
            )

    def to_bytes(self) -> bytes:
        """Canonical big-endian encoding (the bytes the MAC covers)."""
        head = _HEADER.pack(
            self.node, self.round, self.phi, self.qfi, self.fidelity, self.shots, len(self.nonce)
        )
        return head + self.nonce

    @classmethod
    def from_bytes(cls, data: bytes) -> FidelityStamp:
        """Decode :meth:`to_bytes` output; wrong lengths or out-of-range fields raise ValidationError."""
        if not isinstance(data, (bytes, bytearray)) or len(data) < _HEADER.size + 1:
            size = len(data) if isinstance(data, (bytes, bytearray)) else type(data).__name__
            raise ValidationError(
                f"stamp bytes must have length in [{_HEADER.size + 1}, {_HEADER.size + _MAX_NONCE}], got {size}"
            )
        node, rnd, phi, qfi, fid, shots, n_nonce = _HEADER.unpack_from(data)
        if len(data) != _HEADER.size + n_nonce:
            raise ValidationError(
                f"stamp bytes must have length {_HEADER.size + n_nonce} for a {n_nonce}-byte nonce, "
                f"got {len(data)}"
            )
        return cls(node, rnd, phi, qfi, fid, shots, bytes(data[_HEADER.size :]))


class StampIssue(str, enum.Enum):
    """Why a stamp was capped or rejected (the reason reported with a verified φ)."""

    FIDELITY_ABOVE_BOUND = "claimed fidelity above the verified upper bound"
    QFI_ABOVE_NOISE_BOUND = "claimed QFI above the node's noise bound"
    SHOTS_ABOVE_ASSIGNED = "claimed shots above the assigned shots"
    PHI_INCONSISTENT = "claimed phi above S*F_Q*v^2 of the verified parts"
    STALE_ROUND = "stamp from an earlier round"
    FUTURE_ROUND = "stamp from a future round"


@dataclass(frozen=True)
class VerifiedStamps:
    """Verified parts of n stamps, as arrays (shapes (n,)).

    Attributes
    ----------
    nodes : ndarray of int
    phi : ndarray of float
        Verified φ = S·F_Q·v² from the verified parts (0 for rejected stamps).
    fidelity, qfi, shots : ndarray
        The values used for φ.
    accepted : ndarray of bool
        False for stale or future stamps.
    issues : tuple of tuple of StampIssue
        Per stamp, every reason it was capped or rejected (empty when taken as claimed).
    """

    nodes: np.ndarray
    phi: np.ndarray
    fidelity: np.ndarray
    qfi: np.ndarray
    shots: np.ndarray
    accepted: np.ndarray
    issues: tuple[tuple[StampIssue, ...], ...]

    @property
    def capped(self) -> np.ndarray:
        """(n,) bool: the stamp was altered or rejected by verification."""
        return np.array([bool(i) for i in self.issues], dtype=bool)


@dataclass(frozen=True)
class VerifiedStamp:
    """One stamp after verification: the φ the broker uses and every reason it differs from the claim."""

    node: int
    round: int
    phi: float
    fidelity: float
    qfi: float
    shots: int
    accepted: bool
    issues: tuple[StampIssue, ...]

    @property
    def capped(self) -> bool:
        """True when verification changed or rejected the claim."""
        return bool(self.issues)


def tighten_claims(
    measured_fidelity: np.ndarray,
    fidelity_bound: np.ndarray,
    max_qfi: np.ndarray,
    claimed_qfi: np.ndarray,
    *,
    ledger_fidelity: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tighter references for :func:`verify_stamps` from what the broker knows beyond the SPEC §6 bounds, shape (n,).

    * Fidelity: the broker's ledger holds the fidelity of the pairs that carried each payload at their moment of use
      (``ledger_fidelity``); a claim above it cannot be honest, so both the point estimate and the upper bound are
      lowered to it.
    * QFI: a claim within the node's noise bound cannot be checked directly, so it is worth no more than the round's
      median claim relative to each bound (honest claims sit at a common fraction of their bounds, about 0.9 in the
      paper configuration): a node that always claims its bound gains no rank over honest peers with the same noise.
      The median is an honest node's ratio while fewer than half of the stamps are Byzantine.

    Returns ``(measured_fidelity, fidelity_bound, max_qfi)`` to pass on, with ``measured <= bound`` kept.
    """
    measured = np.asarray(measured_fidelity, dtype=np.float64)
    bound = np.asarray(fidelity_bound, dtype=np.float64)
    cap = np.asarray(max_qfi, dtype=np.float64)
    claims = np.asarray(claimed_qfi, dtype=np.float64)
    if ledger_fidelity is not None:
        ledger = np.clip(np.asarray(ledger_fidelity, dtype=np.float64), 0.25, 1.0)
        measured = np.minimum(measured, ledger)
        bound = np.maximum(measured, np.minimum(bound, ledger))
    if claims.size:
        ratio = claims / np.maximum(cap, np.finfo(float).tiny)
        cap = np.minimum(cap, float(np.median(ratio)) * cap)
    return measured, bound, cap


def verify_stamps(
    stamps: Sequence[FidelityStamp],
    measured_fidelity: float | np.ndarray,
    fidelity_bound: float | np.ndarray,
    max_qfi: float | np.ndarray,
    *,
    assigned_shots: int | np.ndarray | None = None,
    current_round: int | None = None,
    phi_rtol: float = 1e-9,
    phi_cap=None,
    mse_payload=None,
) -> VerifiedStamps:
    """Verify n stamps at once against the broker's own measurements (vectorised over stamps).

    Parameters
    ----------
    stamps : sequence of FidelityStamp
        n claims.
    measured_fidelity : float or ndarray (n,)
        Broker's point estimate of each payload link's fidelity from verification tests, in [0.25, 1].
    fidelity_bound : float or ndarray (n,)
        Upper confidence bound of that estimate, in [measured_fidelity, 1]. A claim above it is statistically
        inconsistent with the tests and is replaced by ``measured_fidelity``.
    max_qfi : float or ndarray (n,)
        Largest QFI each node's calibrated noise allows (see :func:`qfi_noise_bound`); larger claims are capped to it.
    assigned_shots : int or ndarray (n,), optional
        Shots the scheduler assigned; larger claims are capped to it.
    current_round : int, optional
        The round being aggregated; stamps of other rounds are rejected (φ = 0).
    phi_rtol : float
        Relative slack before a claimed φ above the recomputed one is reported.
    phi_cap : float or ndarray (n,), optional
        For stamps whose φ is a predicted inverse MSE (``consensus.stamp = "mse"``) rather than S·F̂_Q·v²: the
        largest φ the verifier can grant each stamp (the inverse of the error floor it can prove; ``inf`` where it
        can prove none). φ is then min(claimed φ, corrected claim, cap) instead of min(claimed, recomputed).
    mse_payload : float or ndarray (n,), optional
        With predicted-MSE stamps: s²/S_p of each reply's quantum payload (0 for classical payloads), from the
        payload scale s in its envelope. A claim made at a fidelity above the bound is corrected to the verified
        fidelity exactly, whatever the payload's components: the payload variance s²(1 − w²z²)/(S_p w²) per
        component differs between two visibilities by s²/S_p · (1/w_v² − 1/w_c²), so the corrected MSE is
        1/φ + s²/S_p · (1/w_v² − 1/w_c²).

    Returns
    -------
    VerifiedStamps
        Arrays of shape (n,).
    """
    n = len(stamps)
    nodes = np.array([s.node for s in stamps], dtype=np.int64)
    rounds = np.array([s.round for s in stamps], dtype=np.int64)
    claim_phi = np.array([s.phi for s in stamps], dtype=np.float64)
    claim_qfi = np.array([s.qfi for s in stamps], dtype=np.float64)
    claim_fid = np.array([s.fidelity for s in stamps], dtype=np.float64)
    claim_shots = np.array([s.shots for s in stamps], dtype=np.float64)

    measured, bound = _fidelity_references(measured_fidelity, fidelity_bound, n)
    qfi_cap = np.broadcast_to(check_array("max_qfi", max_qfi, ndim=np.ndim(max_qfi), low=0.0), (n,))
    phi_rtol = check_real("phi_rtol", phi_rtol, low=0.0)

    fid_high = claim_fid > bound
    fidelity = np.where(fid_high, measured, claim_fid)
    qfi_high = claim_qfi > qfi_cap
    qfi = np.minimum(claim_qfi, qfi_cap)
    if assigned_shots is None:
        shots_high = np.zeros(n, dtype=bool)
        shots = claim_shots
    else:
        assigned = np.broadcast_to(
            check_array("assigned_shots", assigned_shots, ndim=np.ndim(assigned_shots), low=1.0),
            (n,),
        )
        shots_high = claim_shots > assigned
        shots = np.minimum(claim_shots, assigned)
    if phi_cap is None and mse_payload is None:
        recomputed = stamp_weight(shots, qfi, werner_from_fidelity(fidelity))
    else:
        recomputed = _verified_mse_phi(claim_phi, claim_fid, fidelity, phi_cap, mse_payload, n)
    phi_high = claim_phi > recomputed * (1.0 + phi_rtol)
    # A node may understate its own confidence (it only lowers its weight); it can never overstate it.
    phi = np.minimum(claim_phi, recomputed)

    if current_round is None:
        stale = future = np.zeros(n, dtype=bool)
    else:
        current_round = check_int("current_round", current_round, low=0)
        stale, future = rounds < current_round, rounds > current_round
    accepted = ~(stale | future)
    phi = np.where(accepted, phi, 0.0)

    flags = (
        (fid_high, StampIssue.FIDELITY_ABOVE_BOUND),
        (qfi_high, StampIssue.QFI_ABOVE_NOISE_BOUND),
        (shots_high, StampIssue.SHOTS_ABOVE_ASSIGNED),
        (phi_high, StampIssue.PHI_INCONSISTENT),
        (stale, StampIssue.STALE_ROUND),
        (future, StampIssue.FUTURE_ROUND),
    )
    table = np.stack([f for f, _ in flags], axis=1) if n else np.zeros((0, len(flags)), dtype=bool)
    issues = tuple(tuple(issue for (_, issue), hit in zip(flags, row) if hit) for row in table)
    return VerifiedStamps(
        nodes=nodes,
        phi=phi,
        fidelity=fidelity,
        qfi=qfi,
        shots=shots.astype(np.int64),
        accepted=accepted,
        issues=issues,
    )


def verify_stamp(
    stamp: FidelityStamp,
    measured_fidelity: float,
    fidelity_bound: float,
    max_qfi: float,
    *,
    assigned_shots: int | None = None,
    current_round: int | None = None,
    phi_rtol: float = 1e-9,
) -> VerifiedStamp:
    """Verify one stamp; see :func:`verify_stamps` for the rules and units.

    Examples
    --------
    A node claims F = 1 on a link the broker measured at 0.85 (upper bound 0.88): its φ is recomputed at 0.85.

    >>> s = FidelityStamp(node=3, round=7, phi=512.0, qfi=1.0, fidelity=1.0, shots=512, nonce=b"n")
    >>> v = verify_stamp(s, measured_fidelity=0.85, fidelity_bound=0.88, max_qfi=1.0)
    >>> round(v.phi, 6), v.issues[0].name
    (327.68, 'FIDELITY_ABOVE_BOUND')
    """
    out = verify_stamps(
        [stamp],
        measured_fidelity,
        fidelity_bound,
        max_qfi,
        assigned_shots=assigned_shots,
        current_round=current_round,
        phi_rtol=phi_rtol,
    )
    return VerifiedStamp(
        node=stamp.node,
        round=stamp.round,
        phi=float(out.phi[0]),
        fidelity=float(out.fidelity[0]),
        qfi=float(out.qfi[0]),
        shots=int(out.shots[0]),
        accepted=bool(out.accepted[0]),
        issues=out.issues[0],
    )


def _fidelity_references(
    measured_fidelity, fidelity_bound, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The broker's fidelity estimate and its upper bound per stamp, (n,) each, checked (bound >= estimate)."""
    measured, bound = (
        np.broadcast_to(check_array(name, v, ndim=np.ndim(v), low=0.25, high=1.0), (n,))
        for name, v in (
            ("measured_fidelity", measured_fidelity),
            ("fidelity_bound", fidelity_bound),
        )
    )
    if np.any(bound < measured):
        k = int(np.argmax(bound < measured))
        raise ValidationError(
            f"fidelity_bound must be in [measured_fidelity, 1] = [{measured[k]:g}, 1], got {bound[k]:g} (stamp {k})"
        )
    return measured, bound


def _verified_mse_phi(claim_phi, claim_fid, fidelity, phi_cap, mse_payload, n: int) -> np.ndarray:
    """The largest φ a predicted-MSE stamp may keep: its claim corrected to the verified fidelity, then capped."""
    cap = np.full(n, np.inf) if phi_cap is None else np.asarray(phi_cap, dtype=np.float64)
    cap = np.broadcast_to(cap, (n,))
    if np.any(np.isnan(cap)) or np.any(cap < 0):
        raise ValidationError(f"phi_cap must be in [0, inf], got {phi_cap!r}")
    k = np.broadcast_to(np.zeros(n) if mse_payload is None else mse_payload, (n,))
    k = check_array("mse_payload", k, ndim=1, low=0.0)
    w_used, w_claim = werner_from_fidelity(fidelity), werner_from_fidelity(claim_fid)
    with np.errstate(divide="ignore", invalid="ignore"):
        extra = np.where(w_used < w_claim, k * (1.0 / w_used**2 - 1.0 / w_claim**2), 0.0)
        corrected = np.where(np.isfinite(extra), 1.0 / (1.0 / claim_phi + extra), 0.0)
    return np.minimum(corrected, cap)


def cap_weights(phi: np.ndarray, cap_c: float) -> np.ndarray:
    """Normalised weights :math:`w_k \\propto \\varphi_k` subject to :math:`w_k \\le c/|A|`.

    :math:`|A|` is the number of entries with φ > 0 (zero-φ entries get weight 0). The cap is met by water-filling:
    the largest weights are set to c/|A| and the remaining mass is shared in proportion to φ among the others, i.e.
    :math:`w_k = \\min(c/|A|, \\lambda \\varphi_k)` with λ chosen so that :math:`\\sum_k w_k = 1`. Vectorised: one sort
    and one cumulative sum.

    Parameters
    ----------
    phi : ndarray (n,)
        Verified φ (>= 0, at least one > 0).
    cap_c : float
        c >= 1 (c = 1 gives uniform weights over the positive entries).

    Returns
    -------
    ndarray (n,)
        Weights summing to 1, each <= c/|A|.

    Examples
    --------
    >>> cap_weights(np.array([8.0, 1.0, 1.0]), 1.5).round(3).tolist()
    [0.5, 0.25, 0.25]
    """
    p = check_array("phi", phi, ndim=1, low=0.0)
    cap_c = check_real("cap_c", cap_c, low=1.0)
    scaled = (
        p / p.max() if p.size and p.max() > 0 else p
    )  # max 1: no overflow below; < 1e-308 of it counts as 0
    n_pos = int((scaled > 0).sum())
    if n_pos == 0:
        raise ValidationError(
            f"phi must have at least one positive entry, got {p.size} entries all zero"
        )
    cap = cap_c / n_pos
    order = np.argsort(-scaled, kind="stable")
    ps = scaled[order][:n_pos]  # descending, positive part
    tail = np.cumsum(ps[::-1])[::-1]  # tail[j] = sum_{i >= j} ps[i]
    j = np.arange(n_pos)
    # First j (number capped) whose scale keeps the largest uncapped weight under the cap; j = n_pos - 1 always
    # qualifies since c >= 1. A subnormal tail gives lam = inf: those entries are then simply capped.
    with np.errstate(over="ignore"):
        lam = (1.0 - j * cap) / tail
        ok = lam * ps <= cap * (1.0 + 1e-12)
        ok[-1] = True
        n_capped = int(np.argmax(ok))
        ws = np.minimum(lam[n_capped] * ps, cap)
    ws[:n_capped] = cap
    w = np.zeros_like(p)
    w[order[:n_pos]] = ws
    return w / w.sum()
