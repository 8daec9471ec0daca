"""The ``[partitions]`` section of a run config (composed by ``ceas.config``): which scheme of SPEC §7 runs the
circuit and how it is split. Bounds and option sets sit on the fields; :func:`scheme_from_params` checks the
cross-field limits that depend on the circuit (blocks <= L, qubits per QPU <= n)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ceas.partitions.registry import SCHEMES, get_scheme
from ceas.qnn.circuit import CircuitSpec

__all__ = ["PartitionParams", "scheme_from_params"]


class PartitionParams(BaseModel):
    """Partition-scheme settings (SPEC §7, Fig. 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheme: str = Field(
        "data",
        description="SPEC §7: data-level is the default; unitary- and circuit-level are options, or any name "
        "registered in ceas.partitions.SCHEMES",
    )
    scheme_params: dict[str, Any] = Field(
        default_factory=dict,
        description="hyperparameters of the chosen scheme, checked against its own Params (the built-in schemes "
        "read blocks and qubits_per_qpu instead and declare none)",
    )

    @field_validator("scheme")
    @classmethod
    def _registered_scheme(cls, value: str) -> str:
        return SCHEMES.check_name(value)

    @model_validator(mode="after")
    def _scheme_params(self) -> PartitionParams:
        hyper = SCHEMES.params(self.scheme, self.scheme_params, "partitions.scheme_params")
        object.__setattr__(self, "scheme_params", hyper.model_dump(exclude_unset=True))
        return self

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
    simulator: Literal["auto", "density", "trajectory"] = Field(
        "auto",
        description="unitary and circuit levels: exact density matrices (n <= 10 qubits) or Pauli trajectories; "
        "auto = density up to 10 qubits, trajectories above",
    )
    trajectories: int = Field(
        32,
        ge=1,
        le=4096,
        description="[D] unitary and circuit levels, trajectory simulator: error patterns per sample (shared by its "
        "2P+1 shifted circuits); with 32 an expectation's pattern variance is at most 1/32, its shot variance with "
        "S shots (1-E^2)/S",
    )
    placement: Literal["contiguous", "min-cut"] = Field(
        "contiguous",
        description="circuit-level: which QPU holds each qubit; contiguous blocks of qubits_per_qpu, or the "
        "assignment with the fewest entangler CNOTs across QPUs (min-cut; the same as contiguous for ring and "
        "linear entanglers)",
    )


def scheme_from_params(params: PartitionParams, spec: CircuitSpec):
    """The scheme ``params.scheme`` for circuit ``spec``, built from the section."""
    hyper = SCHEMES.params(params.scheme, params.scheme_params, "partitions.scheme_params")
    return get_scheme(params.scheme).from_params(params, spec, **dict(hyper))
