"""The package's layers import downwards only (DESIGN.md): a test over every import statement in src/ceas.

Order, lowest first: the shared base (errors, rng, validation, lazy imports, the registry recipe, plugin loading); qnn and network; scheduling, security, consensus and
partitions; config (which gathers every layer's parameters); the broker (the one place that wires the layers);
experiment and cli on top. A module may import its own package and anything lower; within one rank only the pairs
listed in SIDEWAYS (the base units of rank 0 form one layer). Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ceas"

RANK = {
    "ceas": 0,
    "errors": 0,
    "rng": 0,
    "_validate": 0,
    "_lazy": 0,
    "registry": 0,
    "plugins": 0,
    "qnn": 1,
    "network": 1,
    "scheduling": 2,
    "security": 2,
    "consensus": 2,
    "partitions": 2,
    "config": 3,
    "broker": 4,
    "experiment": 5,
    "cli": 5,
}
SIDEWAYS = {("cli", "experiment")}


def _unit(module: str) -> str:
    """``ceas.network.werner`` → ``network``; ``ceas`` → ``ceas``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ceas"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported ceas module) for every absolute ``ceas`` import in ``path``; relative ones resolved."""
    here = path.relative_to(SRC.parent).with_suffix("").parts
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "ceas"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level]
                name = ".".join(base + ((node.module,) if node.module else ()))
            else:
                name = node.module or ""
            if name.split(".")[0] == "ceas":
                out.append((node.lineno, name))
    return out


def _violations() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        unit = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        unit = "ceas" if unit == "__init__" else unit
        if unit not in RANK:
            bad.append(f"{rel}: unit {unit!r} has no rank in tests/test_layers.py")
            continue
        for line, module in _imports(path):
            target = _unit(module)
            if target == unit or target not in RANK:
                continue
            upward = RANK[target] > RANK[unit]
            sideways = RANK[target] == RANK[unit] > 0 and (unit, target) not in SIDEWAYS
            if upward or sideways:
                bad.append(
                    f"{rel}:{line} ({unit}, rank {RANK[unit]}) imports {module} (rank {RANK[target]})"
                )
    return bad


def test_layers_import_downwards_only():
    assert _violations() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The scan itself works: a qnn module importing the broker is reported."""
    fake = tmp_path / "ceas"
    (fake / "qnn").mkdir(parents=True)
    (fake / "qnn" / "bad.py").write_text(
        "def f():\n    from ceas.broker.round import BrokerTrainer\n    from . import gates\n"
    )
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    found = _violations()
    assert found == ["qnn/bad.py:2 (qnn, rank 1) imports ceas.broker.round (rank 4)"]


@pytest.mark.parametrize("unit", sorted(RANK))
def test_every_rank_names_a_real_unit(unit):
    assert (SRC / unit).is_dir() or (SRC / f"{unit}.py").exists() or unit == "ceas"


def _function_lengths():
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(SRC), node.name, node.end_lineno - node.lineno + 1


def test_no_function_is_over_120_lines():
    """A long function is a list of phases waiting for names (DESIGN.md)."""
    assert [f"{p}:{name} ({n} lines)" for p, name, n in _function_lengths() if n > 120] == []


def test_the_round_reads_as_its_phases():
    lengths = {(str(p), name): n for p, name, n in _function_lengths()}
    assert lengths[("broker/round.py", "run_round")] <= 60
