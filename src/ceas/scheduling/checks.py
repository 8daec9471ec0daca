"""``check_policy``: does a callable behave like a scheduling policy? (in the spirit of gymnasium's env checker)

Run it on any policy before registering it. It calls the policy on a fixed set of small probe views -- a typical
round, an empty inventory, nobody ready, empty key pools, pairs past their cutoff, a node with two links and one
with none -- and raises :class:`PolicyCheckError` with one sentence naming the policy, the probe and the problem.
"""

from __future__ import annotations

import numpy as np

from ceas.errors import ValidationError
from ceas.network.werner import bbm92_key_fraction, cutoff_age, fidelity_at_age
from ceas.scheduling.validate import validate_decision
from ceas.scheduling.views import Decision, InventoryView, NodeView

__all__ = ["PolicyCheckError", "check_policy", "probe_views"]


class PolicyCheckError(ValidationError):
    """A policy broke the policy protocol; the message names the policy, the probe and the problem."""


def _inventory(
    rng: np.random.Generator,
    link_node: np.ndarray,
    pairs_per_link: np.ndarray,
    *,
    key_bits: np.ndarray,
    stale: bool = False,
) -> InventoryView:
    n_links = link_node.shape[0]
    f0 = rng.uniform(0.9, 0.97, n_links)
    t_coh = np.exp(rng.uniform(np.log(0.05), np.log(1.0), n_links))
    cut = cutoff_age(f0, t_coh, f_min=0.8)
    link = np.repeat(np.arange(n_links), pairs_per_link)
    age = rng.uniform(0.0, 1.0, link.shape[0]) * cut[link]
    if stale and link.shape[0]:
        age[::3] = cut[link[::3]] * 1.5
    fid = fidelity_at_age(f0[link], age, t_coh[link])
    # ids grow with creation time: older pairs get smaller ids
    order = np.lexsort((-age, link))
    ids = np.empty(link.shape[0], dtype=np.int64)
    ids[order] = 100 + np.arange(link.shape[0])
    return InventoryView(
        link_node=link_node,
        f0=f0,
        t_coh_s=t_coh,
        cutoff_s=cut,
        rate_hz=rng.uniform(50.0, 400.0, n_links),
        slots=np.full(n_links, 20),
        key_bits=key_bits,
        pair_id=ids,
        pair_link=link,
        pair_age_s=age,
        pair_fidelity=fid,
        key_capacity_bits=np.full(n_links, 1e6),
        pair_key_bits=bbm92_key_fraction(fid),
    )


def _nodes(rng: np.random.Generator, n: int, ready: np.ndarray, round_: int = 3) -> NodeView:
    return NodeView(
        ready=ready,
        trust=rng.uniform(0.2, 1.0, n),
        phi=rng.uniform(10.0, 100.0, n),
        phi_visibility=rng.uniform(0.8, 1.0, n),
        payload_pairs=np.full(n, 8),
        verification_pairs=np.full(n, 2),
        tag_bits=np.full(n, 4.0),
        round=round_,
    )


def probe_views(seed: int = 0, n_nodes: int = 6) -> list[tuple[str, InventoryView, NodeView]]:
    """Small labelled (inventory, nodes) cases that exercise the corners a policy must handle.

    Labels: ``typical``, ``empty inventory``, ``nobody ready``, ``empty key pools``, ``pairs past cutoff``,
    ``two links and none``. Links serve node ``l`` except in the last case, where node 0 has two links and the last
    node has none.
    """
    rng = np.random.default_rng(seed)
    n = n_nodes
    ln = np.arange(n)
    full = np.full(n, 40.0)
    ready = rng.random(n) < 0.8
    ready[:2] = True
    cases = [
        (
            "typical",
            _inventory(rng, ln, rng.integers(0, 12, n), key_bits=full),
            _nodes(rng, n, ready),
        ),
        (
            "empty inventory",
            _inventory(rng, ln, np.zeros(n, int), key_bits=full),
            _nodes(rng, n, ready),
        ),
        (
            "nobody ready",
            _inventory(rng, ln, rng.integers(0, 12, n), key_bits=full),
            _nodes(rng, n, np.zeros(n, bool)),
        ),
        (
            "empty key pools",
            _inventory(rng, ln, rng.integers(0, 12, n), key_bits=np.zeros(n)),
            _nodes(rng, n, ready),
        ),
        (
            "pairs past cutoff",
            _inventory(rng, ln, rng.integers(3, 12, n), key_bits=full, stale=True),
            _nodes(rng, n, np.ones(n, bool)),
        ),
    ]
    ln2 = np.concatenate([[0], np.arange(n - 1)])
    cases.append(
        (
            "two links and none",
            _inventory(rng, ln2, rng.integers(0, 12, n), key_bits=full),
            _nodes(rng, n, np.ones(n, bool), round_=7),
        )
    )
    return cases


def check_policy(policy: object, *, max_participants: int | None = None, seed: int = 0) -> None:
    """Check that ``policy`` is a well-behaved scheduling policy; raise on the first problem.

    On every probe of :func:`probe_views`, in order: the call succeeds and returns a :class:`Decision`; the decision
    passes :func:`~ceas.scheduling.validate.validate_decision` (participants are ready nodes, at most m, pairs exist,
    are used once and are not past their cutoff, payload and verification serve participants within their demand);
    and a second call with an identically seeded Generator returns the same decision (reproducibility).

    Parameters
    ----------
    policy : callable
        ``policy(inventory, nodes, rng) -> Decision``.
    max_participants : int, optional
        Participant budget m; default ``policy.params.participants``.
    seed : int
        Seed of the probes and of the Generators passed to the policy.

    Raises
    ------
    PolicyCheckError
        Naming the policy, the probe and the failed check.
    """
    name = str(getattr(policy, "name", type(policy).__name__))
    if not callable(policy):
        raise PolicyCheckError(f"policy {name!r} is not callable")
    if max_participants is None:
        params = getattr(policy, "params", None)
        if params is None or not hasattr(params, "participants"):
            raise PolicyCheckError(
                f"policy {name!r} has no params.participants; pass max_participants= to check_policy"
            )
        max_participants = int(params.participants)
    for label, inventory, nodes in probe_views(seed):
        where = f"policy {name!r} on probe {label!r}"
        try:
            decision = policy(inventory, nodes, np.random.default_rng(seed))
        except Exception as exc:
            raise PolicyCheckError(f"{where} raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(decision, Decision):
            raise PolicyCheckError(f"{where} returned {type(decision).__name__}, expected Decision")
        try:
            validate_decision(decision, inventory, nodes, max_participants=max_participants)
        except ValidationError as exc:
            raise PolicyCheckError(f"{where}: {exc}") from exc
        again = policy(inventory, nodes, np.random.default_rng(seed))
        if again != decision:
            raise PolicyCheckError(
                f"{where} is not reproducible: two calls with equally seeded Generators gave different decisions"
            )
