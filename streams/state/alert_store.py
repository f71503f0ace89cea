"""Alerts in Redis: bodies plus sorted-set indexes (by event time) for the API's filters.

Every alert key carries the `{al}` hash tag: alerts are few next to transfers, and one slot
lets an alert and its indexes change atomically even on Redis Cluster. Alert keys have no
TTL: closed alerts past retention are purged (`purge_closed`), the rest kept.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

import msgspec
import redis
from redis.client import Pipeline

from models.alerts import STATUSES, Alert, StoredAlert, alert_decoder, alert_encoder
from models.workflow import MOVES, Action, Actor, MoveRefused

PREFIX = "fw:{al}"
# Dispositions that end an alert's work; past retention these are purged, the rest kept.
CLOSED_STATUSES = ("confirmed", "dismissed")
_CLOSED = " ".join(CLOSED_STATUSES)
ALL_INDEX = f"{PREFIX}:ix:all"


def alert_key(alert_id: str) -> str:
    """Where an alert's JSON body lives."""
    return f"{PREFIX}:a:{alert_id}"


def features_key(alert_id: str) -> str:
    """The feature vector the alert was scored on (JSON, NaN as null): a training row."""
    return f"{PREFIX}:f:{alert_id}"


def history_key(alert_id: str) -> str:
    """The list of workflow actions taken on an alert, oldest first (JSON entries)."""
    return f"{PREFIX}:h:{alert_id}"


def index_key(dimension: str, value: str) -> str:
    """The sorted set of alert ids (scored by event time) for one filter value."""
    return f"{PREFIX}:ix:{dimension}:{value}"


def indexes_of(alert: Alert) -> list[str]:
    """Every index an alert belongs to, as raised (status `open`)."""
    names = [
        ALL_INDEX,
        index_key("account", alert.src_account),
        index_key("account", alert.dst_account),
        index_key("severity", alert.severity),
        index_key("status", alert.status),
    ]
    names += [index_key("rule", reason.rule) for reason in alert.reasons]
    return names


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """The API's alert filters; None means any."""

    account: str | None = None
    severity: str | None = None
    rule: str | None = None
    status: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def index(self) -> str:
        """The most selective index these filters can read from."""
        for dimension, value in (
            ("account", self.account),
            ("rule", self.rule),
            ("status", self.status),
            ("severity", self.severity),
        ):
            if value is not None:
                return index_key(dimension, value)
        return ALL_INDEX

    def matches(self, alert: Alert) -> bool:
        """Whether an alert read from the chosen index passes the other filters."""
        return (
            (self.account is None or self.account in (alert.src_account, alert.dst_account))
            and (self.severity is None or alert.severity == self.severity)
            and (self.status is None or alert.status == self.status)
            and (self.rule is None or any(r.rule == self.rule for r in alert.reasons))
        )


class BadCursor(ValueError):
    """A cursor that this store did not issue."""


