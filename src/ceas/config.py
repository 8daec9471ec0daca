"""Typed, validated run configuration.

A run is described by one TOML file (or a preset name) plus ``--set key=value`` overrides. Every field carries its
bounds and option set as data (pydantic ``Field``/``Literal``), so validation, error messages and the fuzz tests all
read the same constraints. Every default is the SPEC's ``paper`` value with its reason beside it; the ``quick`` preset
only shrinks sizes.

Errors are reported by one formatter, :func:`format_error`, as one line per offending field::

    model.n_qubits: 40 is not allowed; allowed: integer in [1, 20]
"""

from __future__ import annotations

import hashlib
import json
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pydantic
import tomllib
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ceas._validate import _field_at, _short, allowed, format_error, unknown_name
from ceas.consensus.params import ConsensusParams
from ceas.errors import ConfigError, ValidationError
from ceas.network.params import NetworkParams
from ceas.partitions.params import PartitionParams
from ceas.qnn.params import QNNParams
from ceas.scheduling.params import SchedulingParams
from ceas.scheduling.policies.value_iteration import exact_size_error
from ceas.security.params import SecurityParams

PRESETS = ("paper", "quick")
__all__ = ["PRESETS", "RunConfig", "allowed", "format_error", "load_config", "to_toml", "validate"]

# Largest state the batched simulator may allocate, in bytes (nodes x samples x 2^n complex128, a few live buffers).
STATE_MEMORY_LIMIT_BYTES = 8 * 2**30


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


RUN_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"


class RunSection(_Section):
    name: str = Field(
        "ceas-run",
        min_length=1,
        max_length=120,
        pattern=RUN_NAME_PATTERN,
        description="folder name under out_dir",
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="every random stream derives from it")
    rounds: int = Field(100, ge=1, le=100_000, description="SPEC §8: 100 rounds")
    checkpoint_every: int = Field(10, ge=1, le=100_000, description="rounds between checkpoints")
    out_dir: str = Field("runs", min_length=1, description="parent folder of run folders")

    @field_validator("name")
    @classmethod
    def _a_folder_of_its_own(cls, name: str) -> str:
        # the pattern admits dots, so '.' and '..' would name out_dir itself or its parent
        if name.strip(".") == "":
            raise ValueError(
                f"{name!r} is not allowed; allowed: {allowed(RunConfig, ('run', 'name'))}, other than '.' or '..'"
            )
        return name


class DataSection(_Section):
    dataset: Literal["breast_cancer", "digits", "iris", "wine", "synthetic"] = Field(
        "breast_cancer",
        description="[D] bundled binary task; centralised 4-qubit model reaches >= 85 %. 'synthetic': a generated "
        "binary task of data.n_samples samples, for more nodes than a bundled set has samples",
    )
    n_samples: int | None = Field(
        None,
        ge=20,
        le=10_000_000,
        description="size of the 'synthetic' data set (default 4,000); only with dataset = 'synthetic'",
    )
    classes: list[int] | None = Field(
        None, description="original labels to keep (at least two, distinct); all when omitted"
    )

    @model_validator(mode="after")
    def _samples_for_synthetic_only(self) -> DataSection:
        if self.n_samples is not None and self.dataset != "synthetic":
            raise ValueError(
                f"data.n_samples: {self.n_samples} is not allowed with data.dataset = {self.dataset!r}; allowed: "
                "none (set data.dataset = 'synthetic' to choose the size)"
            )
        return self

    @model_validator(mode="after")
    def _distinct_classes(self) -> DataSection:
        c = self.classes
        if c is not None and (len(c) < 2 or len(set(c)) != len(c) or min(c) < 0):
            raise ValueError(
                f"data.classes: {c} is not allowed; allowed: a list of at least two distinct labels >= 0"
            )
        return self

    test_fraction: float = Field(0.25, gt=0, lt=1, description="held-out share, stratified")
    partition: Literal["iid", "dirichlet"] = Field(
        "iid", description="how training data is split over nodes"
    )
    alpha: float = Field(
        0.5,
        gt=0,
        le=1e6,
        description="SPEC §3: Dirichlet(0.5) label skew; only with partition = 'dirichlet'",
    )

    @model_validator(mode="after")
    def _alpha_for_dirichlet(self) -> DataSection:
        if self.partition != "dirichlet" and self.alpha != 0.5:
            raise ValueError(
                f"data.alpha: {self.alpha} is not allowed with data.partition = {self.partition!r}; allowed: 0.5, "
                "the default (set data.partition = 'dirichlet' to skew labels)"
            )
        return self


