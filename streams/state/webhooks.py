"""Webhooks in Redis: the subscriptions, the queue of deliveries due, and a log per webhook.

Layout (all keys in the `{wh}` slot, so every change is atomic, also on Redis Cluster):
- `fw:{wh}:hooks`           hash  webhook_id → [url, events, nonce, created_at_ms, created_by]
- `fw:{wh}:due`             zset  delivery_id → when it is due (ms); a claimed delivery is
                                  pushed `lease` ahead, so a dispatcher that dies mid-delivery
                                  leaves it to another once the lease ends
- `fw:{wh}:d:<delivery_id>` hash  webhook_id, type, alert_id, first_ms, attempts
- `fw:{wh}:log:<webhook_id>` list the latest `LOG_KEPT` delivery attempts (JSON), newest first
- `fw:{wh}:n:<webhook_id>`  hash  delivered / retried / failed counts
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

from streams.state.pipelines import AnyRedis

log = logging.getLogger(__name__)
PREFIX = "fw:{wh}"
HOOKS_KEY = f"{PREFIX}:hooks"
DUE_KEY = f"{PREFIX}:due"
LOG_KEPT = 200

_CLAIM = """
-- Claim up to ARGV[2] deliveries due by ARGV[1] (ms): push each ARGV[3] ms ahead (the lease)
-- and return their ids. KEYS[1]: the due queue.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[3], id) end
return ids
"""


def delivery_key(delivery_id: str) -> str:
    """A delivery's record."""
    return f"{PREFIX}:d:{delivery_id}"


def log_key(webhook_id: str) -> str:
    """A webhook's delivery log, newest first."""
    return f"{PREFIX}:log:{webhook_id}"


def counts_key(webhook_id: str) -> str:
    """A webhook's delivered / retried / failed counts."""
    return f"{PREFIX}:n:{webhook_id}"


