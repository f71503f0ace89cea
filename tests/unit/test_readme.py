"""The README documents every setting, with the quick start's two commands."""

from __future__ import annotations

import re
from pathlib import Path

from service.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_in_the_configuration_table() -> None:
    text = README.read_text()
    documented = set(re.findall(r"^\| `FRAUDWATCH_([A-Z0-9_]+)` \|", text, flags=re.MULTILINE))
    expected = {name.upper() for name in Settings.model_fields}
    assert expected - documented == set(), "settings missing from the README table"
    assert documented - expected == set(), "README documents settings that do not exist"


def test_quick_start_has_the_two_commands_ci_runs() -> None:
    text = README.read_text()
    block = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["bash deploy/demo.sh", "bash deploy/test.sh"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "bash deploy/test.sh" in ci
