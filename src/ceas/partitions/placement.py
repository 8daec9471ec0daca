"""Which QPU holds each qubit at the circuit level: contiguous blocks, or a cut that minimises the remote CNOTs.

An assignment ``a`` (a[q] = QPU of qubit q) puts n qubits on k = ⌈n/m⌉ QPUs with at most m each. QPUs are
interchangeable, so only assignments in *restricted-growth* form are searched (QPU labels appear in increasing
order of first use: a[0] = 0 and each new label is one more than the largest so far); this form is the
lexicographically smallest of each relabelling class, so ties are broken towards the lexicographically smallest
assignment overall (contiguous blocks win ties, e.g. for ring and linear entanglers).
"""

from __future__ import annotations

from functools import cache

from ceas._validate import positive_int
from ceas.errors import ValidationError

__all__ = ["PLACEMENTS", "contiguous_assignment", "cut_size", "min_cut_assignment", "placement_of"]

PLACEMENTS = ("contiguous", "min-cut")
# Largest number of restricted-growth assignments searched exhaustively (branch and bound); beyond it, pairwise
# swaps from the contiguous assignment.
EXHAUSTIVE_LIMIT = 200_000


def contiguous_assignment(n: int, m: int) -> tuple[int, ...]:
    """QPU q // m for each qubit q: blocks [j·m, (j+1)·m)."""
    return tuple(q // m for q in range(n))


def cut_size(assignment, pairs) -> int:
    """CNOTs of ``pairs`` (control, target) whose ends sit on different QPUs of ``assignment``."""
    return sum(assignment[c] != assignment[t] for c, t in pairs)


def _canonical(assignment) -> tuple[int, ...]:
    """Relabel QPUs in order of first use (the restricted-growth form)."""
    labels: dict[int, int] = {}
    return tuple(labels.setdefault(a, len(labels)) for a in assignment)


@cache
def _count(remaining: int, sizes: tuple[int, ...], k: int, m: int) -> int:
    """Restricted-growth completions of ``remaining`` qubits given the sorted block sizes so far."""
    if remaining == 0:
        return 1
    total = 0
    for i, size in enumerate(sizes):
        if size < m and (
            i == 0 or sizes[i - 1] != size
        ):  # equal sizes give equal counts: count once each
            same = sizes.count(size)
            grown = tuple(sorted(sizes[:i] + (size + 1,) + sizes[i + 1 :]))
            total += same * _count(remaining - 1, grown, k, m)
    if len(sizes) < k:
        total += _count(remaining - 1, tuple(sorted(sizes + (1,))), k, m)
    return total


def _exhaustive(n: int, m: int, k: int, pairs) -> tuple[int, ...]:
    """Branch and bound over restricted-growth assignments, in lexicographic order: the first optimum found is
    the lexicographically smallest one."""
    later = [[] for _ in range(n)]  # pairs decided when their later qubit is placed
    for c, t in pairs:
        later[max(c, t)].append(min(c, t))
    best = [cut_size(contiguous_assignment(n, m), pairs) + 1, None]
    a = [0] * n
    sizes = [0] * k

    def place(q: int, used: int, cost: int) -> None:
        if cost >= best[0]:
            return
        if q == n:
            best[0], best[1] = cost, tuple(a)
            return
        if (n - q) > sum(m - s for s in sizes[:used]) + (k - used) * m:
            return  # the rest cannot fit
        for label in range(min(used + 1, k)):  # existing QPUs, then one new one
            if sizes[label] == m:
                continue
            a[q] = label
            sizes[label] += 1
            extra = sum(a[o] != label for o in later[q])
            place(q + 1, max(used, label + 1), cost + extra)
            sizes[label] -= 1

    place(0, 0, 0)
    return best[1]


def _swaps(n: int, m: int, pairs) -> tuple[int, ...]:
    """Best-improvement pairwise swaps from the contiguous assignment (first best in (i, j) order), canonical."""
    a = list(contiguous_assignment(n, m))
    cost = cut_size(a, pairs)
    while True:
        best = (cost, None)
        for i in range(n):
            for j in range(i + 1, n):
                if a[i] == a[j]:
                    continue
                a[i], a[j] = a[j], a[i]
                c = cut_size(a, pairs)
                a[i], a[j] = a[j], a[i]
                if c < best[0]:
                    best = (c, (i, j))
        if best[1] is None:
            return _canonical(a)
        i, j = best[1]
        a[i], a[j] = a[j], a[i]
        cost = best[0]


def min_cut_assignment(n: int, m: int, pairs) -> tuple[int, ...]:
    """An assignment of n qubits to ⌈n/m⌉ QPUs (at most m each) with the fewest CNOTs of ``pairs`` across QPUs.

    Exhaustive (branch and bound over restricted-growth assignments) when there are at most
    :data:`EXHAUSTIVE_LIMIT` of them, ties to the lexicographically smallest assignment; otherwise a
    deterministic local search (pairwise swaps from the contiguous blocks), which need not be optimal.

    Parameters
    ----------
    n, m : int
        Qubits, and qubits per QPU (1 <= m <= n).
    pairs : sequence of (int, int)
        The entangler's (control, target) pairs.

    Returns
    -------
    tuple of int, length n
        The QPU of each qubit.
    """
    n = positive_int("n", n)
    m = positive_int("m", m, 1, n)
    pairs = tuple((int(c), int(t)) for c, t in pairs)
    for c, t in pairs:
        if not (0 <= c < n and 0 <= t < n) or c == t:
            raise ValidationError(f"pairs must hold distinct qubits in [0, {n - 1}], got {(c, t)}")
    k = -(-n // m)
    if _count(n, (), k, m) <= EXHAUSTIVE_LIMIT:
        return _exhaustive(n, m, k, pairs)
    return _swaps(n, m, pairs)


def placement_of(placement: str, n: int, m: int, pairs) -> tuple[int, ...]:
    """The assignment of the named ``placement`` ("contiguous" or "min-cut")."""
    if placement not in PLACEMENTS:
        raise ValidationError(
            f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}"
        )
    if placement == "contiguous":
        return contiguous_assignment(n, m)
    return min_cut_assignment(n, m, pairs)
