"""The ``[network]`` section of a run configuration: topology, link physics, memories (SPEC §4).

Bounds and option sets sit on the fields (pydantic ``Field``/``Literal``), so the lead's config layer and its fuzz
tests read the same constraints the code enforces. Every default is the SPEC §4 value, or a [D] decision with its
reason in ``description``. Link-physics presets (``ideal``, ``nv``, ``ion``, ``paper``) fill every link field the
user leaves out; an explicit field always wins over the preset.

Cross-field rules (``length_min_km <= length_max_km``, ``coherence_min_s <= coherence_max_s``, a GraphML path for
``kind = "graphml"``) name both fields, the values and what is allowed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "LINK_PRESETS",
    "LinkParams",
    "MemoryParams",
    "NetworkParams",
    "TopologyParams",
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopologyParams(_Params):
    """Which graph of QPUs, repeaters and the broker the network is built on."""

    kind: str = Field(
        "star",
        description="SPEC §4: star to the broker by default; grid, waxman and random_geometric (with repeater "
        "nodes) or a user's GraphML file (graphml) as options, or any name registered in "
        "ceas.network.topology.TOPOLOGY_BUILDERS.",
    )
    kind_params: dict[str, Any] = Field(
        default_factory=dict,
        description="hyperparameters of the chosen topology, checked against its own Params (built-in kinds read "
        "the fields of this section instead and declare none)",
    )

    @field_validator("kind")
    @classmethod
    def _registered_kind(cls, value: str) -> str:
        from ceas.network.topology import TOPOLOGY_BUILDERS

        return TOPOLOGY_BUILDERS.check_name(value)

    n_nodes: int = Field(
        50, ge=1, le=100_000, description="SPEC §4: N = 50 QPUs [P], plus one broker."
    )
    length_min_km: float = Field(
        2.0,
        gt=0,
        le=10_000,
        description="SPEC §4: fibre lengths L_k ~ U[2, 40] km (heterogeneous) [D].",
    )
    length_max_km: float = Field(
        40.0,
        gt=0,
        le=10_000,
        description="SPEC §4: fibre lengths L_k ~ U[2, 40] km (heterogeneous) [D].",
    )
    n_repeaters: int = Field(
        10,
        ge=0,
        le=100_000,
        description="[D] waxman/random_geometric: repeater-only nodes; 10 (1 per 5 QPUs) gives alternative "
        "paths without dominating the graph.",
    )
    area_km: float = Field(
        100.0,
        gt=0,
        le=100_000,
        description="[D] waxman/random_geometric: side of the square the nodes are placed in; 100 km keeps "
        "typical hops inside SPEC's [2, 40] km fibre range.",
    )
    waxman_alpha: float = Field(
        0.2,
        gt=0,
        le=10,
        description="[D] Waxman distance scale (fraction of the largest distance); 0.2 with beta 0.6 makes a "
        "connected graph of 61 nodes in 100 km x 100 km almost surely.",
    )
    waxman_beta: float = Field(
        0.6, gt=0, le=1, description="[D] Waxman edge density; see waxman_alpha."
    )
    radius_km: float = Field(
        30.0,
        gt=0,
        le=100_000,
        description="[D] random_geometric: nodes closer than this are linked; 30 km stays inside the SPEC fibre "
        "range and connects 61 nodes in 100 km x 100 km almost surely.",
    )
    graphml_path: str | None = Field(
        None,
        description="graphml: the file to read (nodes may carry role, t_coh_s, x, y; edges must carry length_km).",
    )
    max_draws: int = Field(
        20,
        ge=1,
        le=10_000,
        description="[D] random topologies are redrawn until connected, at most this many times, then rejected.",
    )
    seed: int | None = Field(
        None,
        ge=0,
        description="fixed topology seed (the same graph for every run seed); None draws it from the run's stream.",
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> TopologyParams:
        if self.length_min_km > self.length_max_km:
            raise ValueError(
                f"length_min_km = {self.length_min_km} is not allowed; allowed: float in "
                f"(0, length_max_km = {self.length_max_km}]"
            )
        if self.kind == "graphml" and not self.graphml_path:
            raise ValueError(
                "graphml_path is missing; allowed: a path to a GraphML file when kind = 'graphml'"
            )
        from ceas.network.topology import TOPOLOGY_BUILDERS

        hyper = TOPOLOGY_BUILDERS.params(
            self.kind, self.kind_params, "network.topology.kind_params"
        )
        object.__setattr__(self, "kind_params", hyper.model_dump(exclude_unset=True))
        default = TopologyParams.model_construct()
        reads = TOPOLOGY_READS.get(self.kind, frozenset(TopologyParams.model_fields))
        for name in TopologyParams.model_fields:
            value = getattr(self, name)
            if (
                name not in reads
                and name not in ("kind", "kind_params")
                and value != getattr(default, name)
            ):
                raise ValueError(
                    f"{name}: {value!r} is not allowed with kind = {self.kind!r}; allowed: "
                    f"{getattr(default, name)!r}, the default (the {self.kind} topology does not read it)"
                )
        if self.kind == "graphml":
            # read and check the file now, so that `ceas validate` refuses a bad file before any run
            from ceas.network.topology import read_graphml

            read_graphml(self.graphml_path)
        return self


TOPOLOGY_READS: dict[str, frozenset[str]] = {
    "star": frozenset(
        {"n_nodes", "length_min_km", "length_max_km", "seed"}
    ),  # a plugin kind may read any
    "grid": frozenset({"n_nodes", "length_min_km", "length_max_km", "seed"}),
    "waxman": frozenset(
        {"n_nodes", "n_repeaters", "area_km", "waxman_alpha", "waxman_beta", "max_draws", "seed"}
    ),
    "random_geometric": frozenset(
        {"n_nodes", "n_repeaters", "area_km", "radius_km", "max_draws", "seed"}
    ),
    "graphml": frozenset({"n_nodes", "graphml_path"}),
}
"""The topology fields each built-in kind reads; any other field set away from its default is an error."""


LINK_PRESETS: dict[str, dict[str, Any]] = {
    # SPEC §4 defaults: heralded single-click at a midpoint station.
    "paper": {
        "scheme": "single_click",
        "eta0": 0.5,
        "alpha_db_per_km": 0.2,
        "theta": 0.05,
        "double_click_fidelity": 1.0,
        "c_km_per_s": 2.0e5,
    },
    # Upper bound: lossless fibre and detectors, perfect Bell pairs, success 1/2 (linear-optics Bell measurement).
    "ideal": {
        "scheme": "double_click",
        "eta0": 1.0,
        "alpha_db_per_km": 0.0,
        "theta": 0.05,
        "double_click_fidelity": 1.0,
        "c_km_per_s": 2.0e5,
    },
    # NV centres, single-click (Humphreys et al., Nature 558, 2018: theta ~ 0.1, F ~ 0.8-0.9) with telecom
    # conversion; indicative efficiency, not a fit.
    "nv": {
        "scheme": "single_click",
        "eta0": 0.01,
        "alpha_db_per_km": 0.2,
        "theta": 0.1,
        "double_click_fidelity": 0.9,
        "c_km_per_s": 2.0e5,
    },
    # Trapped ions, two-photon (double-click) heralding (Stephenson et al., PRL 124, 2020: F = 0.94) with telecom
    # conversion (Krutyanskiy et al., PRL 130, 2023); indicative efficiency, not a fit.
    "ion": {
        "scheme": "double_click",
        "eta0": 0.1,
        "alpha_db_per_km": 0.2,
        "theta": 0.05,
        "double_click_fidelity": 0.94,
        "c_km_per_s": 2.0e5,
    },
}
"""Link-physics presets; every link field a preset fills can be overridden explicitly."""


class LinkParams(_Params):
    """Heralded generation at a midpoint station (SPEC §4). Unset fields come from ``preset``."""

    preset: Literal["paper", "ideal", "nv", "ion"] = Field(
        "paper",
        description="SPEC §4: the paper preset holds the SPEC defaults; ideal, nv, ion as alternatives.",
    )
    scheme: Literal["single_click", "double_click"] = Field(
        "single_click",
        description="SPEC §4: single-click p = 2 theta eta, F0 = 1 - theta (default); double-click p = eta^2/2.",
    )
    eta0: float = Field(
        0.5,
        gt=0,
        le=1,
        description="SPEC §4: eta0 = 0.5 [D], device efficiency per arm (source + detector).",
    )
    alpha_db_per_km: float = Field(
        0.2, ge=0, le=10, description="SPEC §4: 0.2 dB/km, telecom fibre attenuation."
    )
    theta: float = Field(
        0.05,
        gt=0,
        le=0.5,
        description="SPEC §4: theta = 0.05 [D], single-click bright-state population (rate vs fidelity).",
    )
    double_click_fidelity: float = Field(
        1.0,
        ge=0.25,
        le=1,
        description="[D] double-click F0: loss cannot lower it (Barrett & Kok 2005), so 1 for ideal devices; "
        "presets set measured values.",
    )
    c_km_per_s: float = Field(
        2.0e5, gt=0, le=3.0e5, description="SPEC §4: light in fibre, 2e5 km/s; attempt period L/c."
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        preset = data.get("preset", "paper")
        if not isinstance(preset, str) or preset not in LINK_PRESETS:
            return data  # the Literal on ``preset`` reports the unknown name (or a table given where a name belongs)
        return {**LINK_PRESETS[preset], **data}

    @model_validator(mode="after")
    def _scheme_reads(self) -> LinkParams:
        # single-click fixes F0 = 1 - theta; double-click's rate and F0 do not depend on theta
        unused = "double_click_fidelity" if self.scheme == "single_click" else "theta"
        preset_value = LINK_PRESETS[self.preset][unused]
        if getattr(self, unused) != preset_value:
            raise ValueError(
                f"{unused}: {getattr(self, unused)!r} is not allowed with scheme = {self.scheme!r}; allowed: "
                f"{preset_value!r}, the {self.preset} preset's value (the {self.scheme} scheme does not read it)"
            )
        return self


class MemoryParams(_Params):
    """Quantum memories at the nodes: slots per link, coherence, cutoff, eviction (SPEC §4)."""

    slots: int = Field(
        20, ge=1, le=10_000, description="SPEC §4: M = 20 memory slots per link [D]."
    )
    coherence_min_s: float = Field(
        0.05,
        gt=0,
        le=1e6,
        description="SPEC §4: T_k log-uniform in [0.05, 1] s [D] (trapped ion ~85 ms to NV ~0.5-1 s).",
    )
    coherence_max_s: float = Field(
        1.0,
        gt=0,
        le=1e6,
        description="SPEC §4: T_k log-uniform in [0.05, 1] s [D] (trapped ion ~85 ms to NV ~0.5-1 s).",
    )
    broker_coherence_s: float | None = Field(
        None,
        gt=0,
        description="[D] None = ideal broker memory, so a star link decays with its QPU's T_k as SPEC §4 writes.",
    )
    f_min: float = Field(
        0.8,
        ge=0.25,
        le=1,
        description="SPEC §4: F_min = 0.8 [D]; pairs older than the cutoff age are discarded (1/4 = no cutoff).",
    )
    eviction: Literal["oldest", "lowest_fidelity", "block"] = Field(
        "oldest",
        description="[D] when a link's slots are full a new pair evicts the oldest stored pair (a fresh pair "
        "is worth more); lowest_fidelity evicts the pair that expires first; block discards the new pair "
        "(admission control: Erlang's loss system).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> MemoryParams:
        if self.coherence_min_s > self.coherence_max_s:
            raise ValueError(
                f"coherence_min_s = {self.coherence_min_s} is not allowed; allowed: float in "
                f"(0, coherence_max_s = {self.coherence_max_s}]"
            )
        return self


class NetworkParams(_Params):
    """The whole network layer: topology, link physics, memories and the swap success probability."""

    topology: TopologyParams = Field(
        default_factory=TopologyParams, description="SPEC §4 topology."
    )
    link: LinkParams = Field(default_factory=LinkParams, description="SPEC §4 heralded generation.")
    memory: MemoryParams = Field(default_factory=MemoryParams, description="SPEC §4 memories.")
    swap_success: float = Field(
        1.0,
        gt=0,
        le=1,
        description="[D] probability a Bell-state measurement at a repeater succeeds; 1 for memory-based "
        "(deterministic) swaps.",
    )
