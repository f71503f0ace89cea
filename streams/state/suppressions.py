"""Suppressions of dismissed patterns in Redis, the in-memory view scoring reads, and the
record of the hits they suppressed (see `models.suppression`).

Layout (all keys in the `{sp}` slot, so each change is one transaction, also on Redis
Cluster):
- `fw:{sp}:e`              hash  "<account>|<rule>" → [until_ms, evidence, alert_id, added_at_ms]
- `fw:{sp}:version`        counter bumped by every change; views reload when it moves
- `fw:{sp}:h:<account>`    zset  "<rules>|<transfer_id>" → event time: the account's latest
                           suppressed hits (at most `HITS_KEPT`, expiring with the suppression)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

from models.suppression import SuppressedHit, Suppression, Suppressions
from streams.state.pipelines import AnyRedis
from streams.state.snapshots import RefreshedSnapshot

log = logging.getLogger(__name__)
PREFIX = "fw:{sp}"
ENTRIES_KEY = f"{PREFIX}:e"
VERSION_KEY = f"{PREFIX}:version"
HITS_KEPT = 100


def hits_key(account: str) -> str:
    """The account's suppressed hits, by event time."""
    return f"{PREFIX}:h:{account}"


def _field(account: str, rule: str) -> str:
    # Rule ids are snake_case (or `model`): the last `|` separates them from the account.
    return f"{account}|{rule}"


def _decode(field: bytes, raw: bytes) -> Suppression | None:
    try:
        account, rule = field.decode().rsplit("|", 1)
        until, evidence, alert_id, added = orjson.loads(raw)
        if not (isinstance(until, int) and isinstance(added, int) and isinstance(evidence, dict)):
            raise ValueError("not a suppression")
        numbers = {str(k): float(v) for k, v in evidence.items() if isinstance(v, int | float)}
        return Suppression(account, rule, until, numbers, str(alert_id), added)
    except (ValueError, TypeError, UnicodeDecodeError):
        log.warning("stored suppression unreadable")
        return None


@dataclass(frozen=True, slots=True)
class RecordedHit:
    """A suppressed hit as the account view shows it."""

    rules: tuple[str, ...]
    transfer_id: str
    ts_ms: int


class SuppressionStore:
    """Adds and expires suppressions, snapshots them, and records the hits they suppressed."""

    def __init__(self, client: AnyRedis) -> None:
        self._redis = client

    def put(self, entries: Sequence[Suppression]) -> int:
        """Add suppressions, or replace those of the same account and rule from another
        dismissal (one from the same alert is kept as it is: applying a dismissal twice
        changes nothing); returns how many were written."""
        if not entries:
            return 0
        fields = [_field(e.account, e.rule) for e in entries]
        kept = cast(list[bytes | None], self._redis.hmget(ENTRIES_KEY, fields))
        pipe = self._redis.pipeline(transaction=True)
        written = 0
        for field, raw, e in zip(fields, kept, entries, strict=True):
            old = None if raw is None else _decode(field.encode(), raw)
            if old is not None and old.alert_id == e.alert_id:
                continue
            value = orjson.dumps([e.until_ms, dict(e.evidence), e.alert_id, e.added_at_ms])
            pipe.hset(ENTRIES_KEY, field, value)
            written += 1
        if written:
            pipe.incr(VERSION_KEY)
            pipe.execute()
        return written

    def version(self) -> int:
        """The change counter (0 before any change)."""
        return int(cast(bytes | None, self._redis.get(VERSION_KEY)) or 0)

    def snapshot(self) -> Suppressions:
        """Every suppression, read consistently with its version in one transaction."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(VERSION_KEY)
        pipe.hgetall(ENTRIES_KEY)
        version, raw = pipe.execute()
        found = (_decode(field, value) for field, value in raw.items())
        return Suppressions.of(int(version or 0), (e for e in found if e is not None))

    def purge_expired(self, before_ms: int) -> int:
        """Remove suppressions that ended before `before_ms`; returns how many."""
        expired = [
            _field(e.account, e.rule)
            for e in self.snapshot().entries.values()
            if e.until_ms < before_ms
        ]
        if expired:
            pipe = self._redis.pipeline(transaction=True)
            pipe.hdel(ENTRIES_KEY, *expired)
            pipe.incr(VERSION_KEY)
            pipe.execute()
        return len(expired)

    def record_hits(self, hits: Sequence[SuppressedHit], keep_s: int) -> None:
        """Record suppressed hits for their accounts' views (idempotent per transfer)."""
        if not hits:
            return
        pipe = self._redis.pipeline(transaction=False)
        for hit in hits:
            key = hits_key(hit.account)
            pipe.zadd(key, {f"{','.join(hit.rules)}|{hit.transfer_id}": hit.ts_ms})
            pipe.zremrangebyrank(key, 0, -HITS_KEPT - 1)
            pipe.expire(key, keep_s)
        pipe.execute()

    def hits_of(self, account: str) -> tuple[int, list[RecordedHit]]:
        """How many suppressed hits the account has on record, and the latest (newest first)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(hits_key(account))
        pipe.zrevrange(hits_key(account), 0, 9, withscores=True)
        count, rows = cast(list[Any], pipe.execute())
        recorded = []
        for member, score in rows:
            rules, _, transfer_id = member.decode(errors="replace").rpartition("|")
            recorded.append(RecordedHit(tuple(rules.split(",")), transfer_id, int(score)))
        return int(count), recorded


class SuppressionView(RefreshedSnapshot[Suppressions]):
    """The suppressions in force, reloaded when their version moves (checked at most once per
    `refresh_s`), and where to record what they suppressed."""

    def __init__(self, store: SuppressionStore, keep_s: int, refresh_s: float = 1.0) -> None:
        super().__init__(Suppressions(), store.version, store.snapshot, refresh_s)
        self.store = store
        self._keep_s = keep_s

    def record(self, hits: Sequence[SuppressedHit]) -> None:
        """Record suppressed hits (kept as long as a suppression lasts)."""
        self.store.record_hits(hits, self._keep_s)
