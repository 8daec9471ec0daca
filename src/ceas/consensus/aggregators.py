"""Aggregation rules: one small callable per rule, and one registry keyed by the config name.

Every rule maps n updates of dimension d (shape (n, d)) and optional non-negative weights (shape (n,), any scale;
``None`` means uniform) to one update of shape (d,). Hyperparameters go to the constructor and are validated there;
preconditions that depend on n (e.g. Krum's n >= 2f + 3) are checked at call time and name both numbers. Rules never
mutate their inputs. Empty input is a :class:`~ceas.errors.ValidationError`; the caller turns "nothing accepted" into
a "no update" outcome (see :mod:`ceas.consensus.robust`).

=====================  ==========================================================  ================
config name            rule                                                        uses weights
=====================  ==========================================================  ================
``mean``               uniform mean (FedAvg with equal shards)                     no
``weighted-mean``      :math:`\\sum_k w_k g_k` (Proposition 1 with w ∝ φ)          yes
``trimmed-mean``       fidelity-weighted coordinate-wise trimmed mean (CEAS)       yes
``median``             fidelity-weighted coordinate-wise median                    yes
``krum``               Krum (Blanchard et al., NeurIPS 2017)                       no
``multi-krum``         Multi-Krum: weighted mean of the m best Krum scores         yes (in the mean)
``geometric-median``   weighted geometric median (Weiszfeld and Newton steps)      yes
``centered-clipping``  centred clipping (Karimireddy et al., ICML 2021)            yes
=====================  ==========================================================  ================
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ceas._validate import check_array, check_int, check_real
from ceas.errors import ConvergenceWarning, ValidationError
from ceas.registry import Registry

__all__ = [
    "AGGREGATORS",
    "Aggregator",
    "CenteredClipping",
    "GeometricMedian",
    "Krum",
    "Mean",
    "MultiKrum",
    "TrimmedMean",
    "WeightedMean",
    "WeightedMedian",
    "build_aggregator",
    "make_aggregator",
    "prepare_inputs",
    "register_aggregator",
    "row_norms",
    "weighted_coordinate_median",
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@runtime_checkable
class Aggregator(Protocol):
    """An aggregation rule: ``rule(updates (n, d), weights (n,) or None) -> (d,)``."""

    name: ClassVar[str]

    def __call__(self, updates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray: ...


def prepare_inputs(
    rule: str, updates: object, weights: object | None
) -> tuple[np.ndarray, np.ndarray]:
    """Validated private copies: updates (n, d) float64 and weights (n,) normalised to sum 1.

    Raises
    ------
    ValidationError
        Empty or non-finite updates, wrong shapes, negative weights or weights summing to zero.
    """
    x = check_array(f"{rule}: updates", updates, ndim=2)
    n = x.shape[0]
    if n == 0:
        raise ValidationError(f"{rule}: updates must hold at least 1 update, got n = 0")
    if weights is None:
        return x, np.full(n, 1.0 / n)
    w = check_array(f"{rule}: weights", weights, ndim=1, low=0.0)
    if w.shape != (n,):
        raise ValidationError(
            f"{rule}: weights must have shape ({n},) to match updates, got {w.shape}"
        )
    total = w.sum()
    if not total > 0:
        raise ValidationError(f"{rule}: weights must have a positive sum, got {total:g}")
    return x, w / total


def _sorted_columns(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per coordinate: values sorted ascending, their weights, and the cumulative weight, each (n, d)."""
    order = np.argsort(x, axis=0, kind="stable")
    xs = np.take_along_axis(x, order, axis=0)
    ws = w[order]
    return xs, ws, np.cumsum(ws, axis=0)


def row_norms(v: np.ndarray) -> np.ndarray:
    """Euclidean norm of each row of (n, d) ``v`` without overflow for huge (e.g. Byzantine) entries, (n,)."""
    scale = np.abs(v).max(axis=1, initial=0.0)
    safe = np.where(scale > 0, scale, 1.0)
    return scale * np.sqrt(np.einsum("ij,ij->i", v / safe[:, None], v / safe[:, None]))


