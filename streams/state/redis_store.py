"""The Redis state store: one call per owner and transfer of the state functions (`spec.py`,
`functions.py`), a batch encoded ahead, sent at once and read later, so the worker can score the
previous batch meanwhile and Redis goes from one batch's calls straight to the next's.

Calls go in batch order (one pipeline per node on a cluster), so each key sees the batch's
updates in arrival order. If a worker dies mid-pipeline, each owner has applied a prefix of its
updates; the redelivered batch gets the stored facts for that prefix and computes the rest on
exactly the state they first saw.
"""

from __future__ import annotations

import secrets
import struct
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import orjson
from redis.typing import EncodableT, FieldT

from models.events import AccountProfile, Transfer
from models.features import UNKNOWN, EntityFacts, PayeeFacts, PayerFacts
from models.taint import TaintMark, decode_marks
from streams.state import keys, spec
from streams.state.base import ENTITY_KINDS, EntityHasher, StateLimits, TransferFacts
from streams.state.functions import StateConstants, state_library
from streams.state.observation import Observation, segments
from streams.state.pipelines import AnyRedis, Pipeline
from streams.state.transport import (
    SETTLE_TIMEOUT_S,
    Command,
    InFlight,
    ResendCounter,
    Transport,
    transport_for,
)

_META = spec.META_FIELDS


# Each function's keys and arguments, in the order these encoders write them; checked against
# the spec when this module loads (the Lua bindings are generated from the same spec).
_PAYER_ORDER = (("windows", "meta"),
                ("ts", "tid", "payee", "amount", "device", "phone", "ip",
                 "device_raw", "phone_raw", "ip_raw", "chain"))  # fmt: skip
_PAYEE_ORDER = (("windows", "meta"), ("ts", "tid", "payer", "amount", "chain"))
_ENTITY_ORDER = (("accounts",), ("ts", "account", "tid", "chain"))
_MARK_ORDER = (("meta",), ("tid", "ts", "amount", "partition", "offset"))
_OBSERVE_ORDER = (("observation",), ("first", "last"))
for _script, (_keys, _args) in ((spec.PAYER, _PAYER_ORDER), (spec.PAYEE, _PAYEE_ORDER),
                                (spec.ENTITY, _ENTITY_ORDER),
                                (spec.MARK, _MARK_ORDER),
                                (spec.OBSERVE, _OBSERVE_ORDER)):  # fmt: skip
    if (_script.keys, _script.args) != (_keys, _args):
        raise RuntimeError(f"redis_store encodes {_script.name} other than spec.py declares it")


def _payer_call(name: str, t: Transfer, entities: tuple[str | None, ...], link: int) -> Command:
    tag = keys.account_tag(t.src_account)
    device, phone, ip = entities
    return ("FCALL", name, 2, f"{tag}:w", f"{tag}:m", str(t.ts_ms), t.transfer_id,
            t.dst_account, str(t.amount_minor), device or "", phone or "", ip or "",
            t.device_id or "", t.phone or "", t.ip or "", str(link))  # fmt: skip


def _payee_call(name: str, t: Transfer, link: int) -> Command:
    tag = keys.account_tag(t.dst_account)
    return ("FCALL", name, 2, f"{tag}:w", f"{tag}:m", str(t.ts_ms), t.transfer_id,
            t.src_account, str(t.amount_minor), str(link))  # fmt: skip


def _entity_call(name: str, kind: str, pseudonym: str, t: Transfer, link: int) -> Command:
    return ("FCALL", name, 1, keys.entity_accounts_key(kind, pseudonym), str(t.ts_ms),
            t.src_account, t.transfer_id, str(link))  # fmt: skip


def _mark_call(name: str, payee: str, mark: TaintMark) -> Command:
    meta = keys.account_keys(payee)["meta"]
    return ("FCALL", name, 1, meta, mark.transfer_id, str(mark.ts_ms), str(mark.amount_minor),
            str(mark.partition), str(mark.offset))  # fmt: skip


class ChainLinks:
    """Each call's link in its owner's chain for one attempt at a batch (`spec.chain_link`).
    Only an owner with two calls or more in the batch needs order; the call of an owner with
    one goes unchained (0), as every call of a dry run, which writes nothing: the batch's
    requests are a link shorter and the owner writes no link."""

    def __init__(self, owners: Sequence[str], chained: bool) -> None:
        self._token = secrets.randbelow(spec.CHAIN_TOKENS - 1) + 1 if chained else 0
        self._repeated = {owner for owner, calls in Counter(owners).items() if calls > 1}
        self._positions: dict[str, int] = {}

    def next(self, owner: str) -> int:
        """The link of the owner's next call (owner: `a:` + account, `e:` + kind:pseudonym)."""
        if not self._token or owner not in self._repeated:
            return 0
        position = self._positions.get(owner, 0) + 1
        self._positions[owner] = position
        return spec.chain_link(self._token, position)


