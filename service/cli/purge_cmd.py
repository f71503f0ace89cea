"""`fraudwatch purge`: remove what is past its retention period from the running stack."""

from __future__ import annotations

import argparse
import sys


def _purge(args: argparse.Namespace) -> int:
    import redis

    from models.watchlist import now_ms
    from service import wiring
    from service.audit import record_cli_change
    from service.retention import RetentionPolicy, purge
    from service.settings import shown_url
    from service.stack_runtime import resolve_settings

    settings = resolve_settings()
    if not settings.redis_url:
        print(
            "no running stack found (start `fraudwatch up`) and FRAUDWATCH_REDIS_URL is not set",
            file=sys.stderr,
        )
        return 2
    client = wiring.redis_client(settings)
    try:
        report = purge(client, RetentionPolicy.of(settings), now_ms())
        # After the purge, so that its own record stays: a purge of the audit is audited.
        record_cli_change(client, "purge", f"purged {report.closed_alerts} closed alerts, "
                          f"{report.audit_entries} audit entries, {report.watchlist_entries} "
                          f"watchlist entries, {report.suppressions} suppressions")  # fmt: skip
    except redis.RedisError as error:
        print(f"Redis at {shown_url(settings.redis_url)} did not answer: {error}",
              file=sys.stderr)  # fmt: skip
        return 2
    finally:
        client.close()
    print(
        f"purged {report.closed_alerts} closed alerts (older than "
        f"{settings.alert_retention_days} days), {report.audit_entries} audit entries (older "
        f"than {settings.audit_retention_days} days), {report.watchlist_entries} watchlist "
        f"entries (expired over {settings.watchlist_expired_retention_days} days ago) and "
        f"{report.suppressions} ended suppressions of dismissed patterns"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `purge`."""
    command = subparsers.add_parser(
        "purge",
        help="remove closed alerts, audit entries and expired watchlist entries past retention",
        description="Remove what is past its retention period (FRAUDWATCH_ALERT_RETENTION_DAYS, "
        "FRAUDWATCH_AUDIT_RETENTION_DAYS, FRAUDWATCH_WATCHLIST_EXPIRED_RETENTION_DAYS); workers "
        "also do this by themselves every FRAUDWATCH_PURGE_INTERVAL_MINUTES.",
    )
    command.set_defaults(run=_purge)