class TrainingSection(_Section):
    nodes: int = Field(50, ge=1, le=100_000, description="SPEC §4: N = 50 QPUs [P]")
    batch_size: int = Field(32, ge=1, le=4096, description="samples per participant per round")
    shots: int | None = Field(512, ge=1, le=10**9, description="SPEC §3: S = 512; none = exact")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="SPEC §3: Adam")
    lr: float = Field(0.05, gt=0, le=10, description="SPEC §3: lr 0.05")
    eval_every: int = Field(1, ge=1, le=100_000, description="rounds between test evaluations")


class NoiseSection(_Section):
    depolarizing_min: float = Field(0.0, ge=0, le=1, description="SPEC §3: p_k ~ U[0, 0.2]")
    depolarizing_max: float = Field(0.2, ge=0, le=1, description="SPEC §3: p_k ~ U[0, 0.2]")
    readout_error: float = Field(
        0.0, ge=0, le=0.5, description="optional symmetric readout flip probability"
    )
    mitigation: Literal["off", "calibrated"] = Field(
        "calibrated",
        description="SPEC §3 [D, measured]: 'calibrated' = each node divides its measured expectations by its own "
        "known contraction (1-p)^L(1-2r) before the loss (unbiased for the noiseless gradient, 1/c^2 the shot "
        "variance); with it Proposition 1 holds in situ (measured/predicted 0.366/0.360; without: 0.434/0.378, "
        "the nodes' noise biases being correlated) and CEAS's paper-config accuracy moved from -1.5 to +1.1 points "
        "(10 paired seeds, benchmarks/stamp_ablation.py); 'off' = it sends what it measures",
    )

    @model_validator(mode="after")
    def _ordered(self) -> NoiseSection:
        if self.depolarizing_min > self.depolarizing_max:
            raise ValueError(
                f"noise.depolarizing_min: {self.depolarizing_min} is not allowed; allowed: float in "
                f"[0, noise.depolarizing_max = {self.depolarizing_max}]"
            )
        return self


class BrokerSection(_Section):
    enabled: bool = Field(
        True, description="SPEC §2: train through the cross-layer broker and the network"
    )
    payload: Literal["quantum", "classical"] = Field(
        "quantum",
        description="SPEC §4: gradients teleported as quantum payloads; classical = sent authenticated",
    )
    clip: float = Field(
        1.0, gt=0, le=1e6, description="SPEC §4: payload components clipped to [-G, G], G = 1"
    )
    tight_claims: bool = Field(
        True,
        description="[D] stamps: a fidelity claim is capped by the broker's ledger fidelity of the payload pairs, a QFI "
        "claim by the round's median claim relative to each node's noise bound (a Byzantine node claiming the bounds "
        "otherwise outranks honest peers in the schedule); false = SPEC §6 bounds only",
    )
    payload_scale: Literal["node", "fixed"] = Field(
        "node",
        description=(
            "[D] quantum payload encoding <Z> = g/s: 'node' sends each message's own scale s = max|g| <= G "
            "classically (same bound on any sender, (G/s)^2 less noise: honest components are ~0.1-0.3 of G); "
            "'fixed' is SPEC §4 literally (s = G)"
        ),
    )


def _valid_nodes(nodes: int) -> bool:
    try:
        TrainingSection(nodes=nodes)
    except pydantic.ValidationError:
        return False
    return True