class RedisStateStore:
    """State in Redis (one server or a cluster): every function call touches one hash slot."""

    def __init__(
        self,
        client: AnyRedis,
        hasher: EntityHasher,
        limits: StateLimits | None = None,
        *,
        state_ttl_s: int = 35 * 86400,
        transfer_ttl_s: int = 30 * 86400,
        settle_timeout_s: float = SETTLE_TIMEOUT_S,
        on_resend: ResendCounter | None = None,
    ) -> None:
        self._redis = client
        self._hasher = hasher
        self._limits = limits or StateLimits()
        self._transfer_ttl = transfer_ttl_s
        self._state_ttl = state_ttl_s
        self.library = state_library(
            StateConstants(self._limits.window_cap, state_ttl_s, self._limits.dedupe_horizon_ms)
        )
        self._loaded = False
        self.transport: Transport = transport_for(
            client, self.load_functions, settle_timeout_s, on_resend
        )
        self.round_trips = 0

    def load_functions(self) -> None:
        """Load the state functions into Redis (again, after a restart or a FUNCTION FLUSH)."""
        self.library.load(self._redis)
        self._loaded = True

    def _ensure_loaded(self) -> None:
        """Load the functions on first use (later, a server that lost them says so, and the
        transport loads them again)."""
        if not self._loaded:
            self.load_functions()

    def observation(self) -> Observation:
        """When observation began and began again, and the latest event time applied."""
        return Observation.decode(self._redis.get(keys.OBSERVED_SINCE_KEY))

    def apply_profiles(self, profiles: Sequence[AccountProfile]) -> None:
        """Merge profile fields into each account's meta hash, in one round trip."""
        if not profiles:
            return
        pipe = self._redis.pipeline(transaction=False)
        for profile in profiles:
            fields: dict[FieldT, EncodableT] = {}
            if profile.opened_at_ms is not None:
                fields[_META["opened_at_ms"]] = str(profile.opened_at_ms)
            if profile.holder_birth_year is not None:
                fields[_META["birth_year"]] = str(profile.holder_birth_year)
            if profile.kind is not None:
                fields[_META["is_business"]] = "1" if profile.kind == "business" else "0"
            if fields:
                account = keys.account_keys(profile.account_id)
                pipe.hset(account["meta"], mapping=fields)
                # A profile is activity: a customer who rarely pays keeps it for the state TTL
                # from its latest update. A new hash gets the TTL (NX); otherwise the meta
                # hash and the windows, which the state functions keep at one TTL (one must
                # not outlive the other), are both raised to it, never lowered (GT).
                pipe.expire(account["meta"], self._state_ttl, nx=True)
                pipe.expire(account["meta"], self._state_ttl, gt=True)
                pipe.expire(account["windows"], self._state_ttl, gt=True)
        pipe.execute()
        self.round_trips += 1

    def put_marks(self, marks: Sequence[tuple[str, TaintMark]]) -> None:
        """Mark each payee with the transfer that alerted and paid it (idempotent), in one
        round trip per node; each call touches the payee's slot only."""
        if not marks:
            return
        self._ensure_loaded()
        name = self.library.name("mark")
        self.transport.send([_mark_call(name, payee, mark) for payee, mark in marks]).replies()
        self.round_trips += 1

    def apply_transfers(self, transfers: Sequence[Transfer]) -> list[TransferFacts]:
        """Keep the batch's transfer records and apply it, in two round trips per node (more
        if Redis lost the functions or a slot moved meanwhile). Ids another transfer holds are
        not checked here: the batch processor refuses those before it applies a batch."""
        if not transfers:
            return []
        self.claim_transfer_ids(transfers)
        return self.prepare_transfers(transfers).send().facts()

    def prepare_transfers(self, transfers: Sequence[Transfer]) -> PreparedCalls:
        """The batch's calls (and trace records), encoded, no I/O yet; `send()` writes them
        and returns without reading a reply: Redis applies them while the caller works, and
        `facts()` then reads the replies."""
        commands, pending = self._calls(transfers, dry=False)
        return PreparedCalls(self, commands, pending)

    def claim_transfer_ids(self, transfers: Sequence[Transfer]) -> list[bool]:
        """Write each transfer's record unless its id has one (SET NX GET: one round trip per
        node); True where the id held another transfer's. The trace starts from the record,
        the retro-hunt reads it; a record kept `transfer_ttl_s` answers for the id that long."""
        if not transfers:
            return []
        commands: list[Command] = [
            ("SET", keys.transfer_record_key(t.transfer_id),
             orjson.dumps([t.src_account, t.dst_account, t.ts_ms, t.sent_minor, t.currency]),
             "NX", "GET", "EX", self._transfer_ttl)
            for t in transfers
        ]  # fmt: skip
        replies = self.transport.send(commands).replies()
        self.round_trips += 1
        return [held_by_another(t, held) for t, held in zip(transfers, replies, strict=True)]

    def queue_transfer_records(self, pipe: Pipeline, transfers: Sequence[Transfer]) -> int:
        """Queue a read of each transfer's record on a shared pipeline (screening: does its id
        already name another transfer?); how many replies they take."""
        for t in transfers:
            pipe.get(keys.transfer_record_key(t.transfer_id))
        return len(transfers)

    def peek(self, transfers: Sequence[Transfer]) -> list[TransferFacts]:
        """The facts each transfer would get if applied now on its own, changing nothing
        (screening), in one round trip.

        The same functions compute them, in a dry run, so screening agrees with the worker."""
        if not transfers:
            return []
        self._ensure_loaded()
        return self.library.calling(self._redis, lambda: self._peek(transfers))

    def queue_peek(self, pipe: Pipeline, transfers: Sequence[Transfer]) -> PendingFacts:
        """Queue `peek`'s dry run on a pipeline shared with other reads (one round trip for
        all); the caller loads the functions again on "Function not found"."""
        commands, pending = self._calls(transfers, dry=True)
        for command in commands:
            pipe.execute_command(*command)
        return pending

    def _peek(self, transfers: Sequence[Transfer]) -> list[TransferFacts]:
        pipe = self._redis.pipeline(transaction=False)
        pending = self.queue_peek(pipe, transfers)
        replies: list[Any] = pipe.execute()
        self.round_trips += 1
        return pending.facts(replies)

    def _calls(
        self, transfers: Sequence[Transfer], dry: bool
    ) -> tuple[list[Command], PendingFacts]:
        """The calls of a batch, in order, and how to read their replies: first the
        observation (a batch that applies it applies its segments; a dry run only reads it),
        then each transfer's function calls."""
        suffix = "_peek" if dry else ""
        payer, payee, entity = (self.library.name(n + suffix) for n in ("payer", "payee", "entity"))
        # The owners of every call first (payer, payee, then each device, phone and IP present):
        # an owner's links depend on how many calls it has in the batch.
        identified = [self._hasher.entities_of(t) for t in transfers]
        owners = [
            owner
            for t, entities in zip(transfers, identified, strict=True)
            for owner in (f"a:{t.src_account}", f"a:{t.dst_account}",
                          *(f"e:{kind}:{pseudonym}"
                            for kind, pseudonym in zip(ENTITY_KINDS, entities, strict=True)
                            if pseudonym is not None))
        ]  # fmt: skip
        links = ChainLinks(owners, chained=not dry)
        owner_of_call = iter(owners)
        calls: list[Command] = []
        presence: list[tuple[bool, bool, bool]] = []
        for t, entities in zip(transfers, identified, strict=True):
            spec.check_storable(t.ts_ms)
            calls.append(_payer_call(payer, t, entities, links.next(next(owner_of_call))))
            calls.append(_payee_call(payee, t, links.next(next(owner_of_call))))
            for kind, pseudonym in zip(ENTITY_KINDS, entities, strict=True):
                if pseudonym is not None:
                    link = links.next(next(owner_of_call))
                    calls.append(_entity_call(entity, kind, pseudonym, t, link))
            presence.append((entities[0] is not None, entities[1] is not None,
                             entities[2] is not None))  # fmt: skip
        times = tuple(t.ts_ms for t in transfers)
        if not transfers:
            return [], PendingFacts(presence, times, 0, dry)
        if dry:
            calls = [("FCALL_RO", *call[1:]) for call in calls]
            observed: list[Command] = [("GET", keys.OBSERVED_SINCE_KEY)]
        else:
            observe = self.library.name("observe")
            observed = [("FCALL", observe, 1, keys.OBSERVED_SINCE_KEY, str(first), str(last))
                        for first, last in segments(times)]  # fmt: skip
        return [*observed, *calls], PendingFacts(presence, times, len(observed), dry)


