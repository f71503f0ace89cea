"""`fraudwatch rules check|list`: output and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

import service.cli
from service.cli import main
from service.settings import DEFAULT_RULES_DIR

FIXTURES = Path(__file__).parent / "rules_fixtures"
SHIPPED = len(list(DEFAULT_RULES_DIR.glob("*.yaml")))


@pytest.fixture(autouse=True)
def only_rules_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    # Build the parser with this command family alone, so these tests do not depend on the
    # imports of the other families.
    monkeypatch.setattr(service.cli, "COMMAND_MODULES", ("service.cli.rules_cmd",))


def test_check_default_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check"]) == 0
    assert capsys.readouterr().out == f"{SHIPPED} rules OK, policy OK\n"


def test_check_names_the_policy_problems_by_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    shipped = (DEFAULT_RULES_DIR.parent / "policy.yaml").read_text(encoding="utf-8")
    policy.write_text(shipped.replace("listed_payee: block", "listed_payee: shrug"), "utf-8")
    assert main(["rules", "check", str(DEFAULT_RULES_DIR), "--policy", str(policy)]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{policy}:") and ": listed_payee: Input should be" in line


def test_check_reads_rules_dir_from_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FRAUDWATCH_RULES_DIR", str(FIXTURES))
    assert main(["rules", "check"]) == 1
    assert "unknown_feature.yaml:9: when.all[1].feature" in capsys.readouterr().out


def test_check_prints_every_problem_one_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(FIXTURES)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) >= 12
    assert all(line.startswith(str(FIXTURES)) for line in lines)
    assert captured.err == f"{len(lines)} problems\n"


def test_check_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(tmp_path / "nope")]) == 1
    assert "rule library directory not found" in capsys.readouterr().out


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "list", str(DEFAULT_RULES_DIR)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == SHIPPED
    assert lines[0].split()[:2] == ["alerted_money_onward", "v1"]
    assert any(line.split()[:2] == ["fan_in_collection", "v2"] for line in lines)
    assert any("Rapid fan-out to many first-time payees" in line for line in lines)


def test_list_broken_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "list", str(FIXTURES)]) == 1
    assert "problems:" in capsys.readouterr().err


def test_rules_needs_an_action() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rules"])
    assert exited.value.code == 2
