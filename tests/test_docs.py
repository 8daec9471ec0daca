"""The worked examples in docs/ must run as written."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _examples() -> list[str]:
    text = (DOCS / "extending.md").read_text()
    return [block.split("```")[0] for block in text.split("```python\n")[1:]]


def test_extending_rule_example_registers_passes_check_and_runs_from_a_config(tmp_path):
    from ceas.config import load_config
    from ceas.consensus import AGGREGATORS, check_aggregator
    from ceas.consensus.params import aggregator_from_params

    namespace: dict = {}
    try:
        exec(compile(_examples()[0], "extending.md", "exec"), namespace)  # noqa: S102 - our own doc example
        check_aggregator(namespace["ShrunkMidrange"]())
        cfg = load_config(
            "paper",
            ["consensus.aggregator=doc-shrunk-midrange", "consensus.aggregator_params.shrink=0.5"],
        )
        assert aggregator_from_params(cfg.consensus).shrink == 0.5
    finally:
        AGGREGATORS.pop("doc-shrunk-midrange", None)


def test_extending_policy_example_passes_check_policy():
    from ceas.scheduling import check_policy
    from ceas.scheduling.params import SchedulingParams
    from ceas.scheduling.registry import POLICIES

    namespace: dict = {}
    POLICIES.pop("fewest-pairs", None)
    try:
        exec(compile(_examples()[1], "extending.md", "exec"), namespace)  # noqa: S102 - our own doc example
        check_policy(namespace["FewestPairs"](SchedulingParams()))
    finally:
        POLICIES.pop("fewest-pairs", None)


def test_extending_attack_example_passes_check_attack_and_runs_from_a_config():
    from ceas.config import load_config
    from ceas.security.attacks import ATTACKS, make_adversary

    namespace: dict = {}
    ATTACKS.pop("doc-strike-late", None)
    try:
        exec(compile(_examples()[2], "extending.md", "exec"), namespace)  # noqa: S102 - our own doc example
        cfg = load_config(
            "paper",
            [
                'security.attacks=["doc-strike-late"]',
                "security.attack_params.doc-strike-late.start=5",
            ],
        )
        adversary = make_adversary(cfg.security.attacks, cfg.security.attack_params)
        assert adversary.attacks[0].start == 5
    finally:
        ATTACKS.pop("doc-strike-late", None)
