"""The alert event log: a Redis stream that the alert scripts append to atomically with each
change (`alert.created` when an alert is first stored, `alert.updated` when the workflow
moves it), read by consumer groups that act on it (webhook deliveries, publishing updates to
the `alerts` topic, the consequences of investigators' decisions).

One entry per change, written in the same script as the change itself, so a change is never
without its event and a replayed alert (already stored) adds none. Readers in a group share
the entries; an entry read by a reader that died unacknowledged is claimed by another after
`idle_ms`. The stream is capped (approximately) at `max_events` entries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

import redis

from models.alerts import EVENT_TYPES, AlertEvent
from streams.state.pipelines import AnyRedis

log = logging.getLogger(__name__)

EVENTS_KEY = "fw:{al}:events"
DEFAULT_MAX_EVENTS = 200_000


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def decode_event(event_id: bytes | str, fields: dict[bytes, bytes]) -> AlertEvent | None:
    """One stream entry as an event; None (logged) for one this version cannot read."""
    data = {_text(k): _text(v) for k, v in fields.items()}
    kind, alert_id = data.get("type"), data.get("alert_id")
    if kind not in EVENT_TYPES or not alert_id:
        log.warning("alert event unreadable", extra={"event_id": _text(event_id)})
        return None
    move = data.get("move", "")
    return AlertEvent(
        _text(event_id), kind, alert_id, data.get("origin", "worker"),  # type: ignore[arg-type]
        data.get("action"), data.get("from"), data.get("to"), data.get("by"),
        int(move) if move.isdigit() else None,
    )  # fmt: skip


class AlertEventLog:
    """Reads the alert event stream as a member of a consumer group."""

    def __init__(self, client: AnyRedis, group: str, consumer: str) -> None:
        self._redis = client
        self.group = group
        self.consumer = consumer
        self._group_ready = False

    def _ensure_group(self) -> None:
        """Create the group at the stream's start (once; the stream is made if missing)."""
        if self._group_ready:
            return
        try:
            self._redis.xgroup_create(EVENTS_KEY, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    def read(self, count: int, block_ms: int) -> list[AlertEvent]:
        """Up to `count` entries: first any that a dead reader left unacknowledged for
        longer than a minute, then new ones (waiting up to `block_ms` for them; 0: not at
        all)."""
        self._ensure_group()
        try:
            claimed = self._claim(count)
            if claimed:
                return claimed
            # (BLOCK 0 would wait for ever: until a new event, or the socket's timeout)
            reply = self._redis.xreadgroup(
                self.group, self.consumer, {EVENTS_KEY: ">"}, count=count, block=block_ms or None
            )
        except redis.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self._group_ready = False  # the stream was deleted (FLUSHDB): made again next time
            return []
        entries = cast(list[Any], reply)[0][1] if reply else []
        return self._decoded(entries)

    def _claim(self, count: int, idle_ms: int = 60_000) -> list[AlertEvent]:
        reply = cast(list[Any], self._redis.xautoclaim(
            EVENTS_KEY, self.group, self.consumer, idle_ms, "0-0", count=count
        ))  # fmt: skip
        return self._decoded(reply[1])

    def _decoded(self, entries: Sequence[Any]) -> list[AlertEvent]:
        events = []
        unreadable = []
        for event_id, fields in entries:
            if fields is None:  # trimmed from the stream while pending
                unreadable.append(event_id)
                continue
            event = decode_event(event_id, fields)
            if event is None:
                unreadable.append(event_id)
            else:
                events.append(event)
        if unreadable:
            self._redis.xack(EVENTS_KEY, self.group, *unreadable)
        return events

    def ack(self, events: Sequence[AlertEvent]) -> None:
        """Mark the events handled, so no reader of the group gets them again."""
        if events:
            self._redis.xack(EVENTS_KEY, self.group, *(e.event_id for e in events))

    def backlog(self) -> int:
        """Entries not yet handled by the group (pending or not yet read)."""
        self._ensure_group()
        groups = cast(list[dict[str, Any]], self._redis.xinfo_groups(EVENTS_KEY))
        for group in groups:
            if _text(group.get("name")) == self.group:
                lag = group.get("lag")
                return int(group.get("pending", 0)) + (int(lag) if lag is not None else 0)
        return 0
