"""Pre-transfer screening: the facts a transfer *would* get, computed without changing state.

One read of the raw keys the payer, payee and entity scripts would touch for the transfer
(one MULTI/EXEC, so a consistent snapshot even while workers write), copied into a throwaway
in-memory twin, which then applies the transfer. The twin mirrors the Lua scripts step by
step, so the facts are the ones the worker gets if nothing else happens first; a transfer
already processed gets its stored facts back, as a redelivery would.

The role tables below name, for each field of the twin's account record, the Redis key it
mirrors; they must follow `streams/state/lua/*.lua` (the integration test that screens a
transfer and then streams it holds them in step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from models.events import Transfer
from models.features import UNKNOWN, PayeeFacts, PayerFacts
from streams.state import keys
from streams.state.base import ENTITY_KINDS, EntityHasher, StateLimits, TransferFacts
from streams.state.memory import MemoryStateStore

ZSET, BUCKETS = "zset", "buckets"
# Twin field ← (role in `keys.account_keys`, how it is stored) for each side of a transfer.
PAYER_KEYS = {
    "out": ("out", ZSET),
    "inbound": ("in", ZSET),
    "payees": ("payees", ZSET),
    "payees_last": ("payees_last", ZSET),
    "payers_last": ("payers_last", ZSET),
    "devices": ("devices", ZSET),
    "out_amount": ("out_amount", BUCKETS),
    "in_amount": ("in_amount", BUCKETS),
}
PAYEE_KEYS = {
    "inbound": ("in", ZSET),
    "payers": ("payers", ZSET),
    "payers_last": ("payers_last", ZSET),
    "out_amount": ("out_amount", BUCKETS),
    "in_amount": ("in_amount", BUCKETS),
}
# Twin field ← (field of the account's `meta` hash, value when absent).
META_FIELDS = {
    "first_seen": ("fs", UNKNOWN),
    "out_n": ("on", 0),
    "out_sum": ("os", 0),
    "opened_at": ("oa", UNKNOWN),
    "birth_year": ("by", UNKNOWN),
    "is_business": ("ib", UNKNOWN),
}

Reply = Callable[[], Any]


def _ints(raw: bytes) -> list[int]:
    return [int(part) for part in raw.split(b",")]


class _Reads:
    """Queues reads on one pipeline and decodes their replies once it has run."""

    def __init__(self, pipe: redis.client.Pipeline) -> None:
        self.pipe = pipe
        self._replies: list[Any] = []
        self._count = 0

    def _slot(self) -> Reply:
        index = self._count
        self._count += 1
        return lambda: self._replies[index]

    def zset(self, key: str) -> Reply:
        self.pipe.zrange(key, 0, -1, withscores=True)
        raw = self._slot()
        return lambda: [(member.decode(), int(score)) for member, score in raw()]

    def buckets(self, key: str) -> Reply:
        self.pipe.hgetall(key)
        raw = self._slot()
        return lambda: {int(field): int(value) for field, value in raw().items()}

    def meta(self, key: str) -> Reply:
        self.pipe.hgetall(key)
        raw = self._slot()

        def decode() -> dict[str, int]:
            stored = {field.decode(): int(value) for field, value in raw().items()}
            return {name: stored.get(f, absent) for name, (f, absent) in META_FIELDS.items()}

        return decode

    def string(self, key: str) -> Reply:
        self.pipe.get(key)
        return self._slot()

    def run(self) -> None:
        self._replies = self.pipe.execute()


def _account_reads(reads: _Reads, account_id: str, table: dict[str, tuple[str, str]]) -> Reply:
    k = keys.account_keys(account_id)
    fields = {
        name: (reads.zset if kind == ZSET else reads.buckets)(k[role])
        for name, (role, kind) in table.items()
    }
    meta = reads.meta(k["meta"])
    return lambda: {**{name: reply() for name, reply in fields.items()}, **meta()}


def screen_facts(
    client: redis.Redis, hasher: EntityHasher, limits: StateLimits, transfer: Transfer
) -> TransferFacts:
    """The facts `transfer` gets if applied now (`first_delivery` False if it already was);
    reads Redis once and writes nothing."""
    t = transfer
    reads = _Reads(client.pipeline(transaction=True))
    payer = _account_reads(reads, t.src_account, PAYER_KEYS)
    payer_facts = reads.string(keys.payer_facts_key(t.src_account, t.transfer_id))
    payee = _account_reads(reads, t.dst_account, PAYEE_KEYS)
    payee_facts = reads.string(keys.payee_facts_key(t.dst_account, t.transfer_id))
    entities = [
        (
            kind,
            pseudonym,
            reads.zset(keys.entity_accounts_key(kind, pseudonym)),
            reads.string(keys.entity_facts_key(kind, pseudonym, t.transfer_id)),
        )
        for kind, pseudonym in zip(ENTITY_KINDS, hasher.entities_of(t), strict=True)
        if pseudonym is not None
    ]
    reads.run()

    twin = MemoryStateStore(hasher, limits)
    stored_payer, stored_payee = payer_facts(), payee_facts()
    twin.seed_account(
        t.src_account,
        **payer(),
        payer_facts={}
        if stored_payer is None
        else {t.transfer_id: PayerFacts(*_ints(stored_payer))},
    )
    twin.seed_account(
        t.dst_account,
        **payee(),
        payee_facts={}
        if stored_payee is None
        else {t.transfer_id: PayeeFacts(*_ints(stored_payee))},
    )
    for kind, pseudonym, accounts, count in entities:
        stored = count()
        twin.seed_entity(
            kind,
            pseudonym,
            accounts=accounts(),
            facts={} if stored is None else {t.transfer_id: int(stored)},
        )
    (facts,) = twin.apply_transfers([t])
    return facts