class RunConfig(_Section):
    """The whole configuration of one run: our own sections plus each layer's own parameter model."""

    run: RunSection = RunSection()
    model: QNNParams = QNNParams()
    data: DataSection = DataSection()
    training: TrainingSection = TrainingSection()
    noise: NoiseSection = NoiseSection()
    network: NetworkParams = NetworkParams()
    scheduling: SchedulingParams = SchedulingParams()
    consensus: ConsensusParams = ConsensusParams()
    security: SecurityParams = SecurityParams()
    broker: BrokerSection = BrokerSection()
    partitions: PartitionParams = PartitionParams()

    @model_validator(mode="before")
    @classmethod
    def _nodes_from_training(cls, data: Any) -> Any:
        """training.nodes is the one place N is set; the network topology takes it unless it says otherwise."""
        if not isinstance(data, dict):
            return data
        training = data.get("training", {})
        nodes = (
            training.get("nodes", TrainingSection().nodes) if isinstance(training, dict) else None
        )
        net = data.get("network", {})
        topo = net.get("topology", {}) if isinstance(net, dict) else None
        # only a valid N is copied: an invalid one is reported once, on training.nodes (the field the user set)
        valid = isinstance(nodes, int) and not isinstance(nodes, bool) and _valid_nodes(nodes)
        if valid and isinstance(topo, dict):
            if "n_nodes" in topo and topo["n_nodes"] != nodes:
                raise ValueError(
                    f"network.topology.n_nodes: {topo['n_nodes']!r} is not allowed; allowed: training.nodes = {nodes}"
                    " (set the number of nodes once, in training.nodes)"
                )
            data = {**data, "network": {**net, "topology": {**topo, "n_nodes": nodes}}}
        return data

    @model_validator(mode="after")
    def _cross_checks(self) -> RunConfig:
        if self.scheduling.participants > self.training.nodes:
            raise ValueError(
                f"scheduling.participants: {self.scheduling.participants} is not allowed; allowed: integer in "
                f"[1, training.nodes = {self.training.nodes}]"
            )
        state_bytes = (
            self.scheduling.participants
            * self.training.batch_size
            * 16
            * 2**self.model.n_qubits
            * 4
        )
        if state_bytes > STATE_MEMORY_LIMIT_BYTES:
            raise ValueError(
                f"model.n_qubits: {self.model.n_qubits} is not allowed with {self.scheduling.participants} "
                f"participants x {self.training.batch_size} samples; allowed: a state under "
                f"{STATE_MEMORY_LIMIT_BYTES // 2**30} GiB (this needs {state_bytes / 2**30:.1f} GiB)"
            )
        _ignored_by_mode(self)
        features, n_classes = _dataset_shape(self.data.dataset)
        if self.model.n_qubits > features:
            raise ValueError(
                f"model.n_qubits: {self.model.n_qubits} is not allowed with data.dataset = {self.data.dataset!r}; "
                f"allowed: integer in [1, {features}] (one PCA feature per qubit)"
            )
        if self.data.classes is None and n_classes > self.model.n_qubits:
            raise ValueError(
                f"data.classes: none (all {n_classes} of {self.data.dataset}) is not allowed with model.n_qubits = "
                f"{self.model.n_qubits}; allowed: at most {self.model.n_qubits} classes (one <Z> per class)"
            )
        if self.broker.enabled and self.scheduling.policy == "value-iteration":
            problem = exact_size_error(
                self.training.nodes, self.network.memory.slots, self.scheduling.age_bins
            )
            if problem:
                raise ValueError(problem)
        if self.data.classes is not None and len(self.data.classes) > self.model.n_qubits:
            raise ValueError(
                f"data.classes: {self.data.classes} is not allowed; allowed: at most model.n_qubits = "
                f"{self.model.n_qubits} classes (one <Z> per class)"
            )
        _partition_mode(self)
        return self

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form; a checkpoint is only resumed under the same digest.

        A ``[partitions]`` section left at its default is not part of the form: the section alone does not change the
        digest of a data-level run (nor the grid results stored under it)."""
        data = self.model_dump(mode="json")
        if self.partitions == PartitionParams():
            del data["partitions"]
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def _dataset_shape(name: str) -> tuple[int, int]:
    """(features, classes) of a data set: the bundled sets' are known (:data:`_BUNDLED_SHAPES`, so that checking a
    config never imports scikit-learn, ~1-2 s); any other is read once from its files."""
    if name in _BUNDLED_SHAPES:
        return _BUNDLED_SHAPES[name]
    if name not in _DATASET_SHAPES:
        from ceas.qnn.data import SYNTHETIC_FEATURES, _raw

        if name == "synthetic":
            _DATASET_SHAPES[name] = (SYNTHETIC_FEATURES, 2)
        else:
            x, y = _raw(name, None, 0)
            _DATASET_SHAPES[name] = (int(x.shape[1]), len(set(y.tolist())))
    return _DATASET_SHAPES[name]


_DATASET_SHAPES: dict[str, tuple[int, int]] = {}
_BUNDLED_SHAPES: dict[str, tuple[int, int]] = {
    "breast_cancer": (30, 2),
    "digits": (64, 10),
    "iris": (4, 3),
    "wine": (13, 3),
}
"""(features, classes) of scikit-learn's bundled data sets (``tests/qnn/test_data.py`` checks them against the
files)."""


# ----------------------------------------------------------------------------------------------------------------
# settings the chosen mode ignores are errors, not silence
# ----------------------------------------------------------------------------------------------------------------

# Fields that the run without the broker (DataLevelTrainer) reads besides run, data, training, noise and model:
# participants are sampled uniformly and the rule alone aggregates the gradients.
_WITHOUT_BROKER_READS = {
    "scheduling.participants",
    "consensus.aggregator",
    "consensus.aggregator_params",
    "network.topology.n_nodes",  # derived from training.nodes
    "security.byzantine_fraction",  # checked on its own: must be 0
    "broker.enabled",
}
_BROKER_ONLY = ("network", "scheduling", "consensus", "security", "broker")
_BROKER_ONLY_MODEL = ("qfi_refresh_every", "qfi_probe_samples")


def _changed(value: BaseModel, default: BaseModel, prefix: str):
    """(path, value, default) of every field of ``value`` that differs from ``default``, nested sections walked."""
    for name in type(value).model_fields:
        mine, theirs = getattr(value, name), getattr(default, name)
        if isinstance(mine, BaseModel) and type(mine) is type(theirs):
            yield from _changed(mine, theirs, f"{prefix}{name}.")
        elif mine != theirs:
            yield f"{prefix}{name}", mine, theirs


def _refuse(path: str, value: Any, needs: str, allowed: str) -> None:
    raise ValueError(f"{path}: {_short(value)} is not allowed with {needs}; allowed: {allowed}")


def _ignored_by_mode(cfg: RunConfig) -> None:
    """Raise on the first setting the configured mode would ignore (one line: field, value, why)."""
    default = RunConfig.model_construct()
    if not cfg.broker.enabled:
        if cfg.security.byzantine_fraction > 0:
            _refuse(
                "security.byzantine_fraction", cfg.security.byzantine_fraction, "broker.enabled = false",
                "0 (Byzantine nodes act only through the broker; set broker.enabled = true)",
            )  # fmt: skip
        for section in _BROKER_ONLY:
            for path, value, dflt in _changed(
                getattr(cfg, section), getattr(default, section), f"{section}."
            ):
                if path not in _WITHOUT_BROKER_READS and not (
                    path == "security.attacks" and not value
                ):
                    _refuse(path, value, "broker.enabled = false",
                            f"{dflt!r}, the default (only the broker reads it; set broker.enabled = true)")  # fmt: skip
        for name in _BROKER_ONLY_MODEL:
            if getattr(cfg.model, name) != getattr(default.model, name):
                _refuse(f"model.{name}", getattr(cfg.model, name), "broker.enabled = false",
                        f"{getattr(default.model, name)!r}, the default (only the broker reads it; set "
                        "broker.enabled = true)")  # fmt: skip
        return
    if cfg.broker.payload == "classical":
        for path in ("scheduling.payload_copies", "broker.payload_scale", "broker.clip"):
            section, name = path.split(".")
            value, dflt = (
                getattr(getattr(cfg, section), name),
                getattr(getattr(default, section), name),
            )
            if value != dflt:
                _refuse(path, value, "broker.payload = 'classical'",
                        f"{dflt!r}, the default (only quantum payloads read it; set broker.payload = 'quantum')")  # fmt: skip
    from ceas.security.attacks import ATTACKS

    for name in cfg.security.attacks:
        if getattr(ATTACKS[name], "surface", None) == "equivocation":
            _refuse("security.attacks", name, "broker.enabled = true",
                    "attacks on the surfaces the broker runs (equivocation needs every reply sent to every "
                    "participant; replies reach the broker node even without a trusted broker)")  # fmt: skip
    _agreement_mode(cfg, default, ATTACKS)
    _authentication_mode(cfg)
    _inclusion_mode(cfg)
    if cfg.security.byzantine_fraction == 0:
        for path, value, dflt in _changed(cfg.security, default.security, "security."):
            if path.startswith("security.attack") and not (
                path == "security.attacks" and not value
            ):
                _refuse(path, value, "security.byzantine_fraction = 0",
                        ("[]" if path == "security.attacks" else f"{dflt!r}, the default")
                        + " (no node is Byzantine, so no attack runs)")  # fmt: skip


def _authentication_mode(cfg: RunConfig) -> None:
    """``security.authentication = false`` is an ablation of the trusted broker's data-level round under attack."""
    if cfg.security.authentication:
        return
    why = "'true' (the ablation 'CEAS without authentication' needs {})"
    if cfg.security.byzantine_fraction == 0:
        _refuse("security.authentication", False, "security.byzantine_fraction = 0",
                why.format("an adversary: with no Byzantine node nothing is injected"))  # fmt: skip
    if not cfg.consensus.trusted_broker:
        _refuse("security.authentication", False, "consensus.trusted_broker = false",
                why.format("the trusted broker's replies; agreement authenticates over pairwise key pools, "
                           "which are its whole protocol"))  # fmt: skip
    if cfg.partitions.scheme != "data":
        _refuse("security.authentication", False, f"partitions.scheme = {cfg.partitions.scheme!r}",
                why.format("whole updates per node; a split circuit's QPUs send blocks"))  # fmt: skip


