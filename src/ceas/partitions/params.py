"""The ``[partitions]`` section of a run config (composed by ``ceas.config``): which scheme of SPEC §7 runs the
circuit and how it is split. Bounds and option sets sit on the fields; :func:`scheme_from_params` checks the
cross-field limits that depend on the circuit (blocks <= L, qubits per QPU <= n)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ceas.partitions.registry import get_scheme
from ceas.qnn.circuit import CircuitSpec

__all__ = ["PartitionParams", "scheme_from_params"]


class PartitionParams(BaseModel):
    """Partition-scheme settings (SPEC §7, Fig. 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheme: Literal["data", "unitary", "circuit"] = Field(
        "data",
        description="SPEC §7: data-level is the default; unitary- and circuit-level are options",
    )
    blocks: int = Field(
        2,
        ge=1,
        le=64,
        description="[D] unitary-level: QPUs (layer blocks) per circuit; 2 = one teleportation hop, the "
        "smallest split that exercises it",
    )
    qubits_per_qpu: int = Field(
        2,
        ge=1,
        le=24,
        description="[D] circuit-level: qubits per QPU; 2 splits the default 4-qubit register over 2 QPUs",
    )


def scheme_from_params(params: PartitionParams, spec: CircuitSpec):
    """The scheme ``params.scheme`` for circuit ``spec``, built from the section."""
    return get_scheme(params.scheme).from_params(params, spec)
