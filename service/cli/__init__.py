"""The `fraudwatch` command line: one module per command family, each adding its subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# Each module exposes `register(subparsers)`; it adds its commands with `set_defaults(run=...)`.
COMMAND_MODULES = (
    "service.cli.stack",
    "service.cli.rules_cmd",
    "service.cli.simulate_cmd",
    "service.cli.keys_cmd",
    "service.cli.watchlist_cmd",
    "service.cli.model_cmd",
    "service.cli.warmup_cmd",
    "service.cli.purge_cmd",
    "service.cli.dlq_cmd",
)

Runner = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every registered command family."""
    parser = argparse.ArgumentParser(
        prog="fraudwatch",
        description="Real-time monitoring of bank transfers for telecom-fraud patterns.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fraudwatch` console script."""
    args = build_parser().parse_args(argv)
    run: Runner = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
