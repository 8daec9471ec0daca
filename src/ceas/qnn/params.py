"""Tunable parameters of the learning layer, as a config section (composed by ``ceas.config``).

Every default is the SPEC default; each field says where it comes from. Bounds and option sets are on the
fields, so tools (and tests) can walk them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ceas.qnn.circuit import ENTANGLERS, CircuitSpec


class QNNParams(BaseModel):
    """Model section: the circuit, its loss and how parameters start and how the QFI summary is refreshed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_qubits: int = Field(
        4, ge=1, le=20, description="SPEC §3 [D]: small NISQ circuit, one PCA feature per qubit"
    )
    n_layers: int = Field(
        4, ge=1, le=64, description="SPEC §3 [D]: L layers of RY, RZ and a CNOT entangler"
    )
    entangler: str = Field(
        "ring",
        description="SPEC §3: ring default; linear and all_to_all options, or any name registered in "
        "ceas.qnn.circuit.ENTANGLERS",
    )

    @field_validator("entangler")
    @classmethod
    def _registered_entangler(cls, value: str) -> str:
        return ENTANGLERS.check_name(value)

    reupload: bool = Field(
        False, description="SPEC §3: data re-uploading is optional, off by default"
    )
    readout_qubit: int | None = Field(
        None,
        ge=0,
        le=19,
        description=(
            "SPEC §3: first qubit read out (<Z> of it, or of C consecutive qubits from it); unset = the "
            "entangler's light-cone end (qubit 0 for ring, the last for linear and all_to_all)"
        ),
    )
    loss: Literal["bce", "mse"] = Field("bce", description="SPEC §3: BCE on σ(a⟨Z⟩), or MSE to ±1")
    output_scale: float = Field(
        4.0,
        gt=0,
        le=100,
        description="[D] a in σ(a⟨Z⟩): σ(4) ≈ 0.98 lets predictions become confident",
    )
    init: Literal["uniform", "small"] = Field(
        "uniform", description="[D] θ₀ ~ U[0, 2π) (standard for hardware-efficient ansätze)"
    )
    qfi_refresh_every: int = Field(
        5, ge=1, le=100_000, description="SPEC §3 [D]: node QFI summary refreshed every 5 rounds"
    )
    qfi_probe_samples: int = Field(
        16,
        ge=1,
        le=4096,
        description="[D] fixed probe batch size for the QFI summary (mean of the diagonal)",
    )

    def circuit(self, n_classes: int = 2) -> CircuitSpec:
        """The :class:`CircuitSpec` these parameters describe, for a task with ``n_classes`` classes."""
        return CircuitSpec(
            n_qubits=self.n_qubits,
            n_layers=self.n_layers,
            entangler=self.entangler,
            n_classes=n_classes,
            reupload=self.reupload,
            readout_qubit=self.readout_qubit,
        )

    @model_validator(mode="after")
    def _readout_in_register(self) -> QNNParams:
        if self.readout_qubit is not None and self.readout_qubit >= self.n_qubits:
            raise ValueError(
                f"model.readout_qubit: {self.readout_qubit} is not allowed with model.n_qubits = "
                f"{self.n_qubits}; allowed: integer in [0, {self.n_qubits - 1}]"
            )
        return self
