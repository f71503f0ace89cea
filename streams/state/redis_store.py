"""The Redis state store: one pipeline of per-owner Lua scripts per batch (one round trip),
encoded ahead, sent at once and read later, so the worker can score the previous batch
meanwhile and Redis goes from one batch's scripts straight to the next's.

Scripts go in batch order, so each key sees the batch's updates in arrival order. If a worker
dies mid-pipeline, each key has applied a prefix of its updates; the redelivered batch gets the
stored facts for that prefix and computes the rest on exactly the state they first saw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import hiredis
import orjson
import redis
from redis.client import Pipeline
from redis.connection import Connection, ConnectionPool
from redis.typing import EncodableT, FieldT

from models.events import AccountProfile, Transfer
from models.features import (
    UNKNOWN,
    WINDOW_1H_MS,
    WINDOW_7D_MS,
    WINDOW_24H_MS,
    EntityFacts,
    PayeeFacts,
    PayerFacts,
)
from streams.state import keys
from streams.state.base import ENTITY_KINDS, EntityHasher, StateLimits, TransferFacts
from streams.state.scripts import after_script_reload, script_source

_SCRIPTS = ("payer", "payee", "entity")

# One Redis command: its name and arguments.
Command = tuple[str | bytes | int, ...]


class RedisStateStore:
    """State in Redis, shaped for Redis Cluster: every script touches one hash slot."""

    def __init__(
        self,
        client: redis.Redis,
        hasher: EntityHasher,
        limits: StateLimits | None = None,
        *,
        state_ttl_s: int = 35 * 86400,
        dedupe_ttl_s: int = 72 * 3600,
        transfer_ttl_s: int = 30 * 86400,
    ) -> None:
        self._redis = client
        self._hasher = hasher
        self._limits = limits or StateLimits()
        self._transfer_ttl = transfer_ttl_s
        constants = {
            "RETENTION": self._limits.retention_ms,
            "ENTITY_RETENTION": self._limits.entity_retention_ms,
            "CAP": self._limits.window_cap,
            # ZREMRANGEBYRANK's start rank that keeps a sorted set's newest CAP members.
            "KEEP_NEWEST": -(self._limits.window_cap + 1),
            "STATE_TTL": state_ttl_s,
            "DEDUPE_TTL": dedupe_ttl_s,
            "W1H": WINDOW_1H_MS,
            "W24H": WINDOW_24H_MS,
            "W7D": WINDOW_7D_MS,
        }
        self._state_ttl = state_ttl_s
        self._sources = {name: script_source(name, constants) for name in _SCRIPTS}
        # Redis names a script by the SHA1 of its source: batches are encoded without asking.
        self._sha = {n: hashlib.sha1(src.encode()).hexdigest() for n, src in self._sources.items()}
        self._loaded = False
        self.round_trips = 0

    def load_scripts(self) -> None:
        """Load the state scripts into Redis (again, after a restart or a SCRIPT FLUSH)."""
        for source in self._sources.values():
            self._redis.script_load(source)
        self._loaded = True

    def _ensure_loaded(self) -> None:
        """Load the scripts on first use (later, a restarted Redis answers NOSCRIPT and the
        callers reload)."""
        if not self._loaded:
            self.load_scripts()

    def _before_send(self) -> None:
        self._ensure_loaded()
        self.round_trips += 1

    def observed_since(self) -> int | None:
        """When observation began (the first event time applied), or None before any."""
        value = self._redis.get(keys.OBSERVED_SINCE_KEY)
        return None if value is None else int(value)

    def apply_profiles(self, profiles: Sequence[AccountProfile]) -> None:
        """Merge profile fields into each account's meta hash, in one round trip."""
        if not profiles:
            return
        pipe = self._redis.pipeline(transaction=False)
        for profile in profiles:
            fields: dict[FieldT, EncodableT] = {}
            if profile.opened_at_ms is not None:
                fields["oa"] = str(profile.opened_at_ms)
            if profile.holder_birth_year is not None:
                fields["by"] = str(profile.holder_birth_year)
            if profile.kind is not None:
                fields["ib"] = "1" if profile.kind == "business" else "0"
            if fields:
                meta = keys.account_keys(profile.account_id)["meta"]
                pipe.hset(meta, mapping=fields)
                pipe.expire(meta, self._state_ttl)
        pipe.execute()
        self.round_trips += 1

    def apply_transfers(self, transfers: Sequence[Transfer]) -> list[TransferFacts]:
        """Apply the batch in one round trip (two if Redis lost the scripts)."""
        if not transfers:
            return []
        return self.prepare_transfers(transfers).send().facts()

    def prepare_transfers(self, transfers: Sequence[Transfer]) -> PreparedScripts:
        """The batch's scripts (and trace records) in Redis's wire format, no I/O yet;
        `send()` writes them and returns without reading a reply: Redis applies them while
        the caller works, and `facts()` then reads the replies."""
        commands, pending = self._scripts(transfers, dry=False)
        for t in transfers:
            # Idempotent (same value each time); trace starts from it, the retro-hunt reads it.
            record = orjson.dumps(
                [t.src_account, t.dst_account, t.ts_ms, t.amount_minor, t.currency]
            )
            key = keys.transfer_record_key(t.transfer_id)
            commands.append(("SET", key, record, "EX", self._transfer_ttl))
        return PreparedScripts(self._redis, self._before_send, self.load_scripts,
                               _packed(commands), len(commands), pending)  # fmt: skip

    def peek(self, transfers: Sequence[Transfer]) -> list[TransferFacts]:
        """The facts each transfer would get if applied now on its own, changing nothing
        (screening), in one round trip.

        The same scripts compute them, in a dry run, so screening agrees with the worker."""
        if not transfers:
            return []
        return after_script_reload(lambda: self._peek(transfers), self.load_scripts)

    def queue_peek(self, pipe: Pipeline, transfers: Sequence[Transfer]) -> PendingFacts:
        """Queue `peek`'s dry run on a pipeline shared with other reads (one round trip for
        all); the caller retries on `NoScriptError`."""
        self._ensure_loaded()
        commands, pending = self._scripts(transfers, dry=True)
        for command in commands:
            pipe.execute_command(*command)
        return pending

    def _peek(self, transfers: Sequence[Transfer]) -> list[TransferFacts]:
        pipe = self._redis.pipeline(transaction=False)
        pending = self.queue_peek(pipe, transfers)
        replies: list[Any] = pipe.execute()
        self.round_trips += 1
        return pending.facts(replies)

    def _scripts(
        self, transfers: Sequence[Transfer], dry: bool
    ) -> tuple[list[Command], PendingFacts]:
        """The script calls of a batch, in order, and how to read their replies; first of all,
        when observation began (a batch that applies sets it to its first transfer's time
        unless it is set; a dry run only reads it)."""
        flag = "1" if dry else "0"
        payer_sha, payee_sha, entity_sha = (self._sha[name] for name in _SCRIPTS)
        commands: list[Command] = []
        if transfers:
            first_ts = str(transfers[0].ts_ms)
            commands.append(
                ("GET", keys.OBSERVED_SINCE_KEY)
                if dry
                else ("SET", keys.OBSERVED_SINCE_KEY, first_ts, "NX", "GET")
            )
        entity_counts: list[tuple[bool, bool, bool]] = []
        for t in transfers:
            ts = str(t.ts_ms)
            amount = str(t.amount_minor)
            src, dst = keys.account_keys(t.src_account), keys.account_keys(t.dst_account)
            device, phone, ip = self._hasher.entities_of(t)
            commands.append((
                "EVALSHA", payer_sha, 13,
                src["out"], src["in"], src["payees"], src["devices"], src["meta"],
                keys.payer_facts_key(t.src_account, t.transfer_id),
                src["phones"], src["ips"], src["identifiers"], src["payees_last"],
                src["payers_last"], src["out_amount"], src["in_amount"],
                t.transfer_id, ts, t.dst_account, amount, device or "", phone or "", ip or "",
                t.device_id or "", t.phone or "", t.ip or "", flag,
            ))  # fmt: skip
            commands.append((
                "EVALSHA", payee_sha, 7,
                dst["in"], dst["out_amount"], dst["payers"], dst["meta"],
                keys.payee_facts_key(t.dst_account, t.transfer_id),
                dst["payers_last"], dst["in_amount"],
                t.transfer_id, ts, t.src_account, amount, flag,
            ))  # fmt: skip
            for kind, pseudonym in zip(ENTITY_KINDS, (device, phone, ip), strict=True):
                if pseudonym is not None:
                    commands.append((
                        "EVALSHA", entity_sha, 2,
                        keys.entity_accounts_key(kind, pseudonym),
                        keys.entity_facts_key(kind, pseudonym, t.transfer_id),
                        t.transfer_id, ts, t.src_account, flag,
                    ))  # fmt: skip
            entity_counts.append((device is not None, phone is not None, ip is not None))
        first_ms = transfers[0].ts_ms if transfers else UNKNOWN
        return commands, PendingFacts(entity_counts, first_ms)