_PAYER_FORMAT = struct.Struct(spec.PAYER.wire_format)
_PAYEE_FORMAT = struct.Struct(spec.PAYEE.wire_format)


def payer_facts(packed: bytes) -> PayerFacts:
    """Payer facts as the payer function returns and stores them (`spec.PAYER.wire_format`)."""
    return PayerFacts(*map(int, _PAYER_FORMAT.unpack(packed)))


def payee_facts(packed: bytes) -> PayeeFacts:
    """Payee facts as the payee function returns and stores them."""
    return PayeeFacts(*map(int, _PAYEE_FORMAT.unpack(packed)))


class TransferRecord(NamedTuple):
    """Who paid whom, when, how much and in what currency (None in records written before
    the currency was kept)."""

    transfer_id: str
    src: str
    dst: str
    ts_ms: int
    amount_minor: int
    currency: str | None


def held_by_another(transfer: Transfer, stored: bytes | None) -> bool:
    """Whether the record stored under the transfer's id (None: none) is another transfer's."""
    return stored is not None and not _same_transfer(
        decode_transfer_record(transfer.transfer_id, stored), transfer
    )


def _same_transfer(record: TransferRecord | None, transfer: Transfer) -> bool:
    """Whether a stored record is this transfer's (a record of a shape this version cannot
    read cannot tell otherwise; one written before the currency was kept has none)."""
    if record is None:
        return True
    return (record.src, record.dst, record.ts_ms, record.amount_minor) == (
        transfer.src_account, transfer.dst_account, transfer.ts_ms, transfer.sent_minor
    ) and record.currency in (None, transfer.currency)


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


