"""``check_aggregator``: does a callable behave like an aggregation rule? (in the spirit of gymnasium's env checker)

Run it on any rule before registering it. Each failed check raises :class:`AggregatorCheckError` with one sentence
naming the rule and what it did wrong; the checks run in a fixed order, so the first failure is reported.
"""

from __future__ import annotations

import numpy as np

from ceas.errors import ValidationError

__all__ = ["AggregatorCheckError", "check_aggregator", "probe_inputs"]


class AggregatorCheckError(ValidationError):
    """An aggregation rule broke the rule protocol; the message says which check and how."""


def _name(agg: object) -> str:
    return str(getattr(agg, "name", type(agg).__name__))


def _call(agg, label: str, updates: np.ndarray, weights: np.ndarray | None, d: int) -> np.ndarray:
    name = _name(agg)
    try:
        out = agg(updates, weights)
    except Exception as exc:
        raise AggregatorCheckError(
            f"aggregator {name!r} raised {type(exc).__name__} on {label}: {exc}"
        ) from exc
    if not isinstance(out, np.ndarray):
        raise AggregatorCheckError(
            f"aggregator {name!r} returned {type(out).__name__} on {label}; expected a numpy array of shape ({d},)"
        )
    if out.shape != (d,):
        raise AggregatorCheckError(
            f"aggregator {name!r} returned shape {out.shape} on {label}; expected ({d},)"
        )
    if not np.isfinite(out).all():
        raise AggregatorCheckError(f"aggregator {name!r} returned non-finite values on {label}")
    return out


def probe_inputs(
    n: int, d: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The checker's probe: updates (n, d) ~ N(0, 1), weights (n,) ~ U[0.5, 2], a point (d,) for the unanimity
    check and a permutation (n,), all from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w = rng.uniform(0.5, 2.0, size=n)
    return x, w, rng.normal(size=d), rng.permutation(n)


def check_aggregator(
    agg: object, *, n: int = 9, d: int = 4, seed: int = 0, atol: float = 1e-8
) -> None:
    """Check that ``agg`` is a well-behaved aggregation rule; raise on the first problem.

    Checks, in order: it is callable; on finite (n, d) updates with and without weights it returns a finite float
    array of shape (d,); it leaves its arguments unchanged; it is deterministic; it returns x when every update
    equals x (unanimity); it is invariant under a joint permutation of updates and weights; ``weights=None`` equals
    uniform weights and the scale of the weights does not matter; empty input raises
    :class:`~ceas.errors.ValidationError` (so callers can report "no update") instead of another exception.

    Parameters
    ----------
    agg : callable
        ``agg(updates (n, d), weights (n,) or None) -> (d,)``.
    n, d : int
        Size of the probe inputs (n >= 7 keeps Krum-type rules within their tolerance).
    seed : int
        Seed of the probe inputs.
    atol : float
        Absolute tolerance of the equality checks (probe values are O(1)).

    Raises
    ------
    AggregatorCheckError
        Naming the rule and the failed check.
    """
    name = _name(agg)
    if not callable(agg):
        raise AggregatorCheckError(f"aggregator {name!r} is not callable")
    x, w, point, perm = probe_inputs(n, d, seed)
    x0, w0 = x.copy(), w.copy()

    out = _call(agg, "weighted input", x, w, d)
    if not np.array_equal(x, x0):
        raise AggregatorCheckError(f"aggregator {name!r} mutated its updates argument")
    if not np.array_equal(w, w0):
        raise AggregatorCheckError(f"aggregator {name!r} mutated its weights argument")
    out_none = _call(agg, "unweighted input", x, None, d)
    if not np.array_equal(x, x0):
        raise AggregatorCheckError(f"aggregator {name!r} mutated its updates argument")

    again = _call(agg, "weighted input", x.copy(), w.copy(), d)
    if not np.array_equal(out, again):
        raise AggregatorCheckError(
            f"aggregator {name!r} returned different results for the same input"
        )

    same = _call(agg, "identical updates", np.tile(point, (n, 1)), w.copy(), d)
    err = float(np.abs(same - point).max())
    if err > atol:
        raise AggregatorCheckError(
            f"aggregator {name!r} did not return x when all updates equal x (max error {err:.3g})"
        )

    permuted = _call(agg, "permuted input", x[perm], w[perm], d)
    err = float(np.abs(permuted - out).max())
    if err > atol:
        raise AggregatorCheckError(
            f"aggregator {name!r} is not permutation invariant (max change {err:.3g})"
        )

    uniform = _call(agg, "uniform weights", x.copy(), np.ones(n), d)
    err = float(np.abs(uniform - out_none).max())
    if err > atol:
        raise AggregatorCheckError(
            f"aggregator {name!r} gives different results for weights=None and uniform weights (max difference "
            f"{err:.3g})"
        )
    scaled = _call(agg, "scaled weights", x.copy(), 7.0 * w, d)
    err = float(np.abs(scaled - out).max())
    if err > atol:
        raise AggregatorCheckError(
            f"aggregator {name!r} depends on the scale of the weights (max change {err:.3g})"
        )

    try:
        agg(np.empty((0, d)), None)
    except ValidationError:
        pass
    except Exception as exc:
        raise AggregatorCheckError(
            f"aggregator {name!r} raised {type(exc).__name__} on empty input; expected ceas ValidationError"
        ) from exc
    else:
        raise AggregatorCheckError(
            f"aggregator {name!r} returned a value on empty input; expected ceas ValidationError"
        )
