"""`fraudwatch warmup`: history into the live state before live traffic starts, no alerts."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from service.cli.model_cmd import friendly_errors


def _first_event_ms(lines: Iterable[bytes]) -> int | None:
    """Event time of the first valid transfer among the lines."""
    from models.events import InvalidEvent, parse_transfer

    for line in lines:
        try:
            return parse_transfer(line).ts_ms
        except InvalidEvent:
            continue
    return None


def _warmup(args: argparse.Namespace) -> int:
    from models.features import MS_PER_DAY, RETENTION_MS
    from models.jsonl import read_lines
    from models.watchlist import now_ms
    from service.settings import shown_url
    from service.stack_runtime import resolve_settings
    from service.wiring import build_scorer, redis_client, redis_state_store
    from streams.backtest import run_backtest
    from streams.replay import HISTORY_PARTITION
    from streams.state.layout import ensure_state_is_ours

    for path in (args.file, args.accounts):
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    settings = resolve_settings()
    if not settings.redis_url:
        raise ValueError(
            "no running stack found (start `fraudwatch up`) and FRAUDWATCH_REDIS_URL is not set"
        )
    client = redis_client(settings)
    ensure_state_is_ours(client, settings.pii_key.get_secret_value())
    store = redis_state_store(settings, client)
    since, first = store.observation().current_start, _first_event_ms(read_lines(args.file))
    if since is not None and first is not None and since > first:
        raise ValueError(
            f"the live state has been observing since {_utc(since)}, after this file's first "
            f"transfer ({_utc(first)}): warm up with history before live traffic starts, on "
            "empty state"
        )
    profiles = read_lines(args.accounts) if args.accounts else ()
    # The history's alert marks count for the live stream after it (whose offsets restart).
    summary = run_backtest(read_lines(args.file), profiles, build_scorer(settings), None,
                           settings.batch_size, store, partition=HISTORY_PARTITION)  # fmt: skip
    for line in summary.lines(alerts_label="alerts it would have raised (none were raised)"):
        print(line)
    print(f"live state at {shown_url(settings.redis_url)} now holds this history")
    if summary.latest_ms is not None and now_ms() - summary.latest_ms > RETENTION_MS:
        print(
            f"warning: this history ends at {_utc(summary.latest_ms)}, more than "
            f"{RETENTION_MS // MS_PER_DAY} days ago: the windows keep that much event time, "
            "so none of it will count for live transfers; warm up with the latest history"
        )
    return 0


def _utc(ts_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="seconds")


def register(subparsers: Any) -> None:
    """Add the `warmup` command."""
    warmup = subparsers.add_parser(
        "warmup",
        help="replay history into the live state without raising alerts",
        description="Load history (JSON Lines, plain or .gz, in event-time order) into the "
        "running stack's Redis state through the worker's own state scripts, so a new "
        "installation starts with context; raises no alerts and prints how many it would have "
        "raised. Run it before live traffic starts; running it again changes nothing.",
    )
    warmup.add_argument("file", type=Path, metavar="FILE", help="transfers, JSON Lines")
    warmup.add_argument(
        "--accounts",
        type=Path,
        metavar="ACCOUNTS.jsonl",
        help="account profiles, applied before the transfers",
    )
    warmup.set_defaults(run=friendly_errors(_warmup))