def _ints(csv: bytes | str) -> list[int]:
    text = csv.decode() if isinstance(csv, bytes) else csv
    return [int(part) for part in text.split(",")]


class TransferRecord(NamedTuple):
    """Who paid whom, when, how much and in what currency (None in records written before
    the currency was kept)."""

    transfer_id: str
    src: str
    dst: str
    ts_ms: int
    amount_minor: int
    currency: str | None


def decode_transfer_record(transfer_id: str, raw: bytes | None) -> TransferRecord | None:
    """A stored transfer record; None when there is none or it is of another shape."""
    if raw is None:
        return None
    try:
        src, dst, ts_ms, amount_minor, *rest = orjson.loads(raw)
        currency = str(rest[0]) if rest else None
        return TransferRecord(transfer_id, str(src), str(dst), int(ts_ms), int(amount_minor),
                              currency)  # fmt: skip
    except (ValueError, TypeError):
        return None


def read_transfer_record(client: redis.Redis, transfer_id: str) -> TransferRecord | None:
    """The record of a transfer still within the trace TTL (None if gone or unreadable)."""
    raw = cast(bytes | None, client.get(keys.transfer_record_key(transfer_id)))
    return decode_transfer_record(transfer_id, raw)


def read_transfer_records(
    client: redis.Redis, transfer_ids: Sequence[str]
) -> dict[str, TransferRecord]:
    """The readable records of these transfers, by id (one pipeline)."""
    pipe = client.pipeline(transaction=False)
    for transfer_id in transfer_ids:
        pipe.get(keys.transfer_record_key(transfer_id))
    found = (decode_transfer_record(t, raw) for t, raw in zip(transfer_ids, pipe.execute(),
                                                              strict=True))  # fmt: skip
    return {record.transfer_id: record for record in found if record is not None}