def read_transfer_record(client: AnyRedis, transfer_id: str) -> TransferRecord | None:
    """The record of a transfer still within the trace TTL (None if gone or unreadable)."""
    raw = cast(bytes | None, client.get(keys.transfer_record_key(transfer_id)))
    return decode_transfer_record(transfer_id, raw)


def read_transfer_records(
    client: AnyRedis, transfer_ids: Sequence[str]
) -> dict[str, TransferRecord]:
    """The readable records of these transfers, by id (one pipeline)."""
    pipe = client.pipeline(transaction=False)
    for transfer_id in transfer_ids:
        pipe.get(keys.transfer_record_key(transfer_id))
    found = (decode_transfer_record(t, raw) for t, raw in zip(transfer_ids, pipe.execute(),
                                                              strict=True))  # fmt: skip
    return {record.transfer_id: record for record in found if record is not None}


@dataclass(frozen=True, slots=True)
class PreparedCalls:
    """A batch's calls, encoded, waiting to be sent."""

    store: RedisStateStore
    commands: list[Command]
    pending: PendingFacts

    def send(self) -> SentCalls:
        """Write the calls (one pipeline per node), without reading a reply."""
        self.store._ensure_loaded()
        self.store.round_trips += 1
        return SentCalls(self.pending, self.store.transport.send(self.commands))


class SentCalls:
    """A batch's calls written to Redis, replies not yet read."""

    def __init__(self, pending: PendingFacts, inflight: InFlight) -> None:
        self._pending = pending
        self._inflight: InFlight | None = inflight

    def facts(self) -> list[TransferFacts]:
        """Read every reply (raising the first error reply), then the transfers' facts.

        A server that restarted since the functions were loaded answers "Function not
        found": they are loaded again and the calls sent once more (each is idempotent)."""
        inflight = self._inflight
        if inflight is None:
            raise RuntimeError("the replies of these calls were already read")
        self._inflight = None
        replies = inflight.replies()
        return self._pending.facts(replies[: self._pending.replies])


@dataclass(frozen=True, slots=True)
class PendingFacts:
    """The commands queued for a batch: the observation's (`observation_calls` of them), then
    per transfer the calls of its payer, payee and the entities it carried."""

    entity_presence: list[tuple[bool, bool, bool]]
    times: tuple[int, ...]  # the transfers' event times, in order
    observation_calls: int
    # A dry run read the observation; the facts take it as applying the batch would leave it.
    dry: bool

    @property
    def replies(self) -> int:
        """How many pipeline replies the queued commands produce."""
        return self.observation_calls + sum(2 + sum(present) for present in self.entity_presence)

    def facts(self, replies: list[Any]) -> list[TransferFacts]:
        """Each transfer's facts, from the replies of the queued commands."""
        if not self.entity_presence:
            return []
        position = self.observation_calls
        observation = Observation.decode(replies[position - 1])
        if self.dry:
            observation = observation.applied(self.times)
        results = []
        for ts, presence in zip(self.times, self.entity_presence, strict=True):
            first_flag, packed, marks = replies[position]
            payer = payer_facts(packed)
            payee = payee_facts(replies[position + 1])
            position += 2
            counts = []
            for present in presence:
                if present:
                    counts.append(int(replies[position]))
                    position += 1
                else:
                    counts.append(UNKNOWN)
            results.append(TransferFacts(payer, payee, EntityFacts(*counts), bool(first_flag),
                                         observation.since(ts), decode_marks(marks)))  # fmt: skip
        return results
