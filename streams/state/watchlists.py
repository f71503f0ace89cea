"""Watchlists in Redis, and the in-memory view that workers and the API match against.

Layout (all keys in the `{wl}` slot, so each change is one transaction, also on Redis
Cluster; no TTL, entries expire by their own `expires_at`):
- `fw:{wl}:e:<kind>`   hash  key → entry JSON (key = account id, or the value's pseudonym)
- `fw:{wl}:ix:<kind>`  zset  keys at score 0, for paging in key order
- `fw:{wl}:version`    counter bumped by every change; views reload when it moves
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from typing import cast

import orjson

from models.events import Transfer
from models.features import NOT_LISTED, ListedParties
from models.watchlist import KINDS, WatchlistEntry, Watchlists
from streams.state.base import ENTITY_KINDS, EntityHasher
from streams.state.pipelines import AnyRedis, Pipeline
from streams.state.snapshots import RefreshedSnapshot

log = logging.getLogger(__name__)
PREFIX = "fw:{wl}"
VERSION_KEY = f"{PREFIX}:version"


def entries_key(kind: str) -> str:
    """The hash of one kind's entries."""
    return f"{PREFIX}:e:{kind}"


def index_key(kind: str) -> str:
    """The lexicographic index of one kind's keys."""
    return f"{PREFIX}:ix:{kind}"


def _encode(entry: WatchlistEntry) -> bytes:
    return orjson.dumps(
        [entry.value, entry.source, entry.reason, entry.added_at_ms, entry.expires_at_ms]
    )


def _decode(kind: str, key: str, raw: bytes | str) -> WatchlistEntry | None:
    """The stored entry; None (logged) for one this version cannot read, which then lists
    nothing rather than stopping a worker or a view."""
    try:
        value, source, reason, added, expires = orjson.loads(raw)
        if not (isinstance(added, int) and (expires is None or isinstance(expires, int))):
            raise ValueError("times are not integers")
        return WatchlistEntry(kind, str(value), key, str(source), str(reason), added, expires)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        log.warning("stored watchlist entry unreadable", extra={"kind": kind})
        return None


class BadCursor(ValueError):
    """A cursor this store did not issue."""


