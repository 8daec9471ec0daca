"""The three partition schemes of SPEC §7 (Fig. 1): how one circuit is spread over QPUs and what it costs in pairs.

=================== ===================================================================================
``base``            the :class:`PartitionScheme` protocol, :func:`pair_demand`, the density / trajectory runner
``registry``        schemes by config name ("data", "unitary", "circuit"); unknown names suggest the closest
``channels``        teleportation and remote-CNOT error channels from a pair's Pauli mixture (derivations)
``data_level``      (a) the whole circuit on each QPU (pure-state simulator)
``unitary_level``   (b) layer blocks on a chain of QPUs, the state teleported between them
``circuit_level``   (c) qubit blocks on several QPUs, non-local CNOTs by gate teleportation
``noise``           :class:`PlacementNoise`: depolarising and readout error per (node, QPU) inside a split circuit
``placement``       which QPU holds each qubit at the circuit level: contiguous blocks or a min-cut assignment
``params``          the ``[partitions]`` config section
``study``           ⟨Z⟩ error and trained accuracy versus pair fidelity (docs/partitions.md)
=================== ===================================================================================

>>> import numpy as np
>>> from ceas.qnn import CircuitSpec
>>> from ceas.partitions import make_scheme, pair_demand
>>> scheme = make_scheme("unitary", CircuitSpec(4, 4), blocks=2)
>>> pair_demand(scheme, samples=32, shots=512).pairs_per_run   # 4 qubits teleported once
4
>>> scheme.slot_link, scheme.parameter_owner[:8].tolist()       # pair slot -> link; parameter -> QPU
((0, 0, 0, 0), [0, 0, 0, 0, 0, 0, 0, 0])

Registers wider than :data:`MAX_DENSITY_QUBITS` run as pure-state trajectories (``simulator="auto"``), which
need an ``rng`` in every call.
"""

from ceas.partitions.base import MAX_DENSITY_QUBITS, PairDemand, PartitionScheme, pair_demand
from ceas.partitions.channels import (
    REMOTE_CNOT_ERRORS,
    TELEPORT_ERRORS,
    remote_cnot_error_probs,
    teleport_error_probs,
    werner_pauli_mixture,
)
from ceas.partitions.circuit_level import CircuitLevel
from ceas.partitions.data_level import DataLevel
from ceas.partitions.noise import PlacementNoise
from ceas.partitions.params import PartitionParams, scheme_from_params
from ceas.partitions.registry import SCHEMES, get_scheme, make_scheme, register_scheme, scheme_names
from ceas.partitions.unitary_level import UnitaryLevel

__all__ = [
    "MAX_DENSITY_QUBITS",
    "REMOTE_CNOT_ERRORS",
    "SCHEMES",
    "TELEPORT_ERRORS",
    "CircuitLevel",
    "DataLevel",
    "PairDemand",
    "PartitionParams",
    "PartitionScheme",
    "PlacementNoise",
    "UnitaryLevel",
    "get_scheme",
    "make_scheme",
    "pair_demand",
    "register_scheme",
    "remote_cnot_error_probs",
    "scheme_from_params",
    "scheme_names",
    "teleport_error_probs",
    "werner_pauli_mixture",
]
