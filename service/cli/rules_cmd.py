"""`fraudwatch rules check|list [DIR]`: validate and show the rule library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rules import RuleLibraryError, RuleProblem, check_rule_library, load_rule_library
from rules.policy import load_policy
from service.settings import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `rules` command family to the `fraudwatch` parser."""
    rules = subparsers.add_parser("rules", help="check and list the rule library")
    actions = rules.add_subparsers(dest="rules_action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="validate every rule file; list every problem, exit 1 if any"
    )
    listing = actions.add_parser("list", help="list the rules: id, version, title")
    for parser, run in ((check, _check), (listing, _list)):
        parser.add_argument(
            "directory",
            nargs="?",
            type=Path,
            metavar="DIR",
            help="rule library directory (default: FRAUDWATCH_RULES_DIR, else rules/library)",
        )
        parser.set_defaults(run=run)
    check.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="the screening policy to check against the library (default without DIR: "
        "FRAUDWATCH_POLICY_PATH, else rules/policy.yaml)",
    )


def _directory(args: argparse.Namespace) -> Path:
    # Settings are read only when no DIR is given, so a bad environment cannot block a check.
    return args.directory if args.directory is not None else Settings().rules_dir


def _check(args: argparse.Namespace) -> int:
    directory = _directory(args)
    policy = args.policy
    if policy is None and args.directory is None:
        policy = Settings().policy_path
    problems: list[RuleProblem] = check_rule_library(directory)
    if not problems and policy is not None:
        rule_ids = {rule.id for rule in load_rule_library(directory).rules}
        try:
            load_policy(policy, rule_ids)
        except RuleLibraryError as exc:
            problems = exc.problems
    for problem in problems:
        print(problem)
    if problems:
        count = len(problems)
        print(f"{count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    print(f"{len(load_rule_library(directory))} rules OK" + (", policy OK" if policy else ""))
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        ruleset = load_rule_library(_directory(args))
    except RuleLibraryError as exc:
        print(exc, file=sys.stderr)
        return 1
    width = max(len(rule.id) for rule in ruleset.rules)
    for rule in sorted(ruleset.rules, key=lambda rule: rule.id):
        print(f"{rule.id:<{width}}  v{rule.version:<3} {rule.title}")
    return 0