def _inclusion_mode(cfg: RunConfig) -> None:
    """``consensus.inclusion_weighting`` needs participants drawn with known probabilities, one node per update."""
    if not cfg.consensus.inclusion_weighting:
        return
    why = "false (inclusion weighting needs {})"
    policy = cfg.scheduling.policy
    if policy in ("oblivious", "greedy-fidelity", "value-iteration") or (
        policy == "ceas" and cfg.scheduling.selection != "sample"
    ):
        needs = f"scheduling.policy = {policy!r}" + (
            f" and scheduling.selection = {cfg.scheduling.selection!r}" if policy == "ceas" else ""
        )
        _refuse("consensus.inclusion_weighting", True, needs,
                why.format("a drawn participant set: ceas with selection = 'sample', or random"))  # fmt: skip
    if not cfg.consensus.trusted_broker:
        _refuse("consensus.inclusion_weighting", True, "consensus.trusted_broker = false",
                why.format("a plain draw; without a trusted broker seating skips nodes short of agreement key"))  # fmt: skip
    if cfg.partitions.scheme != "data":
        _refuse("consensus.inclusion_weighting", True, f"partitions.scheme = {cfg.partitions.scheme!r}",
                why.format("one node per update; a split circuit seats replicas"))  # fmt: skip


def _agreement_mode(cfg: RunConfig, default: RunConfig, attacks: Any) -> None:
    """Settings of agreement without a trusted broker (``consensus.trusted_broker = false``) and their bound."""
    con = cfg.consensus
    agreement_attacks = [
        n for n in cfg.security.attacks if getattr(attacks[n], "surface", None) == "agreement"
    ]
    if con.trusted_broker:
        for name in ("agreement_attempts", "agreement_key_pairs"):
            value, dflt = getattr(con, name), getattr(default.consensus, name)
            if value != dflt:
                _refuse(f"consensus.{name}", value, "consensus.trusted_broker = true",
                        f"{dflt!r}, the default (only agreement without a trusted broker reads it; set "
                        "consensus.trusted_broker = false)")  # fmt: skip
        for name in agreement_attacks:
            _refuse("security.attacks", name, "consensus.trusted_broker = true",
                    "attacks on the surfaces the broker runs (agreement attacks need "
                    "consensus.trusted_broker = false)")  # fmt: skip
    elif cfg.security.byzantine_fraction >= 1 / 3:
        _refuse("security.byzantine_fraction", cfg.security.byzantine_fraction,
                "consensus.trusted_broker = false",
                "[0, 1/3) (agreement needs n > 3f among the round's agreeing nodes)")  # fmt: skip


