"""Data kept only as long as needed: closed alerts, the audit log and expired watchlist entries
are purged past their retention periods.

State windows, dedupe records, trace records and the raw identifiers that explain a window
carry their own TTLs and trims (streams/state); what has no natural end is purged here, by
`fraudwatch purge` or by the workers between batches (at most once per
`FRAUDWATCH_PURGE_INTERVAL_MINUTES` across all of them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from models.features import MS_PER_DAY
from service.audit import AuditLog
from service.settings import Settings
from streams.state.alert_store import AlertStore
from streams.state.pipelines import AnyRedis
from streams.state.suppressions import SuppressionStore
from streams.state.watchlists import WatchlistStore

log = logging.getLogger("fraudwatch.retention")

# Held while one process purges; its TTL spaces purges across every worker.
LOCK_KEY = "fw:purge:lock"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind of record is kept, in days."""

    closed_alert_days: int
    audit_days: int
    expired_watchlist_days: int

    @classmethod
    def of(cls, settings: Settings) -> RetentionPolicy:
        """The configured periods."""
        return cls(
            settings.alert_retention_days,
            settings.audit_retention_days,
            settings.watchlist_expired_retention_days,
        )


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one purge removed."""

    closed_alerts: int
    audit_entries: int
    watchlist_entries: int
    suppressions: int = 0


def purge(client: AnyRedis, policy: RetentionPolicy, now_ms: int) -> PurgeReport:
    """Remove what is past retention as of `now_ms` (closed alerts by event time, at most a
    bounded number per call)."""
    alerts = AlertStore(client).purge_closed(now_ms - policy.closed_alert_days * MS_PER_DAY)
    audit = AuditLog(client).trim(now_ms - policy.audit_days * MS_PER_DAY)
    listed = WatchlistStore(client).purge_expired(
        now_ms - policy.expired_watchlist_days * MS_PER_DAY
    )
    # A suppression ends by itself at its time; its entry has no use after that.
    suppressions = SuppressionStore(client).purge_expired(now_ms)
    report = PurgeReport(alerts, audit, len(listed), suppressions)
    log.info(
        "purged records past retention",
        extra={"event": "purge", "closed_alerts": report.closed_alerts,
               "audit_entries": report.audit_entries,
               "watchlist_entries": report.watchlist_entries,
               "suppressions": report.suppressions},
    )  # fmt: skip
    return report


class PurgeSchedule:
    """Runs `purge` between a worker's batches when one is due across all workers.

    Each worker asks at most once a minute; the first to take the lock purges, and the lock's
    TTL keeps the others from purging again within the interval. A failure is logged and
    retried at the next chance: it never stops scoring.
    """

    def __init__(
        self,
        client: AnyRedis,
        policy: RetentionPolicy,
        interval_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._policy = policy
        self._interval_s = interval_s
        self._clock = clock
        self._next_check = 0.0

    def between_batches(self) -> None:
        """Purge if this worker's check is due and no other worker purged within the interval."""
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + 60
        try:
            if self._client.set(LOCK_KEY, "1", nx=True, ex=self._interval_s):
                purge(self._client, self._policy, int(now * 1000))
        except redis.RedisError as error:
            log.warning(
                "purge failed; retried later",
                extra={"event": "purge_failed", "error": type(error).__name__},
            )