def weighted_coordinate_median(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Coordinate-wise weighted median of validated (n, d) values with weights (n,) summing to 1.

    Per coordinate, the midpoint of the lower and upper weighted medians (the usual median for uniform weights).
    """
    xs, _, cum = _sorted_columns(x, w)
    tol = 1e-9  # cumulative sums of normalised weights carry ~n ulp of error; ties at 1/2 must be found
    lo = np.argmax(cum >= 0.5 - tol, axis=0)
    hi = np.argmax(cum > 0.5 + tol, axis=0)
    cols = np.arange(x.shape[1])
    return 0.5 * (xs[lo, cols] + xs[hi, cols])


@dataclass(frozen=True)
class Mean:
    """:math:`\\bar g = \\frac1n \\sum_{k=1}^n g_k` — the uniform average (FedAvg baseline; weights ignored).

    Breaks down with one Byzantine update; its covariance is :math:`\\sum_k \\sigma_k^2 / n^2` (Proposition 1).
    """

    name: ClassVar[str] = "mean"

    def __call__(self, updates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x, _ = prepare_inputs(self.name, updates, weights)
        return x.mean(axis=0)


@dataclass(frozen=True)
class WeightedMean:
    """:math:`\\hat g = \\sum_k w_k g_k / \\sum_k w_k` — with :math:`w_k = \\varphi_k` the minimum-variance linear rule.

    Proposition 1: if honest :math:`g_k` are unbiased with covariance :math:`\\sigma_k^2 I` and
    :math:`\\varphi_k = 1/\\sigma_k^2`, the covariance is :math:`I/\\sum_k \\varphi_k`, never above the uniform
    mean's :math:`\\sum_k \\sigma_k^2/n^2 \\cdot I`. Not robust: one Byzantine update moves it arbitrarily.
    """

    name: ClassVar[str] = "weighted-mean"

    def __call__(self, updates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x, w = prepare_inputs(self.name, updates, weights)
        return w @ x


@dataclass(frozen=True)
class TrimmedMean:
    """:math:`\\hat g_j = \\frac{1}{1-2\\beta} \\sum_i |[C_{i-1}, C_i] \\cap [\\beta, 1-\\beta]| \\, x_{(i),j}`,
    the fidelity-weighted coordinate-wise trimmed mean (the CEAS default rule).

    Here, for coordinate j, :math:`x_{(1),j} \\le \\dots \\le x_{(n),j}` are the sorted values, :math:`C_i` the
    cumulative normalised weight of the first i of them, and β the trimmed weight mass on each side. With uniform
    weights and β = f/n this is the classical trimmed mean that drops the f smallest and f largest values. Each
    coordinate stays inside the honest range whenever the Byzantine weight mass is at most β.

    Parameters
    ----------
    trim : float
        β in [0, 0.5): weight mass cut from each tail (0 gives the weighted mean).
    """

    trim: float = 0.3
    name: ClassVar[str] = "trimmed-mean"

    class Params(_Params):
        trim: float = Field(
            0.3,
            ge=0.0,
            lt=0.5,
            description="[D] weight mass cut per tail = 3 of the 10 default participants: random selection puts >= 3 "
            "of the 10 Byzantine of 50 in a round 31 % of the time, >= 4 only 10 % (hypergeometric)",
        )

    def __post_init__(self) -> None:
        check_real("trim", self.trim, low=0.0, high=0.5, high_open=True)

    def __call__(self, updates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x, w = prepare_inputs(self.name, updates, weights)
        xs, ws, cum = _sorted_columns(x, w)
        lo, hi = self.trim, 1.0 - self.trim
        kept = np.clip(np.minimum(cum, hi) - np.maximum(cum - ws, lo), 0.0, None)
        # A value sitting exactly on a trim boundary must keep zero mass, but the cumulative sum can leave ~n ulp
        # there (0.1 + 0.1 + 0.1 > 0.3); times an arbitrarily large Byzantine value that would leak. Drop it.
        kept[kept <= 16 * x.shape[0] * np.finfo(float).eps] = 0.0
        total = kept.sum(axis=0)
        if np.any(
            total == 0.0
        ):  # trim within rounding of 1/2: the trimmed mean's limit is the median
            return weighted_coordinate_median(x, w)
        return (kept * xs).sum(axis=0) / total


@dataclass(frozen=True)
class WeightedMedian:
    """:math:`\\hat g_j = \\tfrac12 (x_{(l),j} + x_{(u),j})` with :math:`l = \\min\\{i : C_i \\ge \\tfrac12\\}`,
    :math:`u = \\min\\{i : C_i > \\tfrac12\\}`: the fidelity-weighted coordinate-wise median,

    with sorted values and cumulative weights as in :class:`TrimmedMean` (the usual median for uniform weights).
    Bounded by the honest range in every coordinate while the Byzantine weight mass is below 1/2.
    """

    name: ClassVar[str] = "median"

    def __call__(self, updates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x, w = prepare_inputs(self.name, updates, weights)
        return weighted_coordinate_median(x, w)


def _resolve_f(f: int | None, fraction: float, n: int) -> int:
    """The f to use for n updates: as given, or the floor of fraction · n."""
    return int(np.floor(fraction * n + 1e-9)) if f is None else f


def _krum_scores(x: np.ndarray, n_neighbours: int) -> np.ndarray:
    """Krum score of each row: sum of squared distances to its ``n_neighbours`` nearest other rows, (n,)."""
    from scipy.spatial.distance import (  # here: scipy.spatial costs 0.25 s to import
        pdist,
        squareform,
    )

    d2 = squareform(
        pdist(x, "sqeuclidean")
    )  # exact per pair and symmetric, so ties are order independent
    np.fill_diagonal(d2, np.inf)
    nearest = np.sort(d2, axis=1)[:, :n_neighbours]
    return nearest.sum(axis=1)


def _krum_order(x: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Rows by ascending score, (n,) indices.

    Ties are broken by the vectors themselves and then, between equal vectors, by descending weight, so the choice
    (and a weighted mean over it) is permutation invariant.
    """
    keys = (() if weights is None else (-weights,)) + tuple(
        x[:, j] for j in range(x.shape[1] - 1, -1, -1)
    )
    return np.lexsort(keys + (scores,))


def _check_krum(rule: str, f: int, n: int) -> None:
    if n < 2 * f + 3:
        raise ValidationError(
            f"{rule} tolerates f = {f} Byzantine updates only with n >= 2f + 3 = {2 * f + 3}; got n = {n}"
        )


@dataclass(frozen=True)
class Krum:
    """:math:`\\hat g = g_{k^*}`, :math:`k^* = \\arg\\min_k \\sum_{j \\in N_k} \\lVert g_k - g_j \\rVert^2`: Krum.

    The update with the smallest sum of squared distances to its n − f − 2 nearest neighbours, where :math:`N_k` holds the n − f − 2 updates closest to :math:`g_k` (Blanchard et al., NeurIPS 2017). Requires
    n >= 2f + 3. Weights are ignored (the choice is geometric); ties go to the lexicographically smallest vector.

    Parameters
    ----------
    f : int or None
        Number of Byzantine updates tolerated; ``None`` uses ⌊byzantine_fraction · n⌋ at call time.
    byzantine_fraction : float
        Used only when ``f`` is None, in [0, 0.5).
    """

    f: int | None = None
    byzantine_fraction: float = 0.2
    name: ClassVar[str] = "krum"

    class Params(_Params):
        f: int | None = Field(
            None,
            ge=0,
            le=100_000,
            description="Byzantine updates tolerated; none = floor(security.byzantine_fraction * n) of the n received",
        )

    @classmethod
    def from_params(cls, params: Params, *, byzantine_fraction: float = 0.2, **_: object) -> Krum:
        return cls(f=params.f, byzantine_fraction=byzantine_fraction)

    def __post_init__(self) -> None:
        if self.f is not None:
            check_int("f", self.f, low=0)
        check_real("byzantine_fraction", self.byzantine_fraction, low=0.0, high=0.5, high_open=True)

    def __call__(self, updates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x, _ = prepare_inputs(self.name, updates, weights)
        n = x.shape[0]
        f = _resolve_f(self.f, self.byzantine_fraction, n)
        _check_krum(self.name, f, n)
        order = _krum_order(x, _krum_scores(x, n - f - 2))
        return x[order[0]].copy()


@dataclass(frozen=True)
class MultiKrum:
    """:math:`\\hat g = \\sum_{k \\in M} w_k g_k / \\sum_{k \\in M} w_k`: Multi-Krum.

    M holds the m updates with the smallest Krum scores (see :class:`Krum`).

    Requires n >= 2f + 3 and 1 <= m <= n − f (El Mhamdi et al., ICML 2018).

    Parameters
    ----------
    f : int or None
        As for :class:`Krum`.
    m : int or None
        Number of updates averaged; ``None`` uses n − f.
    byzantine_fraction : float
        Used only when ``f`` is None.
    """

    f: int | None = None
    m: int | None = None
    byzantine_fraction: float = 0.2
    name: ClassVar[str] = "multi-krum"

    class Params(_Params):
        f: int | None = Field(
            None,
            ge=0,
            le=100_000,
            description="Byzantine updates tolerated; none = floor(security.byzantine_fraction * n) of the n received",
        )
        m: int | None = Field(
            None,
            ge=1,
            le=100_000,
            description="updates averaged; none = n - f (El Mhamdi et al. 2018)",
        )

    @classmethod
    def from_params(
        cls, params: Params, *, byzantine_fraction: float = 0.2, **_: object
    ) -> MultiKrum:
        return cls(f=params.f, m=params.m, byzantine_fraction=byzantine_fraction)

    def __post_init__(self) -> None:
        if self.f is not None:
            check_int("f", self.f, low=0)
        if self.m is not None:
            check_int("m", self.m, low=1)
        check_real("byzantine_fraction", self.byzantine_fraction, low=0.0, high=0.5, high_open=True)

    def __call__(self, updates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x, w = prepare_inputs(self.name, updates, weights)
        n = x.shape[0]
        f = _resolve_f(self.f, self.byzantine_fraction, n)
        _check_krum(self.name, f, n)
        m = n - f if self.m is None else self.m
        if m > n - f:
            raise ValidationError(
                f"{self.name} averages m <= n - f = {n - f} updates (f = {f}, n = {n}); got m = {m}"
            )
        chosen = _krum_order(x, _krum_scores(x, n - f - 2), w)[:m]
        wc = w[chosen]
        if not wc.sum() > 0:  # every chosen update has zero weight: fall back to their plain mean
            wc = np.ones(m)
        return (wc / wc.sum()) @ x[chosen]


@dataclass(frozen=True)
class GeometricMedianResult:
    """What :meth:`GeometricMedian.solve` found.

    Attributes
    ----------
    point : ndarray, shape (d,)
        The weighted geometric median (the last iterate when ``converged`` is false).
    iterations : int
        Iterations made (0 when the start or a data point was already optimal).
    converged : bool
        Whether the last step was within ``tol`` x the data spread (or the optimum was found exactly); false only when
        ``max_iter`` ran out first.
    step : float
        Length of the last step relative to the data spread (0 for an exact optimum).
    """

    point: np.ndarray
    iterations: int
    converged: bool
    step: float


def _optimal_data_point(x: np.ndarray, w: np.ndarray, nu: float) -> int | None:
    """Index of a data point that minimises :math:`\\sum_k w_k \\lVert x_k - z\\rVert`, or None.

    :math:`x_j` is a minimiser exactly when the pull of the other points,
    :math:`\\lVert\\sum_{x_k \\ne x_j} w_k (x_k - x_j)/\\lVert x_k - x_j\\rVert\\rVert`, is at most the weight sitting on
    :math:`x_j` (Kuhn 1973). Weiszfeld's iteration only crawls towards such a point (sublinearly), so it is tested
    first. Points closer than ``nu`` count as coincident. A tie (pull equal to the weight, within a relative 1e-9)
    means the minimiser is not unique -- e.g. the whole segment between two equally weighted points -- and is left
    to the iteration from the weighted mean, whose answer moves with a translation of the data (a data point chosen
    by rounding would not).
    """
    size = np.abs(x).max(axis=1)
    for j in np.argsort(-w, kind="stable"):
        # per-row scale so that x_k - x_j cannot overflow for huge (Byzantine) entries of either sign
        scale = np.maximum(np.maximum(size, size[j]), np.finfo(float).tiny)
        d = x / scale[:, None] - x[j] / scale[:, None]
        r = row_norms(d)
        near = r <= nu / scale
        pull = (w[~near] / r[~near]) @ d[~near]
        if float(row_norms(pull[None, :])[0]) < w[near].sum() * (1.0 - 1e-9):
            return int(j)
    return None


def _weiszfeld_step(
    x: np.ndarray, w: np.ndarray, z: np.ndarray, r: np.ndarray, nu: float
) -> np.ndarray:
    """Weiszfeld's step with Vardi & Zhang's (PNAS 2000) correction for an iterate that sits on data points.

    Over the points away from z it is :math:`T = \\sum a_k x_k / \\sum a_k` with :math:`a_k = w_k/\\lVert x_k - z\\rVert`;
    with weight :math:`\\eta` on z itself and pull :math:`R = \\sum a_k (x_k - z)`, the step is
    :math:`(1 - \\gamma) T + \\gamma z`, :math:`\\gamma = \\min(1, \\eta/\\lVert R\\rVert)`. It never increases the objective.
    """
    away = r > nu
    a = w[away] / r[away]
    a = a / a.max()  # 1/r may be ~1e307: rescale before summing
    target = (a @ x[away]) / a.sum()
    eta = w[~away].sum()
    if eta == 0.0:
        return target
    pull = float(np.linalg.norm((w[away] / r[away]) @ (x[away] - z)))
    gamma = min(1.0, eta / pull) if pull > 0 else 1.0
    return (1.0 - gamma) * target + gamma * z


def _newton_step(x: np.ndarray, w: np.ndarray, z: np.ndarray, r: np.ndarray) -> np.ndarray | None:
    """Newton's step :math:`H^{-1}g` (to subtract from z) on :math:`f(z) = \\sum w_k \\lVert z - x_k\\rVert` at a z off every data point, or None.

    With unit vectors :math:`u_k = (z - x_k)/r_k`, the gradient is :math:`g = \\sum w_k u_k` and the Hessian
    :math:`H = cI - U^\\top D U` (:math:`c = \\sum w_k/r_k`, :math:`D = \\mathrm{diag}(w_k/r_k)`), an identity minus a rank-n
    term, so :math:`H^{-1}g = (g + U^\\top (cD^{-1} - UU^\\top)^{-1} U g)/c` costs :math:`O(n^2 d + n^3)` (Woodbury).
    """
    keep = w > 0
    u = (z - x[keep]) / r[keep, None]
    a = w[keep] / r[keep]
    c = a.sum()
    g = w[keep] @ u
    # a far (e.g. Byzantine) point bends H by a_k < 1e-16 c: it stays in g and c but not in the rank-n term
    bend = a > 1e-16 * c
    ub = u[bend]
    m = np.diag(c / a[bend]) - ub @ ub.T
    try:
        y = np.linalg.solve(m, ub @ g)
    except np.linalg.LinAlgError:  # H singular: collinear points
        return None
    step = (g + ub.T @ y) / c
    return step if np.all(np.isfinite(step)) else None


@dataclass(frozen=True)
class GeometricMedian:
    """:math:`\\hat g = \\arg\\min_z \\sum_k w_k \\lVert g_k - z \\rVert`: the weighted geometric median.

    Solved in three stages, started at the weighted coordinate-wise median:

    1. a data point is returned when it is itself the minimiser (Kuhn's test: the pull of the other points does not
       exceed its own weight); Weiszfeld's iteration would only crawl towards it;
    2. otherwise the objective is smooth around the minimiser and each iteration takes the better (lower objective)
       of Weiszfeld's step

       .. math:: z_{t+1} = \\frac{\\sum_k w_k g_k / \\lVert g_k - z_t \\rVert}{\\sum_k w_k / \\lVert g_k - z_t \\rVert}

       (with Vardi & Zhang's correction on a data point), which never increases it, and Newton's step, which converges
       quadratically where Weiszfeld's linear rate is slow (a minimiser close to a data point);
    3. it stops when the last step, and the distance still to go that it implies (the geometric tail
       :math:`s\\rho/(1-\\rho)` of the observed contraction :math:`\\rho` between steps), are both below ``tol`` × the
       weighted median distance of the updates to the start (a robust scale, so a distant Byzantine update cannot
       coarsen the result). If ``max_iter`` runs out first, the last iterate is returned with a
       :class:`~ceas.errors.ConvergenceWarning`; :meth:`solve` also returns the flag.

    Points closer than 10⁻¹² of that scale count as coincident. The minimiser lies within
    :math:`2(1-\\alpha)r/(1-2\\alpha)` of any point that has honest weight 1 − α > 1/2 within radius r (Pillutla et
    al., IEEE TSP 2022 use the smoothed form for robust aggregation).

    Parameters
    ----------
    max_iter : int
        Iteration limit (>= 1).
    tol : float
        Stop when a step and the distance it implies to the minimiser are below ``tol`` × the weighted median distance
        of the updates to the start (> 0).
    """

    max_iter: int = 100
    tol: float = 1e-10
    name: ClassVar[str] = "geometric-median"

    class Params(_Params):
        max_iter: int = Field(
            100,
            ge=1,
            le=100_000,
            description="[D] Weiszfeld iterations; converges to 1e-10 well within 100 here",
        )
        tol: float = Field(
            1e-10, gt=0.0, le=1.0, description="[D] Weiszfeld stop: step / data spread"
        )

    def __post_init__(self) -> None:
        check_int("max_iter", self.max_iter, low=1)
        check_real("tol", self.tol, low=0.0, high=1.0, low_open=True)

    def __call__(self, updates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        result = self.solve(updates, weights)
        if not result.converged:
            warnings.warn(
                f"{self.name}: stopped at max_iter = {self.max_iter} with the last step at {result.step:.3g} of the "
                f"data spread, above tol = {self.tol:g}; the result is the last iterate (raise max_iter)",
                ConvergenceWarning,
                stacklevel=2,
            )
        return result.point

    def solve(
        self, updates: np.ndarray, weights: np.ndarray | None = None
    ) -> GeometricMedianResult:
        """The median of (n, d) ``updates`` with optional weights (n,), with how it was reached."""
        x, w = prepare_inputs(self.name, updates, weights)
        z = weighted_coordinate_median(x, w)
        spread = float(weighted_coordinate_median(row_norms(x - z)[:, None], w)[0])
        if spread == 0.0:  # at least half the weight sits on z, which is then the geometric median
            return GeometricMedianResult(z, 0, True, 0.0)
        nu = max(1e-12 * spread, np.finfo(float).tiny)
        j = _optimal_data_point(x, w, nu)
        if j is not None:
            return GeometricMedianResult(x[j].copy(), 0, True, 0.0)

        def gain(c: np.ndarray) -> float:
            """f(c) - f(z), without the cancellation of two sums that a distant update makes ~1e300 each."""
            a, b = x - c, x - z
            half = (
                row_norms(a) / 2 + row_norms(b) / 2
            )  # ||a|| - ||b|| = (a + b).(a - b) / (||a|| + ||b||)
            half = np.where(half > 0, half, 1.0)[:, None]
            return float(w @ ((a / half + b / half) @ (z - c))) / 2

        step = np.inf
        for it in range(1, self.max_iter + 1):
            r = row_norms(x - z)
            z_new = _weiszfeld_step(x, w, z, r, nu)
            if r.min() > nu:
                newton = _newton_step(x, w, z, r)
                # damped near a kink (a minimiser close to a data point), where the full step overshoots
                for t in (1.0, 0.5, 0.25, 0.125) if newton is not None else ():
                    if gain(z - t * newton) <= gain(z_new):
                        z_new = z - t * newton
                        break
            last, step = step, float(row_norms((z_new - z)[None, :])[0]) / spread
            z = z_new
            # the steps still to come: a geometric tail at the observed contraction (tiny once Newton takes over)
            rate = step / last if last > 0 else np.inf
            tail = step * rate / (1.0 - rate) if rate < 1.0 else np.inf
            if step == 0.0 or max(step, tail) <= self.tol:
                return GeometricMedianResult(z, it, True, step)
        return GeometricMedianResult(z, self.max_iter, False, step)


@dataclass(frozen=True)
class CenteredClipping:
    """:math:`v_{l+1} = v_l + \\sum_k w_k (g_k - v_l) \\min(1, \\tau/\\lVert g_k - v_l \\rVert)`: centred clipping.

    Clipped corrections around a reference point, repeated L times:

    .. math:: v_{l+1} = v_l + \\sum_k w_k (g_k - v_l) \\min\\Big(1, \\frac{\\tau}{\\lVert g_k - v_l \\rVert}\\Big),
              \\quad l = 0, \\dots, L-1,

    (Karimireddy, He & Jaggi, ICML 2021). Each update moves the result by at most :math:`w_k \\tau` per iteration.

    Parameters
    ----------
    tau : float
        Clip radius τ > 0, in gradient units.
    iterations : int
        L >= 1.
    reference : ndarray (d,) or None
        :math:`v_0`, e.g. the previous round's aggregate; ``None`` starts at the weighted coordinate-wise median
        (which keeps the rule translation-equivariant).
    """

    tau: float = 1.0
    iterations: int = 3
    reference: np.ndarray | None = field(default=None, compare=False)
    name: ClassVar[str] = "centered-clipping"

    class Params(_Params):
        tau: float = Field(
            1.0,
            gt=0.0,
            le=1e6,
            description="[D] clip radius in gradient units: payload components are clipped to [-G, G] with G of "
            "order 1 (SPEC §4)",
        )
        iterations: int = Field(
            3, ge=1, le=1000, description="L; Karimireddy et al. (2021) use 1 to 3"
        )

    def __post_init__(self) -> None:
        check_real("tau", self.tau, low=0.0, low_open=True)
        check_int("iterations", self.iterations, low=1)
        if self.reference is not None:
            ref = check_array("reference", self.reference, ndim=1)
            ref.setflags(write=False)
            object.__setattr__(self, "reference", ref)

    def with_reference(self, reference: np.ndarray | None) -> CenteredClipping:
        """A copy of this rule that starts from ``reference`` (d,)."""
        return CenteredClipping(tau=self.tau, iterations=self.iterations, reference=reference)

    def __call__(self, updates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x, w = prepare_inputs(self.name, updates, weights)
        if self.reference is None:
            v = weighted_coordinate_median(x, w)
        else:
            if self.reference.shape != (x.shape[1],):
                raise ValidationError(
                    f"{self.name}: reference must have shape ({x.shape[1]},) to match updates, "
                    f"got {self.reference.shape}"
                )
            v = self.reference.copy()
        for _ in range(self.iterations):
            diff = x - v
            norm = row_norms(diff)
            scale = np.minimum(1.0, self.tau / np.maximum(norm, np.finfo(float).tiny))
            v = v + (w * scale) @ diff
        return v


def _check_rule(cls: object) -> None:
    if not callable(cls):
        raise ValidationError(f"an aggregation rule must be a callable class, got {cls!r}")


#: Registry: config name -> rule class (``consensus.aggregator``). See :mod:`ceas.registry` for the recipe.
AGGREGATORS: Registry = Registry(
    "aggregator",
    "consensus.aggregator",
    check=_check_rule,
    initial={
        cls.name: cls
        for cls in (
            Mean,
            WeightedMean,
            TrimmedMean,
            WeightedMedian,
            Krum,
            MultiKrum,
            GeometricMedian,
            CenteredClipping,
        )
    },
)


def register_aggregator(cls: type) -> type:
    """Class decorator: make a rule available as ``consensus.aggregator = cls.name``, its hyperparameters (a pydantic
    ``Params`` class attribute, optional) as ``consensus.aggregator_params``. Raises ValidationError for a name
    already taken."""
    return AGGREGATORS.register(cls)


def build_aggregator(name: str, params: Any = None, **context: Any) -> Aggregator:
    """The rule ``name`` from its validated hyperparameters ``params`` (a mapping or its ``Params``).

    ``cls.from_params(params, **context)`` where the rule defines it, else ``cls(**params)``. Context offered:
    ``byzantine_fraction`` (the run's ``security.byzantine_fraction``).
    """
    cls = AGGREGATORS.get_plugin(name)
    hyper = AGGREGATORS.params(name, params, "consensus.aggregator_params")
    if hasattr(cls, "from_params"):
        return cls.from_params(hyper, **context)
    return cls(**dict(hyper))


def make_aggregator(name: str, **hyperparameters: Any) -> Aggregator:
    """Build the rule registered as ``name`` with the given constructor arguments.

    Raises
    ------
    UnknownNameError
        For an unknown name, suggesting the closest registered one.
    ValidationError
        For an unknown or out-of-range hyperparameter.

    Examples
    --------
    >>> make_aggregator("trimmed-mean", trim=0.2)
    TrimmedMean(trim=0.2)
    """
    cls = AGGREGATORS.get_plugin(name)
    try:
        return cls(**hyperparameters)
    except TypeError as exc:
        fields = [f for f in getattr(cls, "__dataclass_fields__", {}) if f != "name"]
        raise ValidationError(
            f"aggregator {name!r} takes hyperparameters {fields}, got {sorted(hyperparameters)}"
        ) from exc
