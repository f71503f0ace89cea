"""RuleSet behaviour: hit order, evidence values, summaries, fingerprint."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from rules import Rule, RuleHit, RuleSet, load_rule_library

NAN = math.nan

RULE = """\
id: {id}
version: {version}
title: Rule {id}
description: Fires when the amount reaches {threshold}.
when:
  feature: amount_minor
  gte: {threshold}
suspect: payer
score: {score}
evidence: [amount_minor, src_pass_through_24h, src_holder_age]
"""


def library(directory: Path, *rules: tuple[str, int, float, float], summary: str = "") -> RuleSet:
    """Write one rule file per (id, version, amount threshold, score) and load the directory."""
    directory.mkdir(exist_ok=True)
    for rule_id, version, threshold, score in rules:
        text = RULE.format(id=rule_id, version=version, threshold=threshold, score=score)
        if summary:
            text += f"summary: {summary!r}\n"
        (directory / f"{rule_id}.yaml").write_text(text, encoding="utf-8")
    return load_rule_library(directory)


def test_hits_strongest_first_ties_by_id(tmp_path: Path) -> None:
    ruleset = library(
        tmp_path, ("b_rule", 1, 10, 0.6), ("a_rule", 1, 10, 0.6), ("c_rule", 1, 10, 0.9)
    )
    hits = ruleset.evaluate({"amount_minor": 100.0})
    assert [hit.rule_id for hit in hits] == ["c_rule", "a_rule", "b_rule"]
    assert [rule.id for rule in ruleset.rules] == ["c_rule", "a_rule", "b_rule"]


def test_only_matching_rules_hit(tmp_path: Path) -> None:
    ruleset = library(tmp_path, ("low", 1, 10, 0.6), ("high", 1, 1000, 0.6))
    assert [hit.rule_id for hit in ruleset.evaluate({"amount_minor": 100.0})] == ["low"]
    assert ruleset.evaluate({"amount_minor": NAN}) == []
    assert ruleset.evaluate({}) == []


def test_hit_carries_metadata_and_evidence(tmp_path: Path) -> None:
    ruleset = library(tmp_path, ("big", 3, 10, 0.7))
    (hit,) = ruleset.evaluate(
        {"amount_minor": 500000.0, "src_pass_through_24h": 0.925, "src_holder_age": NAN}
    )
    assert hit == RuleHit(
        rule_id="big",
        version=3,
        title="Rule big",
        score=0.7,
        evidence={"amount_minor": 500000, "src_pass_through_24h": 0.925, "src_holder_age": None},
        summary="",
        suspect="payer",
    )
    assert type(hit.evidence["amount_minor"]) is int


def test_missing_evidence_feature_is_none(tmp_path: Path) -> None:
    (hit,) = library(tmp_path, ("big", 1, 10, 0.7)).evaluate({"amount_minor": 50.0})
    assert hit.evidence == {
        "amount_minor": 50,
        "src_pass_through_24h": None,
        "src_holder_age": None,
    }


@pytest.mark.parametrize(
    ("template", "features", "expected"),
    [
        ("{amount_minor} fen", {"amount_minor": 500000.0}, "500000 fen"),
        ("{amount_minor:,.0f}", {"amount_minor": 1234567.0}, "1,234,567"),
        ("{src_pass_through_24h:.0%} out", {"src_pass_through_24h": 0.934}, "93% out"),
        ("{src_pass_through_24h}", {"src_pass_through_24h": 0.5}, "0.5"),
        ("age {src_holder_age:.0f}", {"src_holder_age": NAN}, "age unknown"),
        ("age {src_holder_age}", {}, "age unknown"),
        ("{{literal}} {amount_minor:.1f}", {"amount_minor": 2.0}, "{literal} 2.0"),
    ],
)
def test_summary_rendering(
    tmp_path: Path, template: str, features: dict[str, float], expected: str
) -> None:
    ruleset = library(tmp_path, ("r", 1, 0, 0.5), summary=template)
    rule = ruleset.rules[0]
    assert rule.summary == template
    assert rule.render_summary is not None
    assert rule.render_summary(features) == expected


def test_fingerprint_names_ids_and_versions(tmp_path: Path) -> None:
    first = library(tmp_path / "one", ("a", 1, 10, 0.5), ("b", 1, 10, 0.5))
    same = RuleSet(reversed(first.rules))
    bumped = library(tmp_path / "two", ("a", 2, 10, 0.5), ("b", 1, 10, 0.5))
    assert first.fingerprint == same.fingerprint
    assert first.fingerprint != bumped.fingerprint
    assert len(first.fingerprint) == 12
    assert int(first.fingerprint, 16) >= 0


@pytest.fixture
def one_rule(tmp_path: Path) -> Rule:
    return library(tmp_path, ("a", 1, 10, 0.5)).rules[0]


def test_ruleset_refuses_duplicate_ids(one_rule: Rule) -> None:
    with pytest.raises(ValueError, match="duplicate rule ids: a"):
        RuleSet([one_rule, one_rule])


def test_empty_ruleset_evaluates_to_nothing() -> None:
    assert RuleSet([]).evaluate({"amount_minor": 1.0}) == []
    assert len(RuleSet([])) == 0


def test_int_feature_values_are_tolerated(tmp_path: Path) -> None:
    ruleset = library(tmp_path, ("big", 1, 10, 0.7), summary="{amount_minor:.1f}")
    (hit,) = ruleset.evaluate({"amount_minor": 500})  # type: ignore[dict-item]
    assert hit.evidence["amount_minor"] == 500
    assert hit.summary == "500.0"


def test_rules_package_is_pure() -> None:
    # A fresh interpreter, so that modules other tests imported do not hide a stray import.
    code = (
        "import sys, rules; "
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'rules', 'models', 'service', 'streams', 'fastapi', 'redis', 'kafka'})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split()
    assert {name.split(".")[0] for name in out} <= {"rules", "models"}
    assert {name for name in out if name.startswith("models")} <= {
        "models",
        "models.features",
        "models.events",  # imported by models.features itself
        "models.currency",  # imported by models.events
    }