def _cursor_of(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _key_of(cursor: str) -> str:
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        key = ""
    # Only a cursor this store issued: base64 skips stray characters, which would read
    # garbage as the empty key and list from the start.
    if not key or _cursor_of(key) != cursor:
        raise BadCursor("cursor is not one this API issued")
    return key


class WatchlistStore:
    """Adds, removes, pages and snapshots watchlist entries; every change bumps the version."""

    def __init__(self, client: AnyRedis) -> None:
        self._redis = client

    def put(self, entries: Sequence[WatchlistEntry]) -> list[bool]:
        """Add or replace entries in one transaction; True for each one that was new."""
        if not entries:
            return []
        pipe = self._redis.pipeline(transaction=True)
        for entry in entries:
            pipe.hset(entries_key(entry.kind), entry.key, _encode(entry))
            pipe.zadd(index_key(entry.kind), {entry.key: 0})
        pipe.incr(VERSION_KEY)
        replies = pipe.execute()
        return [bool(flag) for flag in replies[0:-1:2]]

    def put_if_absent(self, entry: WatchlistEntry) -> bool:
        """Add an entry unless its kind and key are listed already (which is left as it is);
        True when it was added."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hsetnx(entries_key(entry.kind), entry.key, _encode(entry))
        pipe.zadd(index_key(entry.kind), {entry.key: 0})
        pipe.incr(VERSION_KEY)
        added, _, _ = pipe.execute()
        return bool(added)

    def delete(self, kind: str, key: str) -> bool:
        """Remove one entry; False if there was none (the version is then left alone)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(entries_key(kind), key)
        pipe.zrem(index_key(kind), key)
        removed, _ = pipe.execute()
        if removed:
            self._redis.incr(VERSION_KEY)
        return bool(removed)

    def purge_expired(self, before_ms: int) -> list[WatchlistEntry]:
        """Remove the entries whose listing ended before `before_ms` (kept until then, so a
        replay of older history still matches them); returns the removed entries."""
        expired = [
            entry
            for kind, entries in self._all().items()
            for entry in entries
            if entry.expires_at_ms is not None and entry.expires_at_ms < before_ms
        ]
        if expired:
            pipe = self._redis.pipeline(transaction=True)
            for entry in expired:
                pipe.hdel(entries_key(entry.kind), entry.key)
                pipe.zrem(index_key(entry.kind), entry.key)
            pipe.incr(VERSION_KEY)
            pipe.execute()
        return expired

    def _all(self) -> dict[str, list[WatchlistEntry]]:
        pipe = self._redis.pipeline(transaction=False)
        for kind in KINDS:
            pipe.hgetall(entries_key(kind))
        decoded = {
            kind: [_decode(kind, key.decode(), raw) for key, raw in entries.items()]
            for kind, entries in zip(KINDS, pipe.execute(), strict=True)
        }
        return {kind: [e for e in entries if e is not None] for kind, entries in decoded.items()}

    def rekey(self, pseudonymise: Callable[[str, str], str]) -> int:
        """Move every device, phone and IP entry to the key `pseudonymise` gives its value
        now, and return how many moved: entries listed before phones and IPs were normalised
        (or under another PII key) then match again. Idempotent; replicas may race on it."""
        moved = 0
        for kind in ENTITY_KINDS:
            for raw_key, raw in self._redis.hscan_iter(entries_key(kind), count=1000):
                key = raw_key.decode()
                entry = _decode(kind, key, raw)
                if entry is None or (new_key := pseudonymise(kind, entry.value)) == key:
                    continue
                pipe = self._redis.pipeline(transaction=True)
                pipe.hdel(entries_key(kind), key)
                pipe.zrem(index_key(kind), key)
                pipe.hset(entries_key(kind), new_key, raw)
                pipe.zadd(index_key(kind), {new_key: 0})
                pipe.incr(VERSION_KEY)
                pipe.execute()
                moved += 1
        return moved

    def get(self, kind: str, key: str) -> WatchlistEntry | None:
        """One entry by kind and key."""
        pipe = self._redis.pipeline(transaction=False)
        self.queue_get(pipe, kind, key)
        (raw,) = pipe.execute()
        return self.decode(kind, key, raw)

    @staticmethod
    def queue_get(pipe: Pipeline, kind: str, key: str) -> None:
        """Queue the read of one entry on a pipeline (decode its reply with `decode`)."""
        pipe.hget(entries_key(kind), key)

    @staticmethod
    def decode(kind: str, key: str, raw: bytes | None) -> WatchlistEntry | None:
        """The entry a `queue_get` reply holds (None if there is none)."""
        return None if raw is None else _decode(kind, key, raw)

    def page(
        self, kind: str, limit: int, cursor: str | None = None
    ) -> tuple[list[WatchlistEntry], str | None]:
        """Entries in key order after `cursor`; returns the page and the next cursor."""
        low = "-" if cursor is None else "(" + _key_of(cursor)
        members = cast(list[bytes], self._redis.zrangebylex(index_key(kind), low, "+", 0, limit))
        keys = [k.decode() for k in members]
        if not keys:
            return [], None
        raws = self._redis.hmget(entries_key(kind), keys)
        found = (_decode(kind, k, raw) for k, raw in zip(keys, raws, strict=True) if raw)
        items = [entry for entry in found if entry is not None]
        return items, (_cursor_of(keys[-1]) if len(keys) == limit else None)

    def version(self) -> int:
        """The change counter (0 before any change)."""
        return int(self._redis.get(VERSION_KEY) or 0)

    def snapshot(self) -> Watchlists:
        """Every list, read consistently with its version in one transaction."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(VERSION_KEY)
        for kind in KINDS:
            pipe.hgetall(entries_key(kind))
        version, *hashes = pipe.execute()
        expiries: dict[str, dict[str, int | None]] = {}
        for kind, entries in zip(KINDS, hashes, strict=True):
            found = (_decode(kind, key.decode(), raw) for key, raw in entries.items())
            expiries[kind] = {e.key: e.expires_at_ms for e in found if e is not None}
        return Watchlists(int(version or 0), expiries)


class WatchlistView(RefreshedSnapshot[Watchlists]):
    """An in-memory snapshot of the lists, reloaded when the Redis version moves (checked at
    most once per `refresh_s`)."""

    def __init__(self, store: WatchlistStore, hasher: EntityHasher, refresh_s: float = 1.0) -> None:
        super().__init__(Watchlists(), store.version, store.snapshot, refresh_s)
        self.store = store
        self._hasher = hasher

    def hits(
        self, transfers: Sequence[Transfer], lists: Watchlists | None = None
    ) -> list[ListedParties]:
        """For each transfer, which of its parties are listed at its event time (on `lists`,
        or on the current lists)."""
        lists = self.current() if lists is None else lists
        if not lists.expiries or not any(lists.expiries.values()):
            return [NOT_LISTED] * len(transfers)
        return [
            lists.hits((t.src_account, t.dst_account), self._hasher.entities_of(t), t.ts_ms)
            for t in transfers
        ]
