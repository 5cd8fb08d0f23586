"""The plug-in the README shows runs exactly as written, and a class missing a verb is refused at validation."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import masssim
from conftest import small_scenario

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_policy() -> str:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(# my_policies\.py.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "the README's plug-in example starts with '# my_policies.py'"
    return blocks[0]


@pytest.fixture
def on_path(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in ("my_policies", "broken_policies"):
        sys.modules.pop(name, None)


def test_the_readme_policy_runs_as_written(on_path: Path) -> None:
    (on_path / "my_policies.py").write_text(_readme_policy(), encoding="utf-8")
    scenario = small_scenario(arms=[{"name": "house", "policy": "my_policies:EveryoneHouse"}], replications=1)
    result = masssim.run(scenario, seed=1)
    sends = result.summary["arms"]["house"]["sends"]["mean"]
    assert sends > 0
    # Creative 0 to everyone reachable, every wave: the same sends as the built-in broadcast's wave size.
    assert result.summary["arms"]["house"]["creatives_used"]["mean"] == 1


def test_a_class_missing_a_verb_is_refused_at_validation(on_path: Path) -> None:
    (on_path / "broken_policies.py").write_text("class NoObserve:\n    def plan(self, wave):\n        return None\n")
    with pytest.raises(masssim.ScenarioError, match=r"arms\[0\]\.policy.*without observe\(\)"):
        small_scenario(arms=[{"name": "x", "policy": "broken_policies:NoObserve"}])