def _partition_mode(cfg: RunConfig) -> None:
    """Settings of the split-circuit schemes (``partitions.scheme`` other than "data", SPEC §7, Fig. 1b-c): each
    replica of the circuit occupies K QPUs and trains through the broker; the scheme's own settings only where they
    apply."""
    part, default = cfg.partitions, RunConfig.model_construct().partitions
    own = {"unitary": ("blocks",), "circuit": ("qubits_per_qpu", "placement")}
    for name in ("blocks", "qubits_per_qpu", "placement"):
        if part.scheme not in (*own, "data") or name in own.get(part.scheme, ()):
            continue  # a plugin scheme may read the built-in fields in its from_params
        if getattr(part, name) != getattr(default, name):
            owner = next(k for k, v in own.items() if name in v)
            _refuse(f"partitions.{name}", getattr(part, name), f"partitions.scheme = {part.scheme!r}",
                    f"{getattr(default, name)!r}, the default (only the {owner}-level scheme reads it)")  # fmt: skip
    if part.scheme == "data":
        from ceas.security.attacks import ATTACKS

        for name in cfg.security.attacks:
            if getattr(ATTACKS[name], "surface", None) == "state":
                _refuse("security.attacks", name, "partitions.scheme = 'data'",
                        "attacks on the surfaces this scheme runs (a state attack corrupts the state a QPU of a "
                        "split circuit forwards; set partitions.scheme to 'unitary' or 'circuit')")  # fmt: skip
        for name in ("simulator", "trajectories"):
            if hasattr(part, name) and getattr(part, name) != getattr(default, name):
                _refuse(f"partitions.{name}", getattr(part, name), "partitions.scheme = 'data'",
                        f"{getattr(default, name)!r}, the default (the data-level scheme runs the pure-state "
                        "simulator)")  # fmt: skip
        return
    needs = f"partitions.scheme = {part.scheme!r}"
    if not cfg.broker.enabled:
        _refuse("broker.enabled", False, needs, "true (split circuits train through the broker and the network)")
    if cfg.training.shots is None:
        _refuse("training.shots", "none", needs,
                "an integer >= 1 (every shot of a split circuit consumes fresh pairs: the demand counts shots)")  # fmt: skip
    if cfg.broker.payload != "classical":
        _refuse("broker.payload", cfg.broker.payload, needs,
                "'classical' (each QPU sends its block's gradient authenticated; quantum payloads of split "
                "gradients are not modelled)")  # fmt: skip
    if cfg.scheduling.policy == "value-iteration":
        _refuse("scheduling.policy", cfg.scheduling.policy, needs,
                "a policy that schedules replicas (the value-iteration instance is per node)")  # fmt: skip
    if not cfg.consensus.trusted_broker:
        _refuse("consensus.trusted_broker", False, needs,
                "true (agreement without a trusted broker is per node, not per block)")  # fmt: skip
    from ceas.partitions import scheme_from_params

    _, n_classes = _dataset_shape(cfg.data.dataset)
    classes = len(cfg.data.classes) if cfg.data.classes is not None else n_classes
    try:
        k = scheme_from_params(part, cfg.model.circuit(classes)).n_qpus
    except ValidationError as err:
        raise ValueError(f"partitions: {err}") from None
    if cfg.training.nodes % k:
        _refuse("training.nodes", cfg.training.nodes, f"{needs} ({k} QPUs per replica)",
                f"a multiple of {k} (the nodes form replicas of {k} QPUs)")  # fmt: skip
    if cfg.scheduling.participants > cfg.training.nodes // k:
        _refuse("scheduling.participants", cfg.scheduling.participants, f"{needs} ({k} QPUs per replica)",
                f"integer in [1, {cfg.training.nodes // k}] (with a split circuit it counts replicas of {k} QPUs)")  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# error formatting: one formatter for every failure
