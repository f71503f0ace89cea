"""The `fraudwatch` command line: one module per command family, each adding its subcommands."""

from __future__ import annotations

import argparse
import importlib
import os
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
    "service.cli.layout_cmd",
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
    from service.settings import unknown_variables

    if unknown := unknown_variables(os.environ):
        print(f"fraudwatch {args.command}: no such setting, ignored: {', '.join(unknown)}",
              file=sys.stderr)  # fmt: skip
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        problem = operational_problem(error)
        if problem is None:
            raise
        print(f"fraudwatch {args.command}: {problem}", file=sys.stderr)
        return 2


def operational_problem(error: Exception) -> str | None:
    """What went wrong around a command in one line (a setting that does not read, a service
    that does not answer, a path that cannot be used); None for anything else (a bug, shown
    with its traceback)."""
    import redis
    from kafka.errors import KafkaError
    from pydantic import ValidationError

    from models.artifact import ModelArtifactError
    from rules.problems import RuleLibraryError
    from service.embedded import ServiceStartError
    from service.wiring import NotConfigured
    from streams.state.eviction import EvictingRedis
    from streams.state.layout import LayoutMismatch
    from streams.state.pii_key import PiiKeyMismatch

    if isinstance(error, ValidationError) and error.title == "Settings":
        return "; ".join(
            f"FRAUDWATCH_{str(e['loc'][0]).upper()}: {e['msg']}" if e["loc"] else e["msg"]
            for e in error.errors()
        )
    if isinstance(error, redis.RedisError):
        return f"Redis did not answer as configured: {error}"
    if isinstance(error, KafkaError):
        return f"the Kafka broker did not answer as configured: {error}"
    if isinstance(error, OSError | NotConfigured | ServiceStartError | LayoutMismatch
                  | PiiKeyMismatch | EvictingRedis | RuleLibraryError
                  | ModelArtifactError):  # fmt: skip
        return str(error)
    return None


if __name__ == "__main__":
    sys.exit(main())
