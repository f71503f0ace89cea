"""The in-memory state store: the Redis store's twin for replay, backtest and training.

It mirrors the Redis Lua scripts step by step (same windows, same trimming, same ordering of
sorted-set members by score then member), so replaying history gives bit-identical facts.
Wall-clock key expiry is the one thing it does not model: replay is bounded by event-time
trimming instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sortedcontainers import SortedList

from models.events import AccountProfile, Transfer
from models.features import (
    UNKNOWN,
    WINDOW_1H_MS,
    WINDOW_7D_MS,
    WINDOW_24H_MS,
    WINDOW_30D_MS,
    EntityFacts,
    PayeeFacts,
    PayerFacts,
)
from streams.state.base import (
    EntityHasher,
    StateLimits,
    TransferFacts,
    entry_member,
    split_member,
)


class SortedSet:
    """A Redis sorted set: members ordered by (score, member), scores unique per member."""

    def __init__(self) -> None:
        self._scores: dict[str, int] = {}
        self._order: SortedList = SortedList()

    def __len__(self) -> int:
        return len(self._scores)

    def score(self, member: str) -> int | None:
        """ZSCORE."""
        return self._scores.get(member)

    def add(self, member: str, score: int) -> None:
        """ZADD (replacing the member's score)."""
        old = self._scores.get(member)
        if old is not None:
            self._order.remove((old, member))
        self._scores[member] = score
        self._order.add((score, member))

    def add_min(self, member: str, score: int) -> bool:
        """ZADD LT (or insert); True if the member was absent or its score went down."""
        old = self._scores.get(member)
        if old is not None and old <= score:
            return False
        self.add(member, score)
        return True

    def add_max(self, member: str, score: int) -> None:
        """ZADD GT (or insert)."""
        old = self._scores.get(member)
        if old is None or old < score:
            self.add(member, score)

    def range_by_score(self, low: int, high: int) -> Iterator[tuple[int, str]]:
        """ZRANGEBYSCORE low high WITHSCORES, ascending."""
        return self._order.irange((low, ""), (high, "\U0010ffff" * 2))

    def count(self, low: int, high: float) -> int:
        """ZCOUNT low high."""
        start = self._order.bisect_left((low, ""))
        if high == float("inf"):
            return len(self._order) - start
        return self._order.bisect_right((int(high), "\U0010ffff" * 2)) - start

    def last_at_or_before(self, high: int) -> int | None:
        """Score of ZREVRANGEBYSCORE high -inf LIMIT 0 1."""
        index = self._order.bisect_right((high, "\U0010ffff" * 2))
        return None if index == 0 else self._order[index - 1][0]

    def trim(self, min_score: int, cap: int) -> None:
        """ZREMRANGEBYSCORE -inf (min_score, then ZREMRANGEBYRANK 0 -(cap+1)."""
        while self._order and (self._order[0][0] < min_score or len(self._order) > cap):
            _, member = self._order.pop(0)
            del self._scores[member]


@dataclass
class _Account:
    out: SortedSet = field(default_factory=SortedSet)
    inbound: SortedSet = field(default_factory=SortedSet)
    payees: SortedSet = field(default_factory=SortedSet)
    payers: SortedSet = field(default_factory=SortedSet)
    devices: SortedSet = field(default_factory=SortedSet)
    first_seen: int = UNKNOWN
    opened_at: int = UNKNOWN
    birth_year: int = UNKNOWN
    is_business: int = UNKNOWN
    payer_facts: dict[str, PayerFacts] = field(default_factory=dict)
    payee_facts: dict[str, PayeeFacts] = field(default_factory=dict)


@dataclass
class _Entity:
    accounts: SortedSet = field(default_factory=SortedSet)
    facts: dict[str, int] = field(default_factory=dict)


def _window_sums(entries: SortedSet, ts: int, window_ms: int) -> tuple[int, int, set[str]]:
    count = amount = 0
    parties: set[str] = set()
    for _, member in entries.range_by_score(ts - window_ms, ts):
        _, party, amt = split_member(member)
        count += 1
        amount += amt
        parties.add(party)
    return count, amount, parties


class MemoryStateStore:
    """State in process memory, with the same semantics as `RedisStateStore`."""

    def __init__(self, hasher: EntityHasher, limits: StateLimits | None = None) -> None:
        self._hasher = hasher
        self._limits = limits or StateLimits()
        self._accounts: dict[str, _Account] = {}
        self._entities: dict[str, _Entity] = {}

    def _account(self, account_id: str) -> _Account:
        account = self._accounts.get(account_id)
        if account is None:
            account = self._accounts[account_id] = _Account()
        return account

    def apply_profiles(self, profiles: Sequence[AccountProfile]) -> None:
        """Merge profile fields into the accounts' records."""
        for profile in profiles:
            account = self._account(profile.account_id)
            if profile.opened_at_ms is not None:
                account.opened_at = profile.opened_at_ms
            if profile.holder_birth_year is not None:
                account.birth_year = profile.holder_birth_year
            if profile.kind is not None:
                account.is_business = int(profile.kind == "business")

    def apply_transfers(self, transfers: Sequence[Transfer]) -> list[TransferFacts]:
        """Apply each transfer in order; see `streams.state.base` for the semantics."""
        results = []
        for transfer in transfers:
            device, phone, ip = self._hasher.entities_of(transfer)
            first = transfer.transfer_id not in self._account(transfer.src_account).payer_facts
            payer = self._apply_payer(transfer, device)
            payee = self._apply_payee(transfer)
            entities = EntityFacts(
                self._apply_entity("device", device, transfer),
                self._apply_entity("phone", phone, transfer),
                self._apply_entity("ip", ip, transfer),
            )
            results.append(TransferFacts(payer, payee, entities, first))
        return results

    def _apply_payer(self, t: Transfer, device: str | None) -> PayerFacts:
        account = self._account(t.src_account)
        stored = account.payer_facts.get(t.transfer_id)
        if stored is not None:
            return stored
        ts, cap = t.ts_ms, self._limits.window_cap
        account.first_seen = ts if account.first_seen == UNKNOWN else min(account.first_seen, ts)
        first_time = int(account.payees.add_min(t.dst_account, ts))
        account.out.add(entry_member(t.transfer_id, t.dst_account, t.amount_minor), ts)
        if device is not None:
            account.devices.add_max(device, ts)
        min_score = ts - self._limits.retention_ms
        account.out.trim(min_score, cap)
        account.payees.trim(-(2**62), cap)
        account.devices.trim(min_score, cap)

        out_1h = out_24h = amt_24h = n_prior = amt_prior = 0
        payees_1h: set[str] = set()
        payees_24h: set[str] = set()
        for score, member in account.out.range_by_score(ts - WINDOW_30D_MS, ts):
            tid, payee, amt = split_member(member)
            if score >= ts - WINDOW_1H_MS:
                out_1h += 1
                payees_1h.add(payee)
            if score >= ts - WINDOW_24H_MS:
                out_24h += 1
                amt_24h += amt
                payees_24h.add(payee)
            if tid != t.transfer_id:
                n_prior += 1
                amt_prior += amt
        in_24h, in_amt_24h, payers_24h = _window_sums(account.inbound, ts, WINDOW_24H_MS)
        last_in = account.inbound.last_at_or_before(ts)
        facts = PayerFacts(
            out_n_1h=out_1h,
            out_n_24h=out_24h,
            payees_1h=len(payees_1h),
            payees_24h=len(payees_24h),
            new_payees_24h=account.payees.count(ts - WINDOW_24H_MS, ts),
            first_time_payee=first_time,
            out_amt_24h=amt_24h,
            out_n_30d_prior=n_prior,
            out_amt_30d_prior=amt_prior,
            in_n_24h=in_24h,
            in_amt_24h=in_amt_24h,
            payers_24h=len(payers_24h),
            last_in_ts=UNKNOWN if last_in is None else last_in,
            first_seen_ts=account.first_seen,
            opened_at=account.opened_at,
            birth_year=account.birth_year,
            is_business=account.is_business,
            devices_7d=account.devices.count(ts - WINDOW_7D_MS, float("inf")),
        )
        account.payer_facts[t.transfer_id] = facts
        return facts

    def _apply_payee(self, t: Transfer) -> PayeeFacts:
        account = self._account(t.dst_account)
        stored = account.payee_facts.get(t.transfer_id)
        if stored is not None:
            return stored
        ts, cap = t.ts_ms, self._limits.window_cap
        account.first_seen = ts if account.first_seen == UNKNOWN else min(account.first_seen, ts)
        account.payers.add_min(t.src_account, ts)
        account.inbound.add(entry_member(t.transfer_id, t.src_account, t.amount_minor), ts)
        account.inbound.trim(ts - self._limits.retention_ms, cap)
        account.payers.trim(-(2**62), cap)

        in_1h, _, payers_1h = _window_sums(account.inbound, ts, WINDOW_1H_MS)
        in_24h, in_amt_24h, payers_24h = _window_sums(account.inbound, ts, WINDOW_24H_MS)
        _, out_amt_24h, _ = _window_sums(account.out, ts, WINDOW_24H_MS)
        facts = PayeeFacts(
            in_n_1h=in_1h,
            in_n_24h=in_24h,
            payers_1h=len(payers_1h),
            payers_24h=len(payers_24h),
            new_payers_24h=account.payers.count(ts - WINDOW_24H_MS, ts),
            in_amt_24h=in_amt_24h,
            out_amt_24h=out_amt_24h,
            first_seen_ts=account.first_seen,
            opened_at=account.opened_at,
            birth_year=account.birth_year,
            is_business=account.is_business,
        )
        account.payee_facts[t.transfer_id] = facts
        return facts

    def _apply_entity(self, kind: str, pseudonym: str | None, t: Transfer) -> int:
        if pseudonym is None:
            return UNKNOWN
        key = f"{kind}:{pseudonym}"
        entity = self._entities.get(key)
        if entity is None:
            entity = self._entities[key] = _Entity()
        stored = entity.facts.get(t.transfer_id)
        if stored is not None:
            return stored
        ts = t.ts_ms
        entity.accounts.add_max(t.src_account, ts)
        entity.accounts.trim(ts - self._limits.entity_retention_ms, self._limits.window_cap)
        count = entity.accounts.count(ts - WINDOW_7D_MS, float("inf"))
        entity.facts[t.transfer_id] = count
        return count
