r"""The Byzantine adversary of Definition 4 and its attacks (SPEC §6).

:math:`f` of :math:`N` nodes are controlled by one coordinating adversary that knows every honest update of the
round. Each attack is a small object with a config ``name`` and the ``surface`` of the round it acts on:

=================  =============================================================  ==========================
surface            call                                                           attacks
=================  =============================================================  ==========================
``gradient``       ``attack(honest (h, d), f, rng[, context=RoundContext])``      sign-flip, scaled-negative-
                   ``-> (f, d) or None`` (None: behave honestly this round)       mean, alie, ipm, gaussian,
                                                                                  adaptive
``equivocation``   ``attack(honest (h, d), f, n_receivers, rng) -> (r, f, d)``    equivocation
``data``           ``attack.poison(labels (m,), n_classes, rng) -> (m,)``         label-flip
``stamp``          ``attack.claim(StampClaims) -> StampClaims``                   stamp-inflation
``message``        ``attack.inject(ChannelView, rng) -> list[bytes]``             replay, forgery,
                                                                                  impersonation
``demand``         ``attack.demand(requested (f,)) -> (f,)``                      pair-hoarding
``state``          ``attack.depolarise(p (f,)) -> (f,)``: a split circuit's QPU   scramble-state
                   corrupts the state it holds and forwards (SPEC §7)
=================  =============================================================  ==========================

Below, :math:`g_1, \dots, g_h` are the honest updates, :math:`\mu = \frac1h\sum_i g_i` their mean and
:math:`\sigma` their coordinate-wise (population) standard deviation. All :math:`f` Byzantine nodes send the same
vector unless stated. :class:`CoordinatedAttack` composes several attacks (one per surface, or several gradient
attacks splitting the Byzantine nodes between them); :func:`make_adversary` builds it from config names.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ceas._lazy import lazy_import
from ceas.errors import ValidationError
from ceas.registry import Registry
from ceas.security.mac import TAG_BYTES
from ceas.security.messages import (
    DIGEST_BYTES,
    Envelope,
    MalformedMessage,
    decode_envelope,
)

stats = lazy_import("scipy.stats")

__all__ = [
    "ALIE",
    "ATTACKS",
    "IPM",
    "SURFACES",
    "Adaptive",
    "Attack",
    "ChannelView",
    "CoordinatedAttack",
    "DataAttack",
    "DemandAttack",
    "Equivocation",
    "EquivocationAttack",
    "Forgery",
    "Gaussian",
    "GradientAttack",
    "Impersonation",
    "LabelFlip",
    "MessageAttack",
    "PairHoarding",
    "Replay",
    "RoundContext",
    "ScaledNegativeMean",
    "ScrambleState",
    "SignFlip",
    "StampAttack",
    "StampClaims",
    "StampInflation",
    "alie_z",
    "choose_byzantine",
    "make_adversary",
    "make_attack",
    "register_attack",
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Surface = Literal["gradient", "equivocation", "data", "stamp", "message", "demand", "agreement", "state"]
SURFACES: tuple[str, ...] = (
    "gradient",
    "equivocation",
    "data",
    "stamp",
    "message",
    "demand",
    "agreement",  # ceas.security.agreement_attacks: runs with consensus.trusted_broker = false
    "state",  # a split circuit's Byzantine QPU (partitions.scheme = unitary or circuit)
)
Aggregator = Callable[[np.ndarray], np.ndarray]
"""A robust rule as the adaptive attack sees it: updates (n, d) -> aggregate (d,)."""


# ----------------------------------------------------------------------------------------------------------------
# Protocols


@runtime_checkable
class Attack(Protocol):
    """Anything with a config ``name`` and the ``surface`` it attacks."""

    name: str
    surface: str


@dataclass(frozen=True)
class RoundContext:
    """What a gradient attack may know about the round besides the honest updates (Definition 4's adversary sees
    the schedule): a strike-later attack reads ``round`` instead of counting its own calls, which a resume resets.

    Attributes
    ----------
    round : int
        The round index t (0-based), the same after a resume.
    byzantine : ndarray of int64, shape (f,)
        Ids of the Byzantine nodes seated this round, in the order of the rows the attack returns.
    participants : ndarray of int64, shape (m,)
        Ids of every participant of the round (honest and Byzantine).
    own : ndarray, shape (f, d), or None
        The gradients the Byzantine nodes computed on their own shards: what they send when the attack abstains.
    """

    round: int
    byzantine: np.ndarray
    participants: np.ndarray
    own: np.ndarray | None = None


@runtime_checkable
class GradientAttack(Protocol):
    """Byzantine updates from the honest ones: ``(honest (h, d), f, rng) -> (f, d)``.

    An attack may also take a keyword ``context`` (:class:`RoundContext`: the round index and the Byzantine nodes
    seated) and may return None to abstain, i.e. to let its Byzantine nodes behave honestly this round. Attacks
    without the keyword are called as before.
    """

    name: str
    surface: str

    def __call__(
        self, honest: np.ndarray, f: int, rng: np.random.Generator
    ) -> np.ndarray | None: ...


def takes_context(attack: object) -> bool:
    """Whether a gradient attack's call accepts the keyword ``context`` (or any keyword)."""
    try:
        params = inspect.signature(attack).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        or (p.name == "context" and p.kind is not inspect.Parameter.POSITIONAL_ONLY)
        for p in params
    )


