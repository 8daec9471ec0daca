"""Configuration: presets are valid, every bad input is one clear line with exit status 2, never a traceback."""

from __future__ import annotations

import annotated_types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from ceas.cli import main
from ceas.config import RunConfig, load_config, to_toml, validate
from ceas.errors import ConfigError


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("preset", ["paper", "quick"])
def test_presets_validate(preset, capsys):
    code, out, err = run_cli(capsys, "validate", preset)
    assert code == 0, err
    assert "valid" in out


def test_paper_preset_equals_defaults():
    """The paper preset only writes out the SPEC defaults: it must equal the defaults everywhere it speaks."""
    cfg = load_config("paper")
    default = RunConfig()
    for section in RunConfig.model_fields:
        if section != "run":
            assert getattr(cfg, section) == getattr(default, section), section


def test_config_files_in_repo_match_presets():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for name in ("paper", "quick"):
        assert load_config(str(root / "configs" / f"{name}.toml")) == load_config(name)


def test_snapshot_round_trips(tmp_path):
    cfg = load_config("quick", ["training.shots=64", "data.classes=[0, 1]", "data.dataset=digits"])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    assert load_config(str(path)) == cfg
    assert load_config(str(path)).digest() == cfg.digest()


BAD_OVERRIDES = [
    ("training.shots=-5", "training.shots"),
    ("training.shots=0", "training.shots"),
    ("model.n_qubits=40", "model.n_qubits"),
    ("model.n_qubits=0", "model.n_qubits"),
    ("model.n_layers=0", "model.n_layers"),
    ("training.nodes=0", "training.nodes"),
    ("scheduling.participants=0", "scheduling.participants"),
    ("scheduling.participants=51", "scheduling.participants"),
    ("network.memory.f_min=1.5", "network.memory.f_min"),
    ("network.topology.n_nodes=7", "network.topology.n_nodes"),
    ("consensus.aggregator=krumm", "consensus.aggregator"),
    ("scheduling.policy=cease", "scheduling.policy"),
    ("security.byzantine_fraction=0.6", "security.byzantine_fraction"),
    ('security.attacks=["sign-flop"]', "security.attacks"),
    ("data.alpha=0", "data.alpha"),
    ("data.alpha=-1", "data.alpha"),
    ("data.test_fraction=1.0", "data.test_fraction"),
    ("data.dataset=mnist", "data.dataset"),
    ("model.entangler=rnig", "model.entangler"),
    ("model.loss=hinge", "model.loss"),
    ("training.lr=0", "training.lr"),
    ("training.batch_size=0", "training.batch_size"),
    ("training.optimizer=lbfgs", "training.optimizer"),
    ("noise.readout_error=0.7", "noise.readout_error"),
    ("noise.depolarizing_max=1.5", "noise.depolarizing_max"),
    ("noise.depolarizing_min=0.3", "noise.depolarizing_min"),
    ("run.rounds=0", "run.rounds"),
    ("run.seed=-1", "run.seed"),
    ("run.name=a/b", "run.name"),
    ("model.foo=1", "model.foo"),
    ("modle.n_qubits=4", "modle"),
    ("training.shots=many", "training.shots"),
    ("model.n_qubits=4.5", "model.n_qubits"),
    ("data.classes=[1]", "data.classes"),
    ("data.classes=[0,1,2,3,4,5]", "data.classes"),
    ("model.n_qubits=20", "model.n_qubits"),  # allowed alone, but the state would not fit in memory
]


@pytest.mark.parametrize(("override", "field"), BAD_OVERRIDES)
def test_bad_value_is_one_line_exit_2(capsys, override, field):
    code, _out, err = run_cli(capsys, "validate", "quick", "--set", override)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert field in lines[0]
    assert "allowed" in lines[0] or "valid" in lines[0]


BAD_COMMANDS = [
    ["validate", "does-not-exist.toml"],
    ["validate", "papr"],
    ["run", "quick", "--bogus"],
    ["validate", "quick", "--set", "no_equals_sign"],
    ["validate", "quick", "--set", "=3"],
    ["frobnicate"],
    ["run"],
]


@pytest.mark.parametrize("argv", BAD_COMMANDS)
def test_bad_command_line_is_one_line_exit_2(capsys, argv):
    code, _out, err = run_cli(capsys, *argv)
    assert code == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_bad_toml_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nn_qubits = 4\n")
    code, _, err = run_cli(capsys, "validate", str(bad))
    assert code == 2 and "not valid TOML" in err and len(err.strip().splitlines()) == 1


def test_error_names_value_and_range():
    with pytest.raises(ConfigError) as info:
        load_config("quick", ["noise.readout_error=0.7"])
    assert str(info.value) == "noise.readout_error: 0.7 is not allowed; allowed: float in [0, 0.5]"


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match=r"did you mean 'n_qubits'"):
        load_config("quick", ["model.n_qubit=4"])


def _numeric_fields():
    """Every bounded numeric field of the schema, with its bounds: walked from the constraints themselves."""

    def walk(prefix, model):
        for name, info in model.model_fields.items():
            ann = info.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                yield from walk(f"{prefix}{name}.", ann)
                continue
            for meta in info.metadata:
                for attr, delta in (("ge", -1), ("gt", 0), ("le", 1), ("lt", 0)):
                    if isinstance(meta, getattr(annotated_types, attr.capitalize())):
                        yield f"{prefix}{name}", getattr(meta, attr) + delta

    yield from walk("", RunConfig)


@pytest.mark.parametrize(("key", "value"), list(_numeric_fields()))
def test_every_bound_is_enforced(capsys, key, value):
    """Fuzz from the schema: a value just past each bound is rejected with one line naming the field."""
    code, _, err = run_cli(capsys, "validate", "quick", "--set", f"{key}={value}")
    assert code == 2
    assert err.strip().splitlines()[0].startswith(f"ceas: error: {key}")


