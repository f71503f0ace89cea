"""Load-time validation: every problem, each naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules import RuleLibraryError, RuleProblem, check_rule_library, load_rule_library

FIXTURES = Path(__file__).parent / "rules_fixtures"

VALID_RULE = """\
id: {id}
version: 1
title: A valid rule
description: Used by validation tests.
when:
  feature: amount_minor
  gte: 100
score: 0.5
evidence: [amount_minor]
suspect: payee
"""


@pytest.fixture(scope="module")
def fixture_problems() -> list[RuleProblem]:
    return check_rule_library(FIXTURES)


def find(problems: list[RuleProblem], file: str, line: int | None, field: str) -> RuleProblem:
    matches = [p for p in problems if (p.file.name, p.line, p.field) == (file, line, field)]
    assert len(matches) == 1, [str(p) for p in problems if p.file.name == file]
    return matches[0]


@pytest.mark.parametrize(
    ("file", "line", "field", "message"),
    [
        (
            "unknown_feature.yaml",
            9,
            "when.all[1].feature",
            "unknown feature 'src_payees' "
            "(did you mean 'src_new_payees_24h' or 'src_distinct_payees_1h'?)",
        ),
        ("bad_threshold.yaml", 8, "when.any[0].gte", "valid number, got str 'eight'"),
        ("bad_threshold.yaml", 10, "when.any[1].between", "lo <= hi, got [6.0, 2.0]"),
        ("bad_threshold.yaml", 12, "score", "less than or equal to 1"),
        ("bad_suspect.yaml", 8, "suspect", "Input should be 'payer' or 'payee'"),
        ("missing_field.yaml", 1, "title", "required field is missing"),
        ("two_operators.yaml", 7, "when.all[0]", "exactly one operator"),
        ("two_operators.yaml", 11, "when.all[1].gtee", "unknown operator 'gtee' (did you mean"),
        ("syntax_error.yaml", 8, "", "YAML syntax error: while parsing a flow sequence (line 7)"),
        ("duplicate_id_b.yaml", 2, "id", "duplicate rule id 'duplicate_id' (first defined at"),
        ("not_a_mapping.yaml", 1, "", "a rule file holds one mapping"),
        ("bad_summary.yaml", 8, "when.not.ratio_gte.of", "unknown feature 'src_out_amount'"),
        ("bad_summary.yaml", 12, "summary", "unknown feature 'payee_name' in template"),
    ],
)
def test_problem_names_file_line_and_field(
    fixture_problems: list[RuleProblem], file: str, line: int, field: str, message: str
) -> None:
    problem = find(fixture_problems, file, line, field)
    assert message in problem.message
    assert problem.file == FIXTURES / file


def test_problem_str_reads_file_line_field_message() -> None:
    problem = RuleProblem(Path("rules/library/x.yaml"), 7, "when.all[1].feature", "bad")
    assert str(problem) == "rules/library/x.yaml:7: when.all[1].feature: bad"
    assert str(RuleProblem(Path("x.yaml"), None, "", "empty")) == "x.yaml: empty"


def test_every_problem_in_every_file_is_collected(fixture_problems: list[RuleProblem]) -> None:
    files_with_problems = {problem.file.name for problem in fixture_problems}
    expected = {p.name for p in FIXTURES.glob("*.yaml")} - {"duplicate_id_a.yaml"}
    assert files_with_problems == expected
    assert len([p for p in fixture_problems if p.file.name == "bad_threshold.yaml"]) == 3


def test_load_raises_with_all_problems(fixture_problems: list[RuleProblem]) -> None:
    with pytest.raises(RuleLibraryError) as raised:
        load_rule_library(FIXTURES)
    assert raised.value.problems == fixture_problems
    text = str(raised.value)
    assert text.startswith(f"rule library has {len(fixture_problems)} problems:\n")
    assert f"{FIXTURES / 'unknown_feature.yaml'}:9: when.all[1].feature: unknown" in text


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_library_has_no_problems(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", VALID_RULE.format(id="rule_a"))
    write(tmp_path, "b.yml", VALID_RULE.format(id="rule_b"))
    write(tmp_path, "C.YAML", VALID_RULE.format(id="rule_c"))  # saved by another editor
    write(tmp_path, "notes.txt", "not a rule")
    assert check_rule_library(tmp_path) == []
    assert sorted(rule.id for rule in load_rule_library(tmp_path).rules) == [
        "rule_a", "rule_b", "rule_c"
    ]


RULE = VALID_RULE.format(id="a")
LEAF = "  feature: amount_minor\n  gte: 100"


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("", None, "", "file is empty"),
        (RULE + "---\nid: b\n", 11, "", "expected a single document"),
        (RULE + "score: 0.6\n", 11, "score", "duplicate key"),
        (VALID_RULE.format(id="Fan-Out"), 1, "id", "rule id 'Fan-Out' must be snake_case"),
        (RULE.replace("version: 1", "version: 0"), 2, "version", "greater than 0"),
        (RULE.replace("version: 1", 'version: "2"'), 2, "version", "got str '2'"),
        (RULE.replace("gte: 100", "gte: true"), 7, "when.gte", "got bool True"),
        (RULE.replace("gte: 100", "gte: .nan"), 7, "when.gte", "finite number"),
        (RULE.replace("gte: 100", "in_list: []"), 7, "when.in_list", "at least 1 item"),
        (RULE.replace("  gte: 100\n", ""), 5, "when", "exactly one operator"),
        (RULE.replace("[amount_minor]", "[]"), 9, "evidence", "at least 1 item"),
        (RULE.replace("[amount_minor]", "[amount_minor, amount_minor]"), 9, "evidence", "twice"),
        (RULE + "owner: bob\n", 11, "owner", "unknown field 'owner'"),
        (RULE + "sumary: x\n", 11, "sumary", "(did you mean 'summary'?)"),
        (RULE + "summary: '{amount_minor:d}'\n", 11, "summary", "does not format a number"),
        (RULE + "summary: '{amount_minor!r}'\n", 11, "summary", "only {feature:spec} allowed"),
        (RULE + "summary: 'x {}'\n", 11, "summary", "unknown feature ''"),
        (RULE + "summary: 'x {'\n", 11, "summary", "bad template"),
        (RULE.replace(LEAF, "  - 3"), 5, "when", "a condition is a mapping"),
        (RULE.replace(LEAF, "  all: []"), 6, "when.all", "at least 1 item"),
        (RULE.replace(LEAF, "  any: [3]"), 6, "when.any[0]", "a condition is a mapping"),
        (RULE.replace(LEAF, "  not: {gte: 1}"), 6, "when.not.feature", "required field"),
        (RULE.replace(LEAF, "  all: [{any: []}]\n  score: 1"), 7, "when.score", "unknown field"),
    ],
)
def test_single_file_problems(
    tmp_path: Path, text: str, line: int | None, field: str, message: str
) -> None:
    write(tmp_path, "a.yaml", text)
    problem = find(check_rule_library(tmp_path), "a.yaml", line, field)
    assert message in problem.message


def test_missing_or_empty_directory(tmp_path: Path) -> None:
    (missing,) = check_rule_library(tmp_path / "nope")
    assert "directory not found" in missing.message
    (empty,) = check_rule_library(tmp_path)
    assert "no rule files" in empty.message
    with pytest.raises(RuleLibraryError):
        load_rule_library(tmp_path)
