"""The worked examples in docs/ must run as written."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_extending_policy_example_passes_check_policy():
    from ceas.scheduling import check_policy
    from ceas.scheduling.params import SchedulingParams
    from ceas.scheduling.registry import _REGISTRY

    source = (DOCS / "extending.md").read_text().split("```python\n")[1].split("```")[0]
    namespace: dict = {}
    _REGISTRY.pop("fewest-pairs", None)
    try:
        exec(compile(source, "extending.md", "exec"), namespace)  # noqa: S102 - runs our own doc example
        check_policy(namespace["FewestPairs"](SchedulingParams()))
    finally:
        _REGISTRY.pop("fewest-pairs", None)