def _packed(commands: Sequence[Command]) -> bytes:
    """The commands in Redis's wire format, by hiredis's C encoder (a third of the cost of
    redis-py's pipeline packing)."""
    return b"".join(hiredis.pack_command(c) for c in commands)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PreparedScripts:
    """A batch's commands, encoded, waiting to be sent."""

    client: redis.Redis
    before_send: Callable[[], None]
    reload_scripts: Callable[[], None]
    packed: bytes
    commands: int
    pending: PendingFacts

    def send(self) -> SentScripts:
        """Write the commands on a pooled connection of their own (held until `facts`)."""
        self.before_send()
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command([self.packed], check_health=False)
        except BaseException:
            connection.disconnect()
            pool.release(connection)
            raise
        return SentScripts(self, pool, connection)


class SentScripts:
    """A pipeline's commands written to a connection of their own, replies not yet read."""

    def __init__(self, prepared: PreparedScripts, pool: ConnectionPool,
                 connection: Connection) -> None:  # fmt: skip
        self._prepared = prepared
        self._pool = pool
        self._connection: Connection | None = connection

    def facts(self) -> list[TransferFacts]:
        """Read every reply (raising the first error reply), then the transfers' facts.

        A Redis that restarted since the scripts were loaded answers NOSCRIPT: they are loaded
        again and the batch sent once more (every script call is idempotent on replay)."""
        try:
            return self._read()
        except redis.exceptions.NoScriptError:
            self._prepared.reload_scripts()
            return self._prepared.send()._read()

    def _read(self) -> list[TransferFacts]:
        connection = self._connection
        if connection is None:
            raise RuntimeError("the replies of these scripts were already read")
        self._connection = None
        try:
            replies = [connection.read_response() for _ in range(self._prepared.commands)]
        except BaseException:
            # Replies left unread would be taken for the next command's: drop them.
            connection.disconnect()
            raise
        finally:
            self._pool.release(connection)
        pending = self._prepared.pending
        return pending.facts(replies[: pending.replies])


@dataclass(frozen=True, slots=True)
class PendingFacts:
    """The commands queued for a batch: the observation start's, then per transfer the
    scripts of its payer, payee and the entities it carried."""

    entity_presence: list[tuple[bool, bool, bool]]
    first_ts_ms: int  # where observation begins if no batch began it before

    @property
    def replies(self) -> int:
        """How many pipeline replies the queued commands produce."""
        if not self.entity_presence:
            return 0
        return 1 + sum(2 + sum(present) for present in self.entity_presence)

    def facts(self, replies: list[Any]) -> list[TransferFacts]:
        """Each transfer's facts, from the replies of the queued commands."""
        if not self.entity_presence:
            return []
        observed = self.first_ts_ms if replies[0] is None else int(replies[0])
        return _facts_from_replies(replies[1:], self.entity_presence, observed)


def _facts_from_replies(
    replies: list[Any], entity_presence: list[tuple[bool, bool, bool]], observed_since_ms: int
) -> list[TransferFacts]:
    results = []
    position = 0
    for presence in entity_presence:
        first_flag, payer_csv = replies[position]
        payer = PayerFacts(*_ints(payer_csv))
        payee = PayeeFacts(*_ints(replies[position + 1]))
        position += 2
        counts = []
        for present in presence:
            if present:
                counts.append(int(replies[position]))
                position += 1
            else:
                counts.append(UNKNOWN)
        results.append(
            TransferFacts(payer, payee, EntityFacts(*counts), bool(first_flag), observed_since_ms)
        )
    return results
