"""`fraudwatch rules check|list [DIR]`: validate and show the rule library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rules import RuleLibraryError, load_rule_library
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


def _directory(args: argparse.Namespace) -> Path:
    # Settings are read only when no DIR is given, so a bad environment cannot block a check.
    return args.directory if args.directory is not None else Settings().rules_dir


def _check(args: argparse.Namespace) -> int:
    try:
        ruleset = load_rule_library(_directory(args))
    except RuleLibraryError as exc:
        for problem in exc.problems:
            print(problem)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    print(f"{len(ruleset)} rules OK")
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
