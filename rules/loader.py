"""Load a rule library directory, collecting every problem in every file before giving up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from rules.engine import Rule, RuleSet
from rules.operators import OPERATORS, RatioThreshold, did_you_mean
from rules.problems import FieldPath, RuleLibraryError, RuleProblem, format_field
from rules.spec import CONDITION_TAGS, RuleSpec
from rules.yaml_source import YamlDocument, read_yaml

RULE_SUFFIXES = frozenset({".yaml", ".yml"})

# The keys each kind of mapping may hold, to name them when an unknown key turns up.
_KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "rule": tuple(RuleSpec.model_fields),
    "<leaf>": ("feature", *OPERATORS.names()),
    "<all>": ("all",),
    "<any>": ("any",),
    "<not>": ("not",),
    "ratio_gte": tuple(RatioThreshold.model_fields),
}


def load_rule_library(directory: Path) -> RuleSet:
    """Load and compile every rule file in `directory`; raises RuleLibraryError listing all
    problems if there are any."""
    rules, problems = _load(directory)
    if problems:
        raise RuleLibraryError(problems)
    return RuleSet(rules)


def check_rule_library(directory: Path) -> list[RuleProblem]:
    """Every problem in the library at `directory`; empty when it loads cleanly."""
    return _load(directory)[1]


def _load(directory: Path) -> tuple[list[Rule], list[RuleProblem]]:
    if not directory.is_dir():
        return [], [RuleProblem(directory, None, "", "rule library directory not found")]
    # (any case: `FAN.YAML` saved by a Windows editor is a rule file too, not one skipped)
    files = sorted(
        p for p in directory.iterdir() if p.suffix.lower() in RULE_SUFFIXES and p.is_file()
    )
    if not files:
        return [], [RuleProblem(directory, None, "", "no rule files (*.yaml) in directory")]
    rules: list[Rule] = []
    problems: list[RuleProblem] = []
    id_seen_at: dict[str, str] = {}
    for file in files:
        document, file_problems = read_yaml(file)
        problems.extend(file_problems)
        if document is None:
            continue
        rule, spec_problems = _compile(document)
        problems.extend(spec_problems)
        if rule is not None:
            rules.append(rule)
        # Checked on the raw id so that a clash is reported even when either file has other faults.
        raw_id = document.data.get("id") if isinstance(document.data, dict) else None
        if isinstance(raw_id, str):
            where = f"{file}:{document.line_of(('id',))}"
            if raw_id in id_seen_at:
                message = f"duplicate rule id {raw_id!r} (first defined at {id_seen_at[raw_id]})"
                problems.append(RuleProblem(file, document.line_of(("id",)), "id", message))
            else:
                id_seen_at[raw_id] = where
    return rules, problems


def _compile(document: YamlDocument) -> tuple[Rule | None, list[RuleProblem]]:
    if not isinstance(document.data, dict):
        kind = type(document.data).__name__
        message = f"a rule file holds one mapping (id, version, title, ...), not a {kind}"
        return None, [RuleProblem(document.file, document.line_of(()), "", message)]
    try:
        spec = RuleSpec.model_validate(document.data)
    except ValidationError as exc:
        return None, [problem_of(document, error) for error in exc.errors(include_url=False)]
    return Rule.from_spec(spec, document.file), []


def problem_of(
    document: YamlDocument,
    error: ErrorDetails,
    known_keys: dict[str, tuple[str, ...]] = _KNOWN_KEYS,
) -> RuleProblem:
    """A pydantic error in a YAML document as a problem naming its file, line and field;
    `known_keys` names the keys each mapping may hold (`rule` for the top level)."""
    loc = error["loc"]
    path: FieldPath = tuple(part for part in loc if part not in CONDITION_TAGS)
    return RuleProblem(
        document.file, document.line_of(path), format_field(path),
        _message(error, loc, known_keys),
    )  # fmt: skip


def _message(
    error: ErrorDetails, loc: tuple[int | str, ...], known_keys: dict[str, tuple[str, ...]]
) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        owner = str(loc[-2]) if len(loc) > 1 else "rule"
        known = known_keys.get(owner, ())
        what = "operator" if owner == "<leaf>" else "field"
        allowed = f"; expected one of {', '.join(known)}" if known else ""
        return f"unknown {what} {key!r}{did_you_mean(key, known)}{allowed}"
    if kind == "missing":
        return "required field is missing"
    if kind.endswith(("_type", "_parsing")):
        return f"{error['msg']}, got {_describe(error['input'])}"
    return error["msg"]


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