toml_scalars = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.booleans(),
    st.lists(st.integers(-3, 3), max_size=3),
)
sections = st.sampled_from(["run", "model", "data", "training", "noise", "bogus"])
keys = st.sampled_from(
    [
        "seed",
        "rounds",
        "n_qubits",
        "n_layers",
        "entangler",
        "alpha",
        "nodes",
        "shots",
        "lr",
        "classes",
        "readout_error",
        "name",
        "dataset",
        "participants",
        "zzz",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(sections, st.dictionaries(keys, toml_scalars, max_size=4), max_size=4))
def test_random_config_never_tracebacks(data):
    """Random TOML-shaped input either validates or raises ConfigError: no other exception escapes."""
    try:
        validate(data)
    except ConfigError as exc:
        assert str(exc).strip()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_toml_text_never_tracebacks(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "c.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass") if False else path.write_bytes(
        text.encode("utf-8", "replace")
    )
    try:
        load_config(str(path))
    except ConfigError:
        pass


def test_error_formatter_reads_allowed_from_schema():
    from ceas.config import allowed

    assert allowed(RunConfig, ("model", "n_qubits")) == "integer in [1, 20]"
    assert allowed(RunConfig, ("data", "alpha")).startswith("float in (0, ")
    assert "'iid'" in allowed(RunConfig, ("data", "partition"))
    # registry names (plugins add more) list themselves with the closest suggestion
    with pytest.raises(
        ConfigError, match=r"model.entangler: entangler 'rnig' is unknown \(did you mean 'ring'"
    ):
        load_config("quick", ["model.entangler=rnig"])
    assert allowed(RunConfig, ("network", "memory", "slots")).startswith("integer in [")


def test_unwritable_output_folder_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(capsys, "run", "quick", "--quiet", "--set", f'run.out_dir="{blocker}"')
    assert code == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "cannot access" in err


IGNORED_BY_MODE = [
    # (preset, overrides, expected start of the one error line)
    ("paper", ["broker.enabled=false"], "security.byzantine_fraction: 0.2 is not allowed with broker.enabled = false"),
    ("quick", ["network.memory.slots=3"], "network.memory.slots: 3 is not allowed with broker.enabled = false"),
    ("quick", ["scheduling.policy=random"], "scheduling.policy: 'random' is not allowed with broker.enabled = false"),
    ("quick", ["model.qfi_refresh_every=2"], "model.qfi_refresh_every: 2 is not allowed with broker.enabled = false"),
    ("paper", ["broker.payload=classical", "scheduling.payload_copies=2"],
     "scheduling.payload_copies: 2 is not allowed with broker.payload = 'classical'"),
    ("paper", ["security.byzantine_fraction=0", 'security.attacks=["ipm"]'],
     "security.attacks: ('ipm',) is not allowed with security.byzantine_fraction = 0; allowed: []"),
    ("paper", ['security.attacks=["equivocation"]'], "security.attacks: 'equivocation' is not allowed"),
    ("paper", ["network.topology.n_repeaters=3"],
     "network.topology.n_repeaters: 3 is not allowed with kind = 'star'"),
    ("paper", ["network.link.scheme=double_click", "network.link.theta=0.1"],
     "network.link.theta: 0.1 is not allowed with scheme = 'double_click'"),
    ("paper", ["consensus.trust_metric=cosine", "consensus.trust_clip=2"],
     "consensus.trust_clip: 2.0 is not allowed with consensus.trust_metric = 'cosine'"),
    ("quick", ["data.alpha=0.1"], "data.alpha: 0.1 is not allowed with data.partition = 'iid'"),
]  # fmt: skip


@pytest.mark.parametrize(("preset", "overrides", "start"), IGNORED_BY_MODE)
def test_a_setting_the_mode_ignores_is_a_one_line_error(capsys, preset, overrides, start):
    argv = ["validate", preset]
    for item in overrides:
        argv += ["--set", item]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ceas: error: {start}"), err
    assert "allowed" in lines[0]


def test_the_modes_accept_what_they_read(capsys):
    for argv in (
        ["validate", "quick", "--set", "consensus.aggregator=krum"],
        [
            "validate",
            "paper",
            "--set",
            "security.byzantine_fraction=0",
            "--set",
            "security.attacks=[]",
        ],
        [
            "validate",
            "paper",
            "--set",
            "broker.payload=classical",
            "--set",
            'security.attacks=["adaptive"]',
        ],
        ["validate", "paper", "--set", "data.partition=dirichlet", "--set", "data.alpha=0.1"],
    ):
        code, _, err = run_cli(capsys, *argv)
        assert code == 0, err


def test_graphml_with_a_negative_length_is_refused_at_validation(tmp_path, capsys):
    path = tmp_path / "net.graphml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n'
        '<key id="r" for="node" attr.name="role" attr.type="string"/>\n'
        '<key id="l" for="edge" attr.name="length_km" attr.type="double"/>\n'
        '<graph edgedefault="undirected">\n'
        '<node id="b"><data key="r">broker</data></node><node id="q0"/><node id="q1"/>\n'
        '<edge source="b" target="q0"><data key="l">-5.0</data></edge>\n'
        '<edge source="b" target="q1"><data key="l">3.0</data></edge>\n'
        "</graph></graphml>\n"
    )
    for preset in ("paper", "quick"):  # refused whether or not the broker would build the network
        code, _, err = run_cli(capsys, "validate", preset, "--set", "network.topology.kind=graphml",
                               "--set", f'network.topology.graphml_path="{path}"')  # fmt: skip
        assert code == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert (
            "length_km must be in (0, inf), got -5.0" in lines[0] and "network.topology" in lines[0]
        )
