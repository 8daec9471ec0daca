"""Replicas of a split circuit (SPEC §7, Fig. 1b-c): which QPUs run one copy together, and who holds which block.

With a scheme that spreads one circuit over K QPUs (``partitions.scheme`` = "unitary" or "circuit"; K =
``scheme.n_qpus``), the N nodes form N/K replicas of consecutive node ids: replica r is nodes [rK, (r+1)K), node rK+i
playing the scheme's QPU i. QPU i holds the parameters ``scheme.parameter_owner == i`` (a layer block, or the
rotations of a qubit block); its replicas -- QPU i of every replica -- agree on that block (layer-wise consensus,
:func:`ceas.broker.aggregate.aggregate`).

The scheduling policy schedules replicas through their lead QPU (position 0): it sees only the leads as ready, and
``scheduling.participants`` counts replicas. Every other member of a chosen replica is added to the round's
participants with its lead's per-reply requests (verification pairs and tag key) on its own channel; each member
sends its own authenticated reply, the gradient of its own block.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ceas.scheduling.views import PURPOSES, Decision


@dataclass(frozen=True, eq=False)
class Replicas:
    """The grouping of N nodes into replicas of K QPUs.

    Attributes
    ----------
    members : (N/K, K) int
        Node id of QPU i of replica r.
    owner : (P,) int
        The QPU (0..K-1) holding each parameter.
    runs : int
        Circuit runs of one replica per round: samples × (2P+1) shifted points × shots
        (:func:`ceas.partitions.pair_demand`).
    work_s : (N,) float
        What the scheduler is told each node's participation adds to the round: its replica's predicted circuit time
        (:func:`ceas.broker.circuit_pairs.predicted_time_s`) on the lead, 0 elsewhere.
    """

    members: np.ndarray
    owner: np.ndarray
    runs: int
    work_s: np.ndarray

    @property
    def k(self) -> int:
        """QPUs per replica."""
        return int(self.members.shape[1])

    @property
    def n_nodes(self) -> int:
        return int(self.members.size)

    def position(self, nodes: np.ndarray) -> np.ndarray:
        """The QPU index within its replica of each node, same shape as ``nodes``."""
        return np.asarray(nodes) % self.k

    def replica(self, nodes: np.ndarray) -> np.ndarray:
        """The replica of each node, same shape as ``nodes``."""
        return np.asarray(nodes) // self.k

    def leads(self) -> np.ndarray:
        """(N,) bool: the nodes that lead a replica (QPU 0)."""
        out = np.zeros(self.n_nodes, bool)
        out[self.members[:, 0]] = True
        return out

    def owned(self, position: int) -> np.ndarray:
        """Indices of the parameters QPU ``position`` holds."""
        return np.flatnonzero(self.owner == position)

    def mask(self, nodes: np.ndarray) -> np.ndarray:
        """(len(nodes), P) bool: which parameters each node holds."""
        return self.owner[None, :] == self.position(nodes)[:, None]


def build_replicas(
    scheme, n_nodes: int, runs: int, replica_time_s: np.ndarray | None = None
) -> Replicas:
    """Group ``n_nodes`` (a multiple of ``scheme.n_qpus``, checked by the config) into replicas of ``scheme`` running
    ``runs`` circuits a round; ``replica_time_s`` (N/K,) is each replica's predicted circuit time (zeros when
    omitted)."""
    k = int(scheme.n_qpus)
    owner = np.asarray(scheme.parameter_owner, dtype=np.int64)
    members = np.arange(n_nodes, dtype=np.int64).reshape(-1, k)
    work = np.zeros(n_nodes)
    if replica_time_s is not None:
        work[members[:, 0]] = replica_time_s
    return Replicas(members=members, owner=owner, runs=int(runs), work_s=work)


def expand_decision(decision: Decision, replicas: Replicas) -> Decision:
    """The decision with every member of each chosen lead's replica taking part (module docstring): members get the
    lead's verification and key requests on their own channels; payload requests stay as decided."""
    leads = np.sort(decision.participants)
    members = replicas.members[replicas.replica(leads)]  # (R, K)
    requests = decision.requests.copy()
    cols = [PURPOSES.index("verification"), PURPOSES.index("key")]
    for row in members:
        for node in row[1:]:
            requests[node, cols] = requests[row[0], cols]
    return dataclasses.replace(decision, participants=members.reshape(-1), requests=requests)