# ----------------------------------------------------------------------------------------------------------------


def validate(data: dict[str, Any]) -> RunConfig:
    """Build a RunConfig from plain data, turning every validation failure into one ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a table of sections, got {type(data).__name__}")
    try:
        return RunConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        lines = [format_error(RunConfig, e) for e in exc.errors()]
        raise ConfigError("\n".join(dict.fromkeys(lines))) from None


# ----------------------------------------------------------------------------------------------------------------
# loading: presets, files, overrides
# ----------------------------------------------------------------------------------------------------------------


def preset_text(name: str) -> str:
    """The TOML text of a built-in preset (``paper`` or ``quick``)."""
    if name not in PRESETS:
        raise ConfigError(str(unknown_name("preset", name, PRESETS)))
    return resources.files("ceas.presets").joinpath(f"{name}.toml").read_text()


def read_toml(source: str | Path) -> dict[str, Any]:
    """Parse a preset name or a TOML file into plain data; errors become one-line ConfigErrors."""
    text: str
    label = str(source)
    if isinstance(source, str) and source in PRESETS:
        text = preset_text(source)
    else:
        path = Path(source)
        if not path.exists():
            raise ConfigError(
                f"config file {label!r} does not exist; allowed: a TOML file or a preset ({', '.join(PRESETS)})"
            )
        if path.is_dir():
            raise ConfigError(f"config file {label!r} is a directory; allowed: a TOML file")
        if not path.is_file():  # a FIFO, socket or device: opening it could block forever
            raise ConfigError(
                f"config file {label!r} is not a regular file; allowed: a TOML file or a preset ({', '.join(PRESETS)})"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {label!r} cannot be read: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {label!r} is not valid TOML: {exc}") from None


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``section.key=value``; the value is read as a TOML value (``5``, ``0.1``, ``"x"``, ``[1, 2]``, ``true``)
    and falls back to a plain string; ``none``/``null`` means unset."""
    if "=" not in item:
        raise ConfigError(
            f"--set {item!r} is not allowed; allowed: KEY=VALUE, e.g. training.nodes=20"
        )
    key, raw = item.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(
            f"--set {item!r} is not allowed; allowed: KEY=VALUE, e.g. training.nodes=20"
        )
    raw = raw.strip()
    if raw.lower() in ("none", "null"):
        return parts, None
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with every ``--set`` applied (unknown keys are caught by validation)."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        parts, value = parse_override(item)
        node = out
        for i, p in enumerate(parts[:-1]):
            _refuse_key_under_value(item, parts[: i + 1])
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {p!r} is a value, not a section")
            node = child
        if value is None:
            node.pop(parts[-1], None)
            if parts[-1] in _nullable_keys(parts):
                node[parts[-1]] = None
        else:
            node[parts[-1]] = value
    return out


