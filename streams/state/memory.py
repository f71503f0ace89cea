"""The in-memory state store: the Redis store's twin for replay, backtest and training.

It mirrors the Redis Lua scripts step by step (same windows, same trimming, same ordering of
sorted-set members by score then member), so replaying history gives bit-identical facts.
Wall-clock key expiry is the one thing it does not model: replay is bounded by event-time
trimming instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

from sortedcontainers import SortedList

from models.events import AccountProfile, Transfer
from models.features import (
    MS_PER_HOUR,
    UNKNOWN,
    WINDOW_1H_MS,
    WINDOW_7D_MS,
    WINDOW_24H_MS,
    EntityFacts,
    PayeeFacts,
    PayerFacts,
)
from streams.state.base import (
    EntityHasher,
    ImmediateTransfers,
    StateLimits,
    TransferFacts,
    entry_member,
    split_member,
)

INF = float("inf")
NO_MIN = -(2**62)  # trim by rank only
NO_CAP = 2**62  # trim by score only


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

    def add_new(self, member: str, score: int) -> bool:
        """ZADD NX: add an absent member; True if it was added."""
        if member in self._scores:
            return False
        self.add(member, score)
        return True

    def members_below(self, score: int) -> list[str]:
        """ZRANGEBYSCORE -inf (score: members scored strictly below `score`."""
        return [
            member for _, member in self._order.irange(maximum=(score, ""), inclusive=(True, False))
        ]

    def pop_lowest(self) -> str:
        """Remove and return the lowest-ranked member (ZREMRANGEBYRANK 0 0)."""
        _, member = self._order.pop(0)
        del self._scores[member]
        return member

    def add_min(self, member: str, score: int) -> bool:
        """ZADD LT (or insert); True if the member was absent or its score went down."""
        old = self._scores.get(member)
        if old is not None and old <= score:
            return False
        self.add(member, score)
        return True

    def add_max(self, member: str, score: int) -> bool:
        """ZADD GT (or insert); True if the member was new (what ZADD GT returns)."""
        old = self._scores.get(member)
        if old is None or old < score:
            self.add(member, score)
        return old is None

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
    payees_last: SortedSet = field(default_factory=SortedSet)
    payers_last: SortedSet = field(default_factory=SortedSet)
    devices: SortedSet = field(default_factory=SortedSet)
    out_amount: dict[int, int] = field(default_factory=dict)
    in_amount: dict[int, int] = field(default_factory=dict)
    out_n: int = 0
    out_sum: int = 0
    # Event hour of the last housekeeping (trims, clean-up); it only moves forward.
    payer_housekeeping_hour: int = -1
    payee_housekeeping_hour: int = -1
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


def _hour_of(ts_ms: int) -> int:
    return ts_ms // MS_PER_HOUR


def hour_sum(buckets: dict[int, int], ts_ms: int) -> int:
    """Sum of the clock hour of `ts_ms` and the 23 before it (the 24-hour amount window)."""
    hour = _hour_of(ts_ms)
    return sum(buckets.get(hour - i, 0) for i in range(24))


def _newly(last: int | None, since_ms: int) -> int:
    """1 if a member last seen at `last` (or never) is not yet counted from `since_ms` on."""
    return 1 if last is None or last < since_ms else 0


def _drop_old_hours(buckets: dict[int, int], hour: int) -> None:
    """Housekeeping of hour buckets: keep them few (only the last 24 hours are ever read)."""
    if len(buckets) > 30:
        for old in [h for h in buckets if h < hour - 26]:
            del buckets[old]


class MemoryStateStore:
    """State in process memory, with the same semantics as `RedisStateStore`."""

    def __init__(self, hasher: EntityHasher, limits: StateLimits | None = None) -> None:
        self._hasher = hasher
        self._limits = limits or StateLimits()
        self._accounts: dict[str, _Account] = {}
        self._entities: dict[str, _Entity] = {}
        self._observed_since = UNKNOWN

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
        if transfers and self._observed_since == UNKNOWN:
            self._observed_since = transfers[0].ts_ms
        return [self._transfer(t, self._observed_since, dry=False) for t in transfers]

    def prepare_transfers(self, transfers: Sequence[Transfer]) -> ImmediateTransfers:
        """The transfers, applied when sent (nothing here to wait for)."""
        return ImmediateTransfers(partial(self.apply_transfers, list(transfers)))

    def peek(self, transfers: Sequence[Transfer]) -> list[TransferFacts]:
        """The facts each transfer would get if applied now on its own, changing nothing."""
        if not transfers:
            return []
        observed = self._observed_since
        since = transfers[0].ts_ms if observed == UNKNOWN else observed
        return [self._transfer(t, since, dry=True) for t in transfers]

    def _transfer(self, transfer: Transfer, observed_since_ms: int, *, dry: bool) -> TransferFacts:
        device, phone, ip = self._hasher.entities_of(transfer)
        first = transfer.transfer_id not in self._account(transfer.src_account).payer_facts
        return TransferFacts(
            self._apply_payer(transfer, (device, phone, ip), dry),
            self._apply_payee(transfer, dry),
            EntityFacts(
                self._apply_entity("device", device, transfer, dry),
                self._apply_entity("phone", phone, transfer, dry),
                self._apply_entity("ip", ip, transfer, dry),
            ),
            first,
            observed_since_ms,
        )

    def _apply_payer(
        self, t: Transfer, pseudonyms: tuple[str | None, str | None, str | None], dry: bool
    ) -> PayerFacts:
        account = self._account(t.src_account)
        stored = account.payer_facts.get(t.transfer_id)
        if stored is not None:
            return stored
        ts, cap, retention = t.ts_ms, self._limits.window_cap, self._limits.retention_ms
        hour = _hour_of(ts)
        member = entry_member(t.transfer_id, t.dst_account, t.amount_minor)
        first_seen = ts if account.first_seen == UNKNOWN else min(account.first_seen, ts)
        first_paid = account.payees.score(t.dst_account)
        first_time = int(first_paid is None or first_paid > ts)
        # A replay past the dedupe horizon finds its entry already there and adds nothing.
        added = int(account.out.score(member) is None)
        last_paid = account.payees_last.score(t.dst_account)
        device = pseudonyms[0]
        device_new = (
            0 if device is None else _newly(account.devices.score(device), ts - WINDOW_7D_MS)
        )
        last_in = account.inbound.last_at_or_before(ts)
        # Retained history without the entries past retention that housekeeping has yet to drop.
        expired = account.out.members_below(ts - retention)
        prior_n = account.out_n - len(expired)
        prior_sum = account.out_sum - sum(split_member(m)[2] for m in expired)
        facts = PayerFacts(
            out_n_1h=account.out.count(ts - WINDOW_1H_MS, ts) + added,
            out_n_24h=account.out.count(ts - WINDOW_24H_MS, ts) + added,
            payees_1h=account.payees_last.count(ts - WINDOW_1H_MS, INF)
            + _newly(last_paid, ts - WINDOW_1H_MS),
            payees_24h=account.payees_last.count(ts - WINDOW_24H_MS, INF)
            + _newly(last_paid, ts - WINDOW_24H_MS),
            new_payees_24h=account.payees.count(ts - WINDOW_24H_MS, ts) + first_time,
            first_time_payee=first_time,
            out_amt_24h=hour_sum(account.out_amount, ts) + added * t.amount_minor,
            out_n_30d_prior=prior_n,
            out_amt_30d_prior=prior_sum,
            in_n_24h=account.inbound.count(ts - WINDOW_24H_MS, ts),
            in_amt_24h=hour_sum(account.in_amount, ts),
            payers_24h=account.payers_last.count(ts - WINDOW_24H_MS, INF),
            last_in_ts=UNKNOWN if last_in is None else last_in,
            first_seen_ts=first_seen,
            opened_at=account.opened_at,
            birth_year=account.birth_year,
            is_business=account.is_business,
            devices_7d=account.devices.count(ts - WINDOW_7D_MS, INF) + device_new,
        )
        if dry:
            return facts

        housekeeping = hour > account.payer_housekeeping_hour  # only forward: order-independent
        account.first_seen = first_seen
        if first_time:
            account.payees.add(t.dst_account, ts)
            if first_paid is None:
                account.payees.trim(NO_MIN, cap)
        if housekeeping:
            account.out_n, account.out_sum = prior_n, prior_sum
            account.out.trim(ts - retention, NO_CAP)
        if added:
            account.out.add(member, ts)
            account.out_n += 1
            account.out_sum += t.amount_minor
            while account.out_n > cap:
                account.out_n -= 1
                account.out_sum -= split_member(account.out.pop_lowest())[2]
            account.out_amount[hour] = account.out_amount.get(hour, 0) + t.amount_minor
        if account.payees_last.add_max(t.dst_account, ts):
            account.payees_last.trim(NO_MIN, cap)
        if device is not None and account.devices.add_max(device, ts):
            account.devices.trim(NO_MIN, cap)
        if housekeeping:
            account.payees_last.trim(ts - retention, NO_CAP)
            account.devices.trim(ts - retention, NO_CAP)
            _drop_old_hours(account.out_amount, hour)
            account.payer_housekeeping_hour = hour
        account.payer_facts[t.transfer_id] = facts
        return facts

    def _apply_payee(self, t: Transfer, dry: bool) -> PayeeFacts:
        account = self._account(t.dst_account)
        stored = account.payee_facts.get(t.transfer_id)
        if stored is not None:
            return stored
        ts, cap, retention = t.ts_ms, self._limits.window_cap, self._limits.retention_ms
        hour = _hour_of(ts)
        member = entry_member(t.transfer_id, t.src_account, t.amount_minor)
        first_seen = ts if account.first_seen == UNKNOWN else min(account.first_seen, ts)
        first_paid = account.payers.score(t.src_account)
        first_time = int(first_paid is None or first_paid > ts)
        added = int(account.inbound.score(member) is None)
        last_paid = account.payers_last.score(t.src_account)
        facts = PayeeFacts(
            in_n_1h=account.inbound.count(ts - WINDOW_1H_MS, ts) + added,
            in_n_24h=account.inbound.count(ts - WINDOW_24H_MS, ts) + added,
            payers_1h=account.payers_last.count(ts - WINDOW_1H_MS, INF)
            + _newly(last_paid, ts - WINDOW_1H_MS),
            payers_24h=account.payers_last.count(ts - WINDOW_24H_MS, INF)
            + _newly(last_paid, ts - WINDOW_24H_MS),
            new_payers_24h=account.payers.count(ts - WINDOW_24H_MS, ts) + first_time,
            in_amt_24h=hour_sum(account.in_amount, ts) + added * t.amount_minor,
            out_amt_24h=hour_sum(account.out_amount, ts),
            first_seen_ts=first_seen,
            opened_at=account.opened_at,
            birth_year=account.birth_year,
            is_business=account.is_business,
        )
        if dry:
            return facts

        account.first_seen = first_seen
        if first_time:
            account.payers.add(t.src_account, ts)
            if first_paid is None:
                account.payers.trim(NO_MIN, cap)
        if added:
            account.inbound.add(member, ts)
            account.in_amount[hour] = account.in_amount.get(hour, 0) + t.amount_minor
            account.inbound.trim(NO_MIN, cap)
        if account.payers_last.add_max(t.src_account, ts):
            account.payers_last.trim(NO_MIN, cap)
        if hour > account.payee_housekeeping_hour:  # only forward: order-independent
            account.inbound.trim(ts - retention, NO_CAP)
            account.payers_last.trim(ts - retention, NO_CAP)
            _drop_old_hours(account.in_amount, hour)
            account.payee_housekeeping_hour = hour
        account.payee_facts[t.transfer_id] = facts
        return facts

    def _apply_entity(self, kind: str, pseudonym: str | None, t: Transfer, dry: bool) -> int:
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
        count = entity.accounts.count(ts - WINDOW_7D_MS, INF) + _newly(
            entity.accounts.score(t.src_account), ts - WINDOW_7D_MS
        )
        if dry:
            return count
        if entity.accounts.add_max(t.src_account, ts):
            entity.accounts.trim(ts - self._limits.entity_retention_ms, self._limits.window_cap)
        entity.facts[t.transfer_id] = count
        return count