def encode_cursor(score: int, alert_id: str) -> str:
    """Opaque position after (score, alert_id) in newest-first order."""
    return base64.urlsafe_b64encode(f"{score}:{alert_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Inverse of `encode_cursor`; raises `BadCursor` on anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        score, alert_id = base64.urlsafe_b64decode(padded).decode().split(":", 1)
        return int(score), alert_id
    except (ValueError, UnicodeDecodeError):
        raise BadCursor("cursor is not one this API issued") from None


class AlertMissing(LookupError):
    """No alert has this id."""


def _script(client: redis.Redis, name: str) -> Any:
    source = resources.files("streams.state").joinpath("lua", name).read_text()
    return client.register_script(source)


class AlertStore:
    """Writes alerts idempotently, reads them back by id or by filters, and moves them
    through the workflow."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._put = _script(client, "alert_put.lua")
        self._act = _script(client, "alert_action.lua")
        self._purge = _script(client, "alert_purge.lua")

    def put_alerts(
        self, alerts: Sequence[Alert], features: Sequence[Mapping[str, float]] | None = None
    ) -> list[StoredAlert]:
        """Store the alerts (and, when given, the feature vector each was scored on, aligned
        with `alerts`) in one round trip; for each, whether it was new and the version kept.

        Both writes keep the first version, so a replay changes neither status nor features.
        """
        if not alerts:
            return []
        try:
            return self._put_all(alerts, features)
        except redis.exceptions.NoScriptError:
            # Redis lost its script cache (restart); the writes are idempotent, so retry.
            self._redis.script_load(self._put.script)
            return self._put_all(alerts, features)

    def _put_all(
        self, alerts: Sequence[Alert], features: Sequence[Mapping[str, float]] | None
    ) -> list[StoredAlert]:
        # EVALSHA directly: a registered script in a pipeline costs an extra SCRIPT EXISTS
        # round trip per batch.
        pipe = self._redis.pipeline(transaction=False)
        for alert in alerts:
            keys = [alert_key(alert.alert_id), *indexes_of(alert)]
            pipe.evalsha(self._put.sha, len(keys), *keys,
                         alert.alert_id, alert.ts_ms, alert_encoder.encode(alert))  # fmt: skip
        if features is not None:
            for alert, vector in zip(alerts, features, strict=True):
                pipe.set(features_key(alert.alert_id), msgspec.json.encode(vector), nx=True)
        replies = pipe.execute()[: len(alerts)]
        return [
            StoredAlert(True, alert)
            if reply == 1
            else StoredAlert(False, alert_decoder.decode(reply))
            for alert, reply in zip(alerts, replies, strict=True)
        ]

    def apply(self, alert_id: str, action: Action, actor: Actor, note: str, at: str) -> str:
        """Take a workflow action atomically; returns the status it moved from.

        Raises `AlertMissing`, or `MoveRefused` when the current status does not allow it.
        """
        move = MOVES[action]
        keys = [alert_key(alert_id), history_key(alert_id)]
        keys += [index_key("status", status) for status in STATUSES]
        args = [alert_id, action, move.target, " ".join(move.sources),
                actor.key_id, actor.name, actor.role, at, " ".join(STATUSES), note]  # fmt: skip
        reply = self._act(keys=keys, args=args)
        if reply[0] == -1:
            raise AlertMissing(alert_id)
        if reply[0] == 0:
            raise MoveRefused(action, reply[1].decode())
        return str(reply[1].decode())

    def purge_closed(self, before_ms: int, limit: int = 1000) -> int:
        """Delete up to `limit` closed alerts (confirmed or dismissed) whose event time is
        before `before_ms`, with their features, history and index entries; returns how many.
        Open, escalated and appealed alerts are work in progress and always kept. Reads at
        most ten times `limit` index entries, so one call stays short."""
        purged, kept = 0, 0
        while purged < limit and kept < 10 * limit:
            members = cast(
                list[bytes],
                self._redis.zrangebyscore(ALL_INDEX, "-inf", f"({before_ms}", start=kept, num=500),
            )
            if not members:
                break
            page_purged = 0
            for alert in self.get_many(member.decode() for member in members):
                if alert.status in CLOSED_STATUSES and purged + page_purged < limit:
                    keys = [alert_key(alert.alert_id), features_key(alert.alert_id),
                            history_key(alert.alert_id), *indexes_of(alert)]  # fmt: skip
                    page_purged += int(self._purge(keys=keys, args=[alert.alert_id, _CLOSED]))
            purged += page_purged
            # Purged ids left the index: the next page starts after the ones kept.
            kept += len(members) - page_purged
        return purged

    def history(self, alert_id: str, start: int, count: int) -> list[dict[str, Any]]:
        """Up to `count` workflow entries from position `start`, oldest first."""
        rows = self._redis.lrange(history_key(alert_id), start, start + count - 1)
        return [msgspec.json.decode(row) for row in rows]

    def get(self, alert_id: str) -> Alert | None:
        """One alert by id."""
        raw = self._redis.get(alert_key(alert_id))
        return None if raw is None else alert_decoder.decode(raw)

    def get_many(self, alert_ids: Iterable[str]) -> list[Alert]:
        """Alerts by id, in the given order, skipping unknown ids."""
        ids = list(alert_ids)
        if not ids:
            return []
        raws = self._redis.mget([alert_key(i) for i in ids])
        return [alert_decoder.decode(raw) for raw in raws if raw is not None]

    @staticmethod
    def queue_recent_ids(pipe: Pipeline, account_ids: Sequence[str], limit: int) -> None:
        """Queue, per account, the ids of its `limit` most recent alerts (payer or payee)."""
        for account_id in account_ids:
            pipe.zrevrange(index_key("account", account_id), 0, limit - 1)

    @staticmethod
    def queue_get(pipe: Pipeline, alert_ids: Sequence[str]) -> None:
        """Queue one MGET of the alerts (decode its reply with `decode_found`)."""
        pipe.mget([alert_key(i) for i in alert_ids])

    @staticmethod
    def decode_found(raws: Sequence[bytes | None]) -> dict[str, Alert]:
        """The alerts an MGET found, by id."""
        found = (alert_decoder.decode(raw) for raw in raws if raw is not None)
        return {alert.alert_id: alert for alert in found}

    def list(
        self, filters: AlertFilter, limit: int, cursor: str | None = None
    ) -> tuple[list[Alert], str | None]:
        """Newest first; returns the page and the cursor of the next page (None at the end)."""
        index = filters.index()
        high: float | str = "+inf" if filters.until_ms is None else filters.until_ms
        low: float | str = "-inf" if filters.since_ms is None else filters.since_ms
        after: tuple[int, str] | None = decode_cursor(cursor) if cursor else None
        if after is not None:
            high = after[0] if high == "+inf" else min(int(high), after[0])
        page: list[Alert] = []
        offset = 0
        chunk = max(limit * 2, 50)
        while len(page) < limit:
            rows = cast(
                list[tuple[bytes, float]],
                self._redis.zrevrangebyscore(
                    index, high, low, start=offset, num=chunk, withscores=True
                ),
            )
            if not rows:
                return page, None
            offset += len(rows)
            candidates = []
            for member, score in rows:
                alert_id = member.decode()
                if after is not None and int(score) == after[0] and alert_id >= after[1]:
                    continue
                candidates.append(alert_id)
            for alert in self.get_many(candidates):
                if filters.matches(alert) and len(page) < limit:
                    page.append(alert)
            if len(page) == limit:
                last = page[-1]
                return page, encode_cursor(last.ts_ms, last.alert_id)
            if len(rows) < chunk:
                return page, None
        return page, None