@dataclass(frozen=True, slots=True)
class Webhook:
    """A subscription: where to POST which events. The secret is not stored (see
    `models.webhooks.webhook_secret`)."""

    webhook_id: str
    url: str
    events: tuple[str, ...]
    nonce: str
    created_at_ms: int
    created_by: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event to deliver to one webhook, and how often it was tried."""

    delivery_id: str
    webhook_id: str
    type: str
    alert_id: str
    first_ms: int
    attempts: int


def _hook(webhook_id: str, raw: bytes) -> Webhook | None:
    try:
        url, events, nonce, created, by = orjson.loads(raw)
        return Webhook(webhook_id, str(url), tuple(map(str, events)), str(nonce), int(created),
                       str(by))  # fmt: skip
    except (ValueError, TypeError):
        log.warning("stored webhook unreadable", extra={"webhook_id": webhook_id})
        return None


class WebhookStore:
    """Subscriptions, the delivery queue and the delivery logs."""

    def __init__(self, client: AnyRedis) -> None:
        self._redis = client
        self._claim = client.register_script(_CLAIM)

    def add(self, hook: Webhook) -> None:
        """Store a new subscription."""
        value = [hook.url, list(hook.events), hook.nonce, hook.created_at_ms, hook.created_by]
        self._redis.hset(HOOKS_KEY, hook.webhook_id, orjson.dumps(value))

    def remove(self, webhook_id: str) -> bool:
        """Delete a subscription with its log and counts; False if there was none. Its queued
        deliveries are dropped as they come due."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(HOOKS_KEY, webhook_id)
        pipe.delete(log_key(webhook_id), counts_key(webhook_id))
        removed, _ = pipe.execute()
        return bool(removed)

    def all(self) -> list[Webhook]:
        """Every subscription, oldest first."""
        raw = cast(dict[bytes, bytes], self._redis.hgetall(HOOKS_KEY))
        found = (_hook(key.decode(), value) for key, value in raw.items())
        hooks = [h for h in found if h is not None]
        return sorted(hooks, key=lambda h: (h.created_at_ms, h.webhook_id))

    def get(self, webhook_id: str) -> Webhook | None:
        """One subscription."""
        raw = cast(bytes | None, self._redis.hget(HOOKS_KEY, webhook_id))
        return None if raw is None else _hook(webhook_id, raw)

    def enqueue(self, deliveries: Sequence[Delivery], due_ms: int) -> None:
        """Queue deliveries (each once, however often its event is read again)."""
        if not deliveries:
            return
        pipe = self._redis.pipeline(transaction=True)
        for d in deliveries:
            key = delivery_key(d.delivery_id)
            pipe.hsetnx(key, "webhook_id", d.webhook_id)
            pipe.hsetnx(key, "type", d.type)
            pipe.hsetnx(key, "alert_id", d.alert_id)
            pipe.hsetnx(key, "first_ms", d.first_ms)
            pipe.hsetnx(key, "attempts", 0)
            pipe.zadd(DUE_KEY, {d.delivery_id: due_ms}, nx=True)
        pipe.execute()

    def claim(self, now_ms: int, limit: int, lease_ms: int) -> list[Delivery]:
        """Up to `limit` deliveries due now, leased to this dispatcher for `lease_ms`."""
        ids = [i.decode() for i in cast(list[bytes], self._claim(
            keys=[DUE_KEY], args=[now_ms, limit, lease_ms]
        ))]  # fmt: skip
        if not ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for delivery in ids:
            pipe.hgetall(delivery_key(delivery))
        claimed = []
        for delivery, fields in zip(ids, pipe.execute(), strict=True):
            data = {k.decode(): v.decode() for k, v in fields.items()}
            try:
                claimed.append(Delivery(delivery, data["webhook_id"], data["type"],
                                        data["alert_id"], int(data["first_ms"]),
                                        int(data["attempts"])))  # fmt: skip
            except (KeyError, ValueError):
                self.finish(delivery)  # a record of another shape: nothing to deliver
        return claimed

    def finish(self, delivery_id: str) -> None:
        """Take a delivery off the queue (delivered, given up, or its webhook gone)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(DUE_KEY, delivery_id)
        pipe.delete(delivery_key(delivery_id))
        pipe.execute()

    def retry_at(self, delivery_id: str, due_ms: int) -> None:
        """Count the failed attempt and queue the next one at `due_ms`."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hincrby(delivery_key(delivery_id), "attempts", 1)
        pipe.zadd(DUE_KEY, {delivery_id: due_ms}, xx=True)
        pipe.execute()

    def record(self, webhook_id: str, entry: dict[str, Any], outcome: str) -> None:
        """Log one attempt for the webhook (only while it exists) and count its outcome."""
        if not self._redis.hexists(HOOKS_KEY, webhook_id):
            return
        pipe = self._redis.pipeline(transaction=True)
        pipe.lpush(log_key(webhook_id), orjson.dumps(entry))
        pipe.ltrim(log_key(webhook_id), 0, LOG_KEPT - 1)
        pipe.hincrby(counts_key(webhook_id), outcome, 1)
        pipe.execute()

    def history(self, webhook_id: str, start: int, count: int) -> list[dict[str, Any]]:
        """Logged attempts from position `start`, newest first."""
        rows = cast(list[bytes], self._redis.lrange(log_key(webhook_id), start,
                                                    start + count - 1))  # fmt: skip
        entries = []
        for row in rows:
            try:
                entry = orjson.loads(row)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def counts(self, webhook_id: str) -> dict[str, int]:
        """Delivered, retried and failed attempts of the webhook."""
        raw = cast(dict[bytes, bytes], self._redis.hgetall(counts_key(webhook_id)))
        return {k.decode(): int(v) for k, v in raw.items()}

    def pending(self) -> int:
        """Deliveries queued (due now or later)."""
        return int(cast(int, self._redis.zcard(DUE_KEY)))
