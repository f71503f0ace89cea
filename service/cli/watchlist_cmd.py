"""`fraudwatch watchlist import FILE.csv [--kind KIND]`: load listings into the running stack."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

IMPORT_HELP = """Columns (header row required): kind,value,source,reason,expires_at.
`expires_at` is RFC 3339 with an offset, or empty for never; with --kind the `kind` column
may be left out. Rows are checked one by one: each bad row is reported as FILE:LINE: reason
and skipped, good rows are imported (an existing entry of the same kind and value is
replaced). The imported accounts' past transfers that state still holds are flagged as
`watchlist_retro` alerts (a second import of the same file flags nothing new). Exit code: 0
if at least one row was imported (or the file has a header and no rows), 1 if rows were
given but none could be imported, 2 if the file (not CSV, or a header without the columns:
an empty file has none) or Redis could not be used."""


def _import(args: argparse.Namespace) -> int:
    import redis

    from models.watchlist import NotAWatchlistFile, UnreadableCsv, now_ms, parse_csv
    from service import wiring
    from service.audit import record_cli_change
    from service.settings import shown_url
    from service.stack_runtime import resolve_settings
    from streams.state.pii_key import PiiKeyMismatch, ensure_pii_key
    from streams.state.watchlists import WatchlistStore

    settings = resolve_settings()
    if not settings.redis_url:
        print(
            "no running stack found (start `fraudwatch up`) and FRAUDWATCH_REDIS_URL is not set",
            file=sys.stderr,
        )
        return 2
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        print(f"{path}: cannot read: {error}", file=sys.stderr)
        return 2
    try:
        entries, problems = parse_csv(
            text.splitlines(keepends=True),
            now_ms=now_ms(),
            pseudonymise=wiring.entity_hasher(settings),
            kind=args.kind,
        )
    except NotAWatchlistFile as error:
        print(f"{path}:{error.line}: {error.reason}; nothing imported", file=sys.stderr)
        return 2
    except UnreadableCsv as error:
        print(f"{path}:{error.line}: not readable as CSV ({error.reason}); nothing imported",
              file=sys.stderr)  # fmt: skip
        return 2
    for problem in problems:
        print(f"{path}:{problem.line}: {problem.reason}", file=sys.stderr)
    client = wiring.redis_client(settings)
    try:
        ensure_pii_key(client, settings.pii_key.get_secret_value())
        new = WatchlistStore(client).put(entries)
        if entries:  # as the API's import: counts and kinds (no phone, device or IP)
            kinds = ", ".join(sorted({e.kind for e in entries}))
            record_cli_change(client, "watchlist import",
                              f"watchlist import: {len(entries)} entries ({kinds})")  # fmt: skip
        retro = wiring.retro_hunt(settings, client).hunt(entries)
    except redis.RedisError as error:
        print(f"Redis at {shown_url(settings.redis_url)} did not answer: {error}",
              file=sys.stderr)  # fmt: skip
        return 2
    except PiiKeyMismatch as error:
        print(f"{error}; nothing imported", file=sys.stderr)
        return 2
    finally:
        client.close()
    print(
        f"imported {len(entries)} entries ({sum(new)} new, {len(entries) - sum(new)} replaced), "
        f"skipped {len(problems)} bad rows; {retro} past transfers flagged (watchlist_retro)"
    )
    return 1 if problems and not entries else 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `watchlist import`."""
    watchlist = subparsers.add_parser("watchlist", help="manage watchlists")
    actions = watchlist.add_subparsers(dest="action", required=True, metavar="ACTION")
    load = actions.add_parser(
        "import",
        help="import listings from a CSV file",
        description=IMPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("file", metavar="FILE.csv")
    load.add_argument(
        "--kind", choices=("account", "device", "phone", "ip"), help="the kind of every row"
    )
    load.set_defaults(run=_import)