def _refuse_key_under_value(item: str, path: list[str]) -> None:
    """``--set a.b.c=1`` where the schema says ``a.b`` is a plain value (not a section): one line naming it."""
    info = _field_at(RunConfig, tuple(path))
    if info is None:
        return
    annotation = info.annotation
    options = [annotation, *typing.get_args(annotation)]
    if any(
        a is Any
        or typing.get_origin(a) is dict
        or a is dict
        or (isinstance(a, type) and issubclass(a, BaseModel))
        for a in options
    ):
        return
    name = ".".join(path)
    raise ConfigError(
        f"--set {item!r}: {name} is a value, not a section; allowed: {name}=VALUE with VALUE "
        f"{allowed(RunConfig, tuple(path))}"
    )


def _nullable_keys(parts: list[str]) -> set[str]:
    info = _field_at(RunConfig, tuple(parts))
    if info is not None and type(None) in typing.get_args(info.annotation):
        return {parts[-1]}
    return set()


def load_config(source: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a preset or TOML file, apply overrides, validate. Raises ConfigError with one line per problem."""
    data = read_toml(source)
    data = apply_overrides(data, overrides or [])
    return validate(_none_strings(data))


def _none_strings(data: Any) -> Any:
    """TOML has no null: the string "none" stands for an unset optional value (e.g. ``shots = "none"``)."""
    if isinstance(data, dict):
        return {k: _none_strings(v) for k, v in data.items()}
    if isinstance(data, str) and data.lower() == "none":
        return None
    return data


def to_toml(cfg: RunConfig) -> str:
    """Serialise a config as TOML (the run snapshot); ``None`` is written as the string "none"."""
    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any]) -> None:
        lines.append(f"[{prefix}]")
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        for key, value in values.items():
            if key not in nested:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
        for key, value in nested.items():
            table(f"{prefix}.{key}", value)

    for section, values in cfg.model_dump(mode="json").items():
        table(section, values)
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if value is None:
        return '"none"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