@runtime_checkable
class EquivocationAttack(Protocol):
    """A different set of Byzantine updates per receiver: ``(honest, f, n_receivers, rng) -> (r, f, d)``."""

    name: str
    surface: str

    def __call__(
        self, honest: np.ndarray, f: int, n_receivers: int, rng: np.random.Generator
    ) -> np.ndarray: ...


@runtime_checkable
class DataAttack(Protocol):
    """Poisons a Byzantine node's training labels (shape (m,), integers in [0, n_classes))."""

    name: str
    surface: str

    def poison(
        self, labels: np.ndarray, n_classes: int, rng: np.random.Generator
    ) -> np.ndarray: ...


@runtime_checkable
class StampAttack(Protocol):
    """Rewrites what Byzantine nodes claim in their fidelity stamps."""

    name: str
    surface: str

    def claim(self, claims: StampClaims) -> StampClaims: ...


@runtime_checkable
class MessageAttack(Protocol):
    """A channel adversary's injected messages for one round (wire bytes)."""

    name: str
    surface: str

    def inject(self, view: ChannelView, rng: np.random.Generator) -> list[bytes]: ...


@runtime_checkable
class DemandAttack(Protocol):
    """Rewrites the number of pairs Byzantine nodes request from the scheduler."""

    name: str
    surface: str

    def demand(self, requested: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class StampClaims:
    """What the Byzantine nodes claim in their stamps (Definition 1).

    Attributes
    ----------
    fidelity : ndarray, shape (f,)
        Claimed pair fidelity :math:`\\bar F_k` of the payload link, in [1/4, 1].
    qfi : ndarray, shape (f,)
        Claimed node QFI summary :math:`\\hat F_{Q,k}` (mean QFI-matrix diagonal, per parameter), >= 0.
    """

    fidelity: np.ndarray
    qfi: np.ndarray


@dataclass(frozen=True)
class ChannelView:
    """What the channel adversary sees in one round.

    Attributes
    ----------
    round : int
        The current round.
    observed : tuple of bytes
        Messages sent on the channel this round (honest and Byzantine).
    history : tuple of bytes
        Messages of earlier rounds.
    honest_nodes, byzantine_nodes : tuple of int
        Node ids.
    """

    round: int
    observed: tuple[bytes, ...]
    history: tuple[bytes, ...]
    honest_nodes: tuple[int, ...]
    byzantine_nodes: tuple[int, ...]


# ----------------------------------------------------------------------------------------------------------------
# Shared checks


def _check_f(f: object) -> int:
    if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or f < 0:
        raise ValidationError(f"f (Byzantine nodes) must be an integer >= 0, got {f!r}")
    return int(f)


def _honest_mean(honest: object, f: object) -> tuple[np.ndarray, np.ndarray, int]:
    arr = np.asarray(honest, dtype=float)
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValidationError(
            f"honest updates must be a 2-D array (h, d) with h >= 1, got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValidationError("honest updates must be finite")
    return arr, arr.mean(axis=0), _check_f(f)


def _repeat(vector: np.ndarray, f: int) -> np.ndarray:
    return np.tile(vector, (f, 1))


# ----------------------------------------------------------------------------------------------------------------
# Gradient attacks


@dataclass(frozen=True)
class SignFlip:
    r"""Sign-flip: every Byzantine node sends :math:`-\mu` (as ByzFL's SignFlipping)."""

    name: ClassVar[str] = "sign-flip"
    surface: ClassVar[str] = "gradient"

    def __call__(self, honest: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
        _, mu, f = _honest_mean(honest, f)
        return _repeat(-mu, f)

    @classmethod
    def from_params(cls, params: BaseModel, **_: object) -> SignFlip:
        return cls()


@dataclass(frozen=True)
class ScaledNegativeMean:
    r"""Scaled negative mean: :math:`-c\,\mu` with :math:`c` = ``scale`` > 0.

    With :math:`c > h/f` it reverses a plain mean of :math:`h` honest and :math:`f` Byzantine updates.
    """

    scale: float = 10.0
    name: ClassVar[str] = "scaled-negative-mean"
    surface: ClassVar[str] = "gradient"

    class Params(_Params):
        negative_scale: float = Field(
            10.0,
            gt=0.0,
            description="scaled-negative-mean sends -c*mu; [D] c = 10 overwhelms a plain mean of 40 honest updates "
            "(10 * 10 > 40) while being an order of magnitude outside the honest cloud.",
        )

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValidationError(f"scale must be > 0, got {self.scale!r}")

    def __call__(self, honest: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
        _, mu, f = _honest_mean(honest, f)
        return _repeat(-self.scale * mu, f)

    @classmethod
    def from_params(cls, params: BaseModel, **_: object) -> ScaledNegativeMean:
        return cls(params.negative_scale)


def alie_z(n: int, f: int) -> float:
    r"""ALIE's scale :math:`z = \Phi^{-1}((n - s)/n)` with :math:`s = \lfloor n/2 + 1\rfloor - f`.

    :math:`s` is the number of honest nodes the Byzantine vector must look closer to than the mean, so that it
    survives majority-based rules (Baruch, Baruch & Goldberg, "A Little Is Enough", NeurIPS 2019).

    Raises
    ------
    ValidationError
        Unless :math:`0 < s < n` (e.g. :math:`f \ge \lfloor n/2 + 1 \rfloor`).

    Examples
    --------
    >>> round(alie_z(50, 10), 4)   # s = 16, Phi^-1(0.68)
    0.4677
    """
    s = (n // 2 + 1) - f
    if not 0 < s < n:
        raise ValidationError(
            f"ALIE needs 0 < s = floor(n/2 + 1) - f < n, got s = {s} for n = {n} nodes and f = {f} Byzantine"
        )
    return float(stats.norm.ppf((n - s) / n))


@dataclass(frozen=True)
class ALIE:
    r"""A little is enough: :math:`\mu - z\,\sigma` (Baruch, Baruch & Goldberg, NeurIPS 2019).

    :math:`z` is given, or derived by :func:`alie_z` from

    * the **network** (``network = (N, f)``: all N nodes and all f Byzantine nodes of the federation), the form of
      the paper, whose every worker takes part in every round: at 10 of 50, :math:`z = \Phi^{-1}(0.68) = 0.468`
      whatever the round seats; the default of the config (``security.attack_params.alie.alie_form``);
    * the **round** (``network = None``: n = h + f of the round's participants, f of them Byzantine): with 10 of 50
      participants and one Byzantine node seated, s = 5 and :math:`z = \Phi^{-1}(0.5) = 0`, the honest mean.

    :math:`\mu` and :math:`\sigma` are always the round's honest updates (all the adversary can see).
    """

    z: float | None = None
    network: tuple[int, int] | None = None
    name: ClassVar[str] = "alie"
    surface: ClassVar[str] = "gradient"

    class Params(_Params):
        alie_z: float | None = Field(
            None,
            gt=0.0,
            description="ALIE sends mu - z*sigma; None derives z from n and f as in Baruch et al. (NeurIPS 2019): "
            "s = floor(n/2 + 1) - f, z = Phi^-1((n - s)/n), with n and f as alie_form says.",
        )
        alie_form: Literal["network", "round"] = Field(
            "network",
            description="where ALIE's n and f come from when alie_z is None: 'network' = all N nodes and all f "
            "Byzantine nodes (the literature's form; z = 0.468 at 10 of 50), 'round' = the round's participants "
            "(z = 0, the honest mean, when one Byzantine node is seated). [D] network: issue 11 measured the "
            "round form at z = 0 in 27 % of paper rounds, weaker than the attack it is named after.",
        )

    def __post_init__(self) -> None:
        if self.z is not None and not self.z > 0:
            raise ValidationError(f"z must be > 0 or None, got {self.z!r}")
        if self.network is not None and self.network[1] > 0:  # with no Byzantine node it never runs
            n, f = self.network
            alie_z(int(n), int(f))  # raises unless 0 < s < n

    def __call__(self, honest: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
        arr, mu, f = _honest_mean(honest, f)
        if f == 0:
            return np.empty((0, arr.shape[1]))
        if self.z is not None:
            z = self.z
        elif self.network is not None:
            z = alie_z(*self.network)
        else:
            n = arr.shape[0] + f
            # With a Byzantine majority in the round (s <= 0) the formula has no solution; the adversary then
            # uses its largest meaningful scale, s = 1 (it needs no honest node to look like it any more).
            z = alie_z(n, f) if (n // 2 + 1) - f > 0 else float(stats.norm.ppf((n - 1) / n))
        return _repeat(mu - z * arr.std(axis=0), f)

    @classmethod
    def from_params(
        cls, params: BaseModel, *, network: tuple[int, int] | None = None, **_: object
    ) -> ALIE:
        if params.alie_z is not None or params.alie_form == "round":
            return cls(params.alie_z)
        if network is None:
            raise ValidationError(
                "attack 'alie' with alie_form = 'network' needs the network's size and Byzantine count: pass "
                "network=(N, f) to make_attack/make_adversary, or set alie_form = 'round' or alie_z"
            )
        return cls(None, (int(network[0]), int(network[1])))


@dataclass(frozen=True)
class IPM:
    r"""Inner-product manipulation: :math:`-\varepsilon\,\mu` (Xie, Koyejo & Gupta, UAI 2019).

    For the mean of :math:`h` honest and :math:`f` Byzantine updates,
    :math:`\langle \bar g, \mu\rangle = \frac{h - f\varepsilon}{h + f}\|\mu\|^2 < 0` once :math:`\varepsilon > h/f`;
    small :math:`\varepsilon` instead hides near the honest cloud and defeats distance-based rules.
    """

    epsilon: float = 0.1
    name: ClassVar[str] = "ipm"
    surface: ClassVar[str] = "gradient"

    class Params(_Params):
        ipm_epsilon: float = Field(
            0.1,
            gt=0.0,
            description="IPM sends -eps*mu; eps = 0.1 as in Xie et al. (UAI 2019): small enough to stay inside the "
            "honest cloud, so distance-based rules keep it, yet it turns the mean's inner product with mu negative.",
        )

    def __post_init__(self) -> None:
        if not self.epsilon > 0:
            raise ValidationError(f"epsilon must be > 0, got {self.epsilon!r}")

    def __call__(self, honest: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
        _, mu, f = _honest_mean(honest, f)
        return _repeat(-self.epsilon * mu, f)

    @classmethod
    def from_params(cls, params: BaseModel, **_: object) -> IPM:
        return cls(params.ipm_epsilon)


@dataclass(frozen=True)
class Gaussian:
    r"""Gaussian: each Byzantine node sends an independent draw of :math:`\mathcal N(m\mathbf 1, s^2 I)`."""

    mean: float = 0.0
    std: float = 1.0
    name: ClassVar[str] = "gaussian"
    surface: ClassVar[str] = "gradient"

    class Params(_Params):
        gaussian_mean: float = Field(
            0.0, description="gaussian attack: mean of N(m, s^2 I); ByzFL default 0."
        )

        gaussian_std: float = Field(
            1.0, gt=0.0, description="gaussian attack: std s; ByzFL default 1."
        )

    def __post_init__(self) -> None:
        if not self.std > 0 or not np.isfinite(self.mean):
            raise ValidationError(
                f"gaussian needs finite mean and std > 0, got mean={self.mean!r}, std={self.std!r}"
            )

    def __call__(self, honest: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
        arr, _, f = _honest_mean(honest, f)
        return rng.normal(self.mean, self.std, size=(f, arr.shape[1]))

    @classmethod
    def from_params(cls, params: BaseModel, **_: object) -> Gaussian:
        return cls(params.gaussian_mean, params.gaussian_std)


@dataclass(frozen=True)
class Adaptive:
    r"""Adaptive attack that knows the aggregation rule (Shejwalkar & Houmansadr, NDSS 2021, "AGR-tailored").

    All Byzantine nodes send :math:`\mu + \gamma^\star p`, where :math:`p` is :math:`-\mu/\|\mu\|` (``"unit"``),
    :math:`-\mathrm{sign}(\mu)` (``"sign"``) or :math:`-\sigma` (``"std"``), and

    .. math:: \gamma^\star = \arg\max_{\gamma \in \Gamma}
              \bigl\| \mathrm{AGR}(g_1, \dots, g_h, \underbrace{\mu + \gamma p, \dots}_{f}) - \mu \bigr\|,
              \qquad \Gamma = \{\gamma_{\max} 2^{-j} : j = 0, \dots, \text{steps} - 1\},

    i.e. the scale that moves the rule's output furthest from the honest mean; a scale large enough for the rule to
    discard the vector (Krum, trimming) does no damage, so the search stays inside the rule's acceptance. Ties go to
    the larger scale.

    Parameters
    ----------
    aggregator : callable
        The rule under attack, ``(n, d) -> (d,)``, called with the :math:`f` Byzantine rows **last**.
    direction : {"unit", "sign", "std"}
    gamma_max : float
    steps : int
    """

    aggregator: Aggregator
    direction: Literal["unit", "sign", "std"] = "unit"
    gamma_max: float = 100.0
    steps: int = 24
    name: ClassVar[str] = "adaptive"
    surface: ClassVar[str] = "gradient"

    class Params(_Params):
        adaptive_direction: Literal["unit", "sign", "std"] = Field(
            "unit",
            description="adaptive: perturbation p in mu + gamma*p: -mu/|mu| (unit), -sign(mu) or -std "
            "(Shejwalkar & Houmansadr, NDSS 2021).",
        )

        adaptive_gamma_max: float = Field(
            100.0,
            gt=0.0,
            description="adaptive: largest scale gamma tried; [D] far past any honest norm.",
        )

        adaptive_steps: int = Field(
            24,
            ge=1,
            le=64,
            description="adaptive: scales tried, gamma_max * 2^-j for j < steps; [D] 24 halvings reach 6e-6 gamma_max.",
        )

    def __post_init__(self) -> None:
        if not callable(self.aggregator):
            raise ValidationError(
                f"the adaptive attack needs the aggregation rule as a callable (n, d) -> (d,), "
                f"got {type(self.aggregator).__name__}"
            )
        if self.direction not in ("unit", "sign", "std"):
            raise ValidationError(
                f"direction must be one of ['sign', 'std', 'unit'], got {self.direction!r}"
            )
        if not self.gamma_max > 0 or not (isinstance(self.steps, int) and self.steps >= 1):
            raise ValidationError(
                f"gamma_max must be > 0 and steps an integer >= 1, got {self.gamma_max!r} and {self.steps!r}"
            )

    def perturbation(self, honest: np.ndarray) -> np.ndarray:
        """The direction :math:`p`, shape (d,)."""
        arr, mu, _ = _honest_mean(honest, 0)
        if self.direction == "unit":
            norm = np.linalg.norm(mu)
            return -mu / norm if norm > 0 else np.zeros_like(mu)
        if self.direction == "sign":
            return -np.sign(mu)
        return -arr.std(axis=0)

    def damage(self, honest: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
        """Scales tried (decreasing) and the damage :math:`\\|\\mathrm{AGR} - \\mu\\|` of each, both shape (steps,)."""
        arr, mu, f = _honest_mean(honest, f)
        p = self.perturbation(arr)
        gammas = self.gamma_max * 2.0 ** -np.arange(self.steps)
        damage = np.empty(self.steps)
        for j, gamma in enumerate(gammas):  # one aggregator call per scale; the rule is a black box
            agg = np.asarray(
                self.aggregator(np.vstack([arr, _repeat(mu + gamma * p, f)])), dtype=float
            )
            damage[j] = np.linalg.norm(agg - mu)
        return gammas, damage

    def scale(self, honest: np.ndarray, f: int) -> float:
        """The chosen scale :math:`\\gamma^\\star`."""
        gammas, damage = self.damage(honest, f)
        return float(gammas[int(np.argmax(damage))])

    def __call__(self, honest: np.ndarray, f: int, rng: np.random.Generator) -> np.ndarray:
        arr, mu, f = _honest_mean(honest, f)
        if f == 0:
            return np.empty((0, arr.shape[1]))
        return _repeat(mu + self.scale(arr, f) * self.perturbation(arr), f)

    @classmethod
    def from_params(
        cls, params: BaseModel, *, aggregator: Aggregator | None = None, **_: object
    ) -> Adaptive:
        if aggregator is None:
            raise ValidationError(
                "attack 'adaptive' needs the aggregation rule: pass aggregator=callable (n, d) -> (d,)"
            )
        return cls(
            aggregator, params.adaptive_direction, params.adaptive_gamma_max, params.adaptive_steps
        )


# ----------------------------------------------------------------------------------------------------------------
# Equivocation, data, stamps, demand


@dataclass(frozen=True)
class Equivocation:
    r"""Equivocation: a different update to different receivers.

    A random ``split`` fraction of the receivers (at least one, and at least one spared when r >= 2) gets the
    inner attack's updates; the rest get :math:`\mu`, so each receiver alone sees a plausible round.
    Returns shape (n_receivers, f, d).
    """

    inner: GradientAttack = field(default_factory=SignFlip)
    split: float = 0.5
    name: ClassVar[str] = "equivocation"
    surface: ClassVar[str] = "equivocation"

    class Params(_Params):
        equivocation_split: float = Field(
            0.5,
            gt=0.0,
            lt=1.0,
            description="equivocation: fraction of receivers sent the malicious update (the rest get the honest "
            "mean); [D] 1/2 maximises disagreement between receivers.",
        )

        equivocation_inner: Literal[
            "sign-flip", "scaled-negative-mean", "alie", "ipm", "gaussian"
        ] = Field(
            "sign-flip",
            description="equivocation: the gradient attack sent to the targeted receivers.",
        )

    def __post_init__(self) -> None:
        if not 0.0 < self.split < 1.0:
            raise ValidationError(f"split must be in (0, 1), got {self.split!r}")

    def __call__(
        self, honest: np.ndarray, f: int, n_receivers: int, rng: np.random.Generator
    ) -> np.ndarray:
        arr, mu, f = _honest_mean(honest, f)
        if (
            isinstance(n_receivers, bool)
            or not isinstance(n_receivers, (int, np.integer))
            or n_receivers < 1
        ):
            raise ValidationError(f"n_receivers must be an integer >= 1, got {n_receivers!r}")
        n_targeted = int(np.clip(round(self.split * n_receivers), 1, max(n_receivers - 1, 1)))
        targeted = rng.permutation(n_receivers)[:n_targeted]
        out = np.broadcast_to(mu, (n_receivers, f, arr.shape[1])).copy()
        out[targeted] = self.inner(arr, f, rng)
        return out

    @classmethod
    def from_params(cls, params: BaseModel, **context: object) -> Equivocation:
        return cls(
            make_attack(params.equivocation_inner, None, **context), params.equivocation_split
        )


@dataclass(frozen=True)
class LabelFlip:
    """Label flipping (data poisoning): :math:`y \\mapsto C - 1 - y` on the Byzantine nodes' shards."""

    name: ClassVar[str] = "label-flip"
    surface: ClassVar[str] = "data"

    def poison(self, labels: np.ndarray, n_classes: int, rng: np.random.Generator) -> np.ndarray:
        y = np.asarray(labels)
        if (
            isinstance(n_classes, bool)
            or not isinstance(n_classes, (int, np.integer))
            or n_classes < 2
        ):
            raise ValidationError(f"n_classes must be an integer >= 2, got {n_classes!r}")
        if y.dtype.kind not in "iu" or np.any(y < 0) or np.any(y >= n_classes):
            raise ValidationError(
                f"labels must be integers in [0, {n_classes}), got {labels!r:.80}"
            )
        return (n_classes - 1) - y

    @classmethod
    def from_params(cls, params: BaseModel, **_: object) -> LabelFlip:
        return cls()


@dataclass(frozen=True)
class StampInflation:
    """Stamp inflation: every Byzantine node claims pair fidelity 1 and the largest QFI (``qfi`` per parameter)."""

    qfi: float = 1.0
    name: ClassVar[str] = "stamp-inflation"
    surface: ClassVar[str] = "stamp"

    class Params(_Params):
        stamp_qfi: float = Field(
            1.0,
            gt=0.0,
            description="stamp-inflation claims this QFI per parameter; 1 is the largest a Pauli-rotation parameter "
            "allows (F_Q = 4 Var(sigma/2) <= 1).",
        )

    def claim(self, claims: StampClaims) -> StampClaims:
        fidelity = np.asarray(claims.fidelity, dtype=float)
        return StampClaims(
            np.ones_like(fidelity), np.full(np.shape(claims.qfi), self.qfi, dtype=float)
        )

    @classmethod
    def from_params(cls, params: BaseModel, **_: object) -> StampInflation:
        return cls(params.stamp_qfi)


@dataclass(frozen=True)
class PairHoarding:
    """Pair hoarding: Byzantine nodes request :math:`\\lceil m \\cdot n \\rceil` pairs where they need :math:`n`."""

    multiplier: float = 4.0
    name: ClassVar[str] = "pair-hoarding"
    surface: ClassVar[str] = "demand"

    class Params(_Params):
        hoarding_multiplier: float = Field(
            4.0,
            ge=1.0,
            description="pair-hoarding: Byzantine nodes request this multiple of the pairs they need; [D] 4x drains a "
            "20-slot link memory (SPEC §4) in a quarter of the time.",
        )

    def __post_init__(self) -> None:
        if not self.multiplier >= 1:
            raise ValidationError(f"multiplier must be >= 1, got {self.multiplier!r}")

    def demand(self, requested: np.ndarray) -> np.ndarray:
        req = np.asarray(requested)
        if req.dtype.kind not in "iuf" or np.any(~np.isfinite(req)) or np.any(req < 0):
            raise ValidationError(f"requested pairs must be finite and >= 0, got {requested!r:.80}")
        return np.ceil(req * self.multiplier).astype(np.int64)

    @classmethod
    def from_params(cls, params: BaseModel, **_: object) -> PairHoarding:
        return cls(params.hoarding_multiplier)


@dataclass(frozen=True)
class ScrambleState:
    r"""State scrambling in a split circuit (SPEC §7): a Byzantine QPU depolarises the state it holds after each of
    its layers with strength :math:`s` on top of its own noise, :math:`p \mapsto 1 - (1-p)(1-s)` -- at the unitary
    level it forwards (nearly) the maximally mixed state to the next QPU, at the circuit level it scrambles its qubits
    every layer. Every QPU of its replica then computes, and honestly reports, a gradient of a corrupted circuit."""

    strength: float = 1.0
    name: ClassVar[str] = "scramble-state"
    surface: ClassVar[str] = "state"

    class Params(_Params):
        scramble_strength: float = Field(
            1.0,
            ge=0.0,
            le=1.0,
            description="scramble-state: depolarising strength s a Byzantine QPU adds to its block; [D] 1 = the "
            "state it forwards carries nothing",
        )

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ValidationError(f"strength must be in [0, 1], got {self.strength!r}")

    def depolarise(self, p: np.ndarray) -> np.ndarray:
        return 1.0 - (1.0 - np.asarray(p, float)) * (1.0 - self.strength)

    @classmethod
    def from_params(cls, params: BaseModel, **_: object) -> ScrambleState:
        return cls(params.scramble_strength)


# ----------------------------------------------------------------------------------------------------------------
# Channel attacks (they must all be rejected by ceas.security.messages.Verifier)


def _count(view: ChannelView, per_node: int) -> int:
    return per_node * len(view.byzantine_nodes)


def _pick(items: Sequence[object], n: int, rng: np.random.Generator) -> list:
    return [items[i] for i in rng.integers(0, len(items), size=n)] if items and n else []


@dataclass(frozen=True)
class Replay:
    """Replay: resend valid messages seen earlier (from earlier rounds, else this round's)."""

    per_node: int = 1
    name: ClassVar[str] = "replay"
    surface: ClassVar[str] = "message"

    class Params(_Params):
        injected_per_node: int = Field(
            1,
            ge=0,
            le=1000,
            description="replay/forgery/impersonation: messages injected per Byzantine node per round; [D] one, as "
            "many as an honest node sends.",
        )

    def inject(self, view: ChannelView, rng: np.random.Generator) -> list[bytes]:
        return _pick(view.history or view.observed, _count(view, self.per_node), rng)

    @classmethod
    def from_params(cls, params: BaseModel, **_: object) -> Replay:
        return cls(params.injected_per_node)


def _forge(view: ChannelView, rng: np.random.Generator, template: Envelope | None) -> bytes:
    node = int(_pick(view.honest_nodes, 1, rng)[0]) if view.honest_nodes else 0
    stamp = template.stamp if template is not None else rng.bytes(32)
    # A fresh nonce: an accepted one would be turned away as a replay before the tag is even checked.
    nonce = template.nonce + 1 if template is not None else int(rng.integers(0, 2**16))
    forged = Envelope(view.round, node, nonce, stamp, rng.bytes(DIGEST_BYTES), rng.bytes(TAG_BYTES))
    return forged.to_bytes()


def _decoded(wires: Sequence[bytes]) -> list[Envelope]:
    out = []
    for wire in wires:
        try:
            out.append(decode_envelope(wire))
        except MalformedMessage:
            continue
    return out


@dataclass(frozen=True)
class Forgery:
    """Forgery: a well-formed envelope in an honest node's name, this round, a malicious digest and a guessed tag."""

    per_node: int = 1
    name: ClassVar[str] = "forgery"
    surface: ClassVar[str] = "message"

    class Params(_Params):
        injected_per_node: int = Field(
            1,
            ge=0,
            le=1000,
            description="replay/forgery/impersonation: messages injected per Byzantine node per round; [D] one, as "
            "many as an honest node sends.",
        )

    def inject(self, view: ChannelView, rng: np.random.Generator) -> list[bytes]:
        templates = _decoded(view.observed)
        return [
            _forge(view, rng, t)
            for t in _pick(templates or [None], _count(view, self.per_node), rng)
        ]

    @classmethod
    def from_params(cls, params: BaseModel, **_: object) -> Forgery:
        return cls(params.injected_per_node)


@dataclass(frozen=True)
class Impersonation:
    """Impersonation: a Byzantine node's own validly tagged message, re-addressed as an honest node's.

    Without a Byzantine message to re-address it falls back to :class:`Forgery`.
    """

    per_node: int = 1
    name: ClassVar[str] = "impersonation"
    surface: ClassVar[str] = "message"

    class Params(_Params):
        injected_per_node: int = Field(
            1,
            ge=0,
            le=1000,
            description="replay/forgery/impersonation: messages injected per Byzantine node per round; [D] one, as "
            "many as an honest node sends.",
        )

    def inject(self, view: ChannelView, rng: np.random.Generator) -> list[bytes]:
        own = [e for e in _decoded(view.observed) if e.node in set(view.byzantine_nodes)]
        n = _count(view, self.per_node)
        if not own or not view.honest_nodes:
            return Forgery(self.per_node).inject(view, rng)
        victims = _pick(view.honest_nodes, n, rng)
        return [
            Envelope(e.round, int(v), e.nonce, e.stamp, e.payload_digest, e.tag).to_bytes()
            for e, v in zip(_pick(own, n, rng), victims)
        ]

    @classmethod
    def from_params(cls, params: BaseModel, **_: object) -> Impersonation:
        return cls(params.injected_per_node)


# ----------------------------------------------------------------------------------------------------------------
# Registry and composition


def _check_attack(cls: object) -> None:
    if getattr(cls, "surface", None) not in SURFACES or not hasattr(cls, "from_params"):
        raise ValidationError(
            f"an attack needs a class attribute surface in {list(SURFACES)} and a from_params classmethod, "
            f"got {cls!r}"
        )


ATTACKS: Registry = Registry(
    "attack",
    "security.attacks",
    check=_check_attack,
    initial={
        cls.name: cls
        for cls in (
            SignFlip,
            ScaledNegativeMean,
            ALIE,
            IPM,
            Gaussian,
            LabelFlip,
            StampInflation,
            Replay,
            Forgery,
            Impersonation,
            Equivocation,
            PairHoarding,
            Adaptive,
            ScrambleState,
        )
    },
)
"""Attack classes by config name; each has ``from_params(Params, aggregator=...)`` and, if it has hyperparameters,
a pydantic ``Params`` class attribute (set in a config as ``security.attack_params.<name>``)."""


def register_attack(cls: type) -> type:
    """Class decorator: make an attack available in ``security.attacks`` under ``cls.name``. The class needs
    ``name``, ``surface`` and ``from_params(params, aggregator=..., **context)``; hyperparameters go in a pydantic
    ``Params`` class attribute. Raises ValidationError for a name already taken."""
    return ATTACKS.register(cls)


def make_attack(
    name: str,
    params: Mapping[str, object] | BaseModel | None = None,
    *,
    aggregator: Aggregator | None = None,
    network: tuple[int, int] | None = None,
) -> Attack:
    """The attack registered under ``name``, configured from its hyperparameters ``params`` (defaults if None).

    Parameters
    ----------
    name : str
        A key of :data:`ATTACKS`.
    params : mapping or the attack's Params, optional
    aggregator : callable, optional
        The aggregation rule; required by ``"adaptive"``.
    network : (N, f), optional
        Nodes and Byzantine nodes of the whole federation; required by ``"alie"`` in its network form (the
        default).

    Raises
    ------
    UnknownNameError
        For an unknown name, suggesting the closest valid one.
    """
    cls = ATTACKS.get_plugin(name)
    hyper = ATTACKS.params(name, params, f"security.attack_params.{name}")
    if network is None:
        return cls.from_params(hyper, aggregator=aggregator)
    return cls.from_params(hyper, aggregator=aggregator, network=network)


@dataclass(frozen=True)
class CoordinatedAttack:
    """Several attacks run by one adversary (Definition 4), each on its own surface of the round.

    Gradient attacks split the :math:`f` Byzantine nodes between them in order (``numpy.array_split`` sizes); stamp,
    data and demand attacks apply in sequence; message attacks' injections are concatenated; the first
    equivocation attack decides what each receiver sees. With no attack on a surface, the Byzantine nodes behave
    honestly there (methods return None or their input unchanged).
    """

    attacks: tuple[Attack, ...] = ()

    def __post_init__(self) -> None:
        for attack in self.attacks:
            if not isinstance(attack, Attack) or attack.surface not in SURFACES:
                raise ValidationError(
                    f"each attack needs a name and a surface in {list(SURFACES)}, got {attack!r:.80}"
                )

    @property
    def names(self) -> tuple[str, ...]:
        """Config names of the composed attacks."""
        return tuple(a.name for a in self.attacks)

    def on(self, surface: str) -> tuple[Attack, ...]:
        """The composed attacks acting on ``surface``."""
        return tuple(a for a in self.attacks if a.surface == surface)

    def updates(
        self,
        honest: np.ndarray,
        f: int,
        rng: np.random.Generator,
        *,
        context: RoundContext | None = None,
    ) -> np.ndarray | None:
        """Byzantine updates (f, d), or None if no gradient attack is composed or every one abstains.

        Each attack gets its share of the Byzantine nodes, and with ``context`` (if its call accepts the keyword)
        the round index and the ids of its share. An abstaining attack's share sends ``context.own``: its nodes'
        honest gradients.
        """
        attacks = self.on("gradient")
        if not attacks:
            return None
        f = _check_f(f)
        parts = np.array_split(np.arange(f), len(attacks))
        rows: list[np.ndarray | None] = []
        for attack, part in zip(attacks, parts):
            if context is not None and takes_context(attack):
                share = RoundContext(
                    round=context.round,
                    byzantine=np.asarray(context.byzantine)[part],
                    participants=context.participants,
                    own=None if context.own is None else np.asarray(context.own)[part],
                )
                rows.append(attack(honest, len(part), rng, context=share))
            else:
                rows.append(attack(honest, len(part), rng))
        if all(r is None for r in rows):
            return None
        if any(r is None for r in rows) and (context is None or context.own is None):
            raise ValidationError(
                "a gradient attack abstained (returned None) but the round gave no honest gradients of its "
                "Byzantine nodes (context.own) to send instead"
            )
        return np.vstack(
            [np.asarray(context.own)[part] if r is None else r for r, part in zip(rows, parts)]
        )

    def equivocate(
        self, honest: np.ndarray, f: int, n_receivers: int, rng: np.random.Generator
    ) -> np.ndarray | None:
        """Per-receiver Byzantine updates (r, f, d), or None if no equivocation attack is composed."""
        attacks = self.on("equivocation")
        return attacks[0](honest, f, n_receivers, rng) if attacks else None

    def poison_labels(
        self, labels: np.ndarray, n_classes: int, rng: np.random.Generator
    ) -> np.ndarray:
        """A Byzantine node's training labels after every data attack."""
        for attack in self.on("data"):
            labels = attack.poison(labels, n_classes, rng)
        return labels

    def claims(self, claims: StampClaims) -> StampClaims:
        """Byzantine stamp claims after every stamp attack."""
        for attack in self.on("stamp"):
            claims = attack.claim(claims)
        return claims

    def inject(self, view: ChannelView, rng: np.random.Generator) -> list[bytes]:
        """Messages the channel adversary injects this round."""
        return [wire for attack in self.on("message") for wire in attack.inject(view, rng)]

    def demand(self, requested: np.ndarray) -> np.ndarray:
        """Pairs the Byzantine nodes request after every demand attack."""
        for attack in self.on("demand"):
            requested = attack.demand(requested)
        return requested

    def depolarise(self, p: np.ndarray) -> np.ndarray:
        """Depolarising strengths (f,) of Byzantine QPUs of a split circuit after every state attack."""
        for attack in self.on("state"):
            p = attack.depolarise(p)
        return p


def make_adversary(
    names: Sequence[str],
    params: BaseModel | None = None,
    *,
    aggregator: Aggregator | None = None,
    network: tuple[int, int] | None = None,
) -> CoordinatedAttack:
    """The coordinated adversary running the attacks named in ``names`` (config ``security.attacks``); ``network``
    = (N, f) of the whole federation, for attacks that scale with it (ALIE's network form)."""
    if isinstance(names, str):
        raise ValidationError(f"attack names must be a list of names, got the string {names!r}")
    params = params or {}
    return CoordinatedAttack(
        tuple(
            make_attack(n, params.get(n), aggregator=aggregator, network=network) for n in names
        )
    )


def choose_byzantine(n_nodes: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted ids of the :math:`f = \\lfloor \\text{fraction} \\cdot N \\rfloor` Byzantine nodes, chosen uniformly.

    Returns
    -------
    ndarray of int64, shape (f,)
    """
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, (int, np.integer)) or n_nodes < 1:
        raise ValidationError(f"n_nodes must be an integer >= 1, got {n_nodes!r}")
    if not 0.0 <= fraction < 0.5:
        raise ValidationError(f"byzantine fraction must be in [0, 0.5), got {fraction!r}")
    f = int(np.floor(fraction * n_nodes + 1e-9))
    return np.sort(rng.choice(n_nodes, size=f, replace=False)).astype(np.int64)


# registers the agreement attacks (their module imports register_attack from here)
from ceas.security import agreement_attacks as _agreement_attacks

del _agreement_attacks
