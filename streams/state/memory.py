"""The in-memory state store: the Redis store's twin for replay, backtest and training.

It keeps the same windows as the Redis functions, scored by the same bands of `spec.py` (so
members tie and rank exactly as in Redis), trims them by the same rules at the same moments,
and computes every fact from them directly, so replaying history gives bit-identical facts.
The Redis side's shortcuts (skipping a count whose window cannot hold anything) are exact and
need no twin here. Wall-clock key expiry is the one thing it does not model: replay is
bounded by event-time trimming instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from sortedcontainers import SortedList

from models.events import AccountProfile, Transfer
from models.features import (
    MS_PER_DAY,
    MS_PER_MINUTE,
    UNKNOWN,
    WINDOW_1H_MS,
    WINDOW_7D_MS,
    WINDOW_24H_MS,
    EntityFacts,
    PayeeFacts,
    PayerFacts,
)
from models.taint import TaintMark, keep_marks
from streams.state import spec
from streams.state.base import (
    EntityHasher,
    ImmediateTransfers,
    StateLimits,
    TransferFacts,
    entry_member,
    split_member,
)
from streams.state.observation import Observation
from streams.state.spec import BAND, Band, hour_of

_TOP = "\U0010ffff" * 2  # above any member: closes a score range on the right


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

    def add_max(self, member: str, score: int) -> None:
        """ZADD GT: insert, or raise the member's score."""
        old = self._scores.get(member)
        if old is None or old < score:
            self.add(member, score)

    def count(self, low: int, high: int) -> int:
        """ZCOUNT low high (inclusive)."""
        return self._order.bisect_right((high, _TOP)) - self._order.bisect_left((low, ""))

    def range(self, low: int, high: int) -> list[tuple[int, str]]:
        """ZRANGEBYSCORE low high WITHSCORES, ascending."""
        return list(self._order.irange((low, ""), (high, _TOP)))

    def pop_lowest(self) -> tuple[int, str]:
        """Remove and return the lowest-ranked member (ZREMRANGEBYRANK 0 0)."""
        score, member = self._order.pop(0)
        del self._scores[member]
        return score, member

    def pop_highest(self) -> tuple[int, str]:
        """Remove and return the highest-ranked member (ZREMRANGEBYRANK -1 -1)."""
        score, member = self._order.pop()
        del self._scores[member]
        return score, member

    def remove_range(self, low: int, high: int) -> list[tuple[int, str]]:
        """ZREMRANGEBYSCORE low high (inclusive); the removed members."""
        removed = self.range(low, high)
        for score, member in removed:
            self._order.remove((score, member))
            del self._scores[member]
        return removed


class Windows:
    """An account's windows: one sorted set per band, scored as `spec.Band` scores them."""

    def __init__(self) -> None:
        self.bands: dict[str, SortedSet] = {band.name: SortedSet() for band in _KEPT_BANDS}

    def at(self, band: Band, member: str) -> int | None:
        """The time a member of the band was stored at (None: absent)."""
        score = self.bands[band.name].score(member)
        return None if score is None else band.ts(score)

    def count(self, band: Band, low_ts: int | None, high_ts: int | None) -> int:
        """Members stored at times `low_ts`..`high_ts` (inclusive; None: open end)."""
        return self.bands[band.name].count(*band.scores(low_ts, high_ts))

    def put(self, band: Band, member: str, ts_ms: int) -> None:
        """ZADD GT of the band's score: the latest time, or the earliest in an `earliest`
        band."""
        self.bands[band.name].add_max(member, band.score(ts_ms))

    def cap(self, band: Band, cap: int) -> list[str]:
        """Keep the band's `cap` newest members; the ones dropped."""
        members = self.bands[band.name]
        dropped = []
        while len(members) > cap:
            _, member = members.pop_highest() if band.earliest else members.pop_lowest()
            dropped.append(member)
        return dropped

    def drop_before(self, band: Band, cut_ms: int) -> list[str]:
        """Drop the members stored at times before `cut_ms`; the ones dropped."""
        return [m for _, m in self.bands[band.name].remove_range(*band.scores(None, cut_ms - 1))]


# The bands a fact depends on (the phones' and IPs' bands only keep raw identifiers in Redis).
_KEPT_BANDS = tuple(b for b in spec.BANDS if b.name not in ("phones", "ips"))
_OUT, _IN = BAND["out"], BAND["in"]
_PAYEES_LAST, _PAYERS_LAST = BAND["payees_last"], BAND["payers_last"]
_PAYEES_FIRST, _PAYERS_FIRST = BAND["payees_first"], BAND["payers_first"]
_DEVICES = BAND["devices"]


@dataclass
class _Account:
    windows: Windows = field(default_factory=Windows)
    out_sum: int = 0
    # Hour buckets of amounts out and in (the 27 hours up to the newest one).
    out_amount: dict[int, int] = field(default_factory=dict)
    in_amount: dict[int, int] = field(default_factory=dict)
    # Event day of each side's last housekeeping (trims); it only moves forward.
    payer_housekeeping_day: int = -1
    payee_housekeeping_day: int = -1
    first_seen: int = UNKNOWN
    opened_at: int = UNKNOWN
    birth_year: int = UNKNOWN
    is_business: int = UNKNOWN
    # Transfer id -> the facts each side gave it, kept as Redis keeps them (spec.Side).
    payer_facts: dict[str, PayerFacts] = field(default_factory=dict)
    payee_facts: dict[str, PayeeFacts] = field(default_factory=dict)
    # Alert propagation: the marks of transfers that alerted and paid the account.
    marks: tuple[TaintMark, ...] = ()


@dataclass
class _Entity:
    accounts: SortedSet = field(default_factory=SortedSet)
    trimmed_week: int = -1
    # Transfer id -> (event minute, count), kept for the dedupe horizon as Redis keeps them.
    facts: dict[str, tuple[int, int]] = field(default_factory=dict)


def hour_sum(buckets: dict[int, int], ts_ms: int) -> int:
    """Sum of the clock hour of `ts_ms` and the 23 before it (the 24-hour amount window)."""
    hour = hour_of(ts_ms)
    return sum(amount for h, amount in buckets.items() if hour - 23 <= h <= hour)


def _bucket_add(buckets: dict[int, int], hour: int, amount: int) -> None:
    """Add to an hour bucket; keep only the hours a 24-hour sum of a recent event reads."""
    buckets[hour] = buckets.get(hour, 0) + amount
    newest = max(buckets)
    for old in [h for h in buckets if h < newest - (spec.BUCKET_HOURS - 1)]:
        del buckets[old]


def _newly(last: int | None, since_ms: int) -> int:
    """1 if a member last seen at `last` (or never) is not yet counted from `since_ms` on."""
    return 1 if last is None or last < since_ms else 0


def _first_time(first: int | None, ts_ms: int) -> int:
    """1 if a counterparty first seen at `first` counts as new at `ts_ms`: never seen, or
    seen only later (a late event)."""
    return int(first is None or first > ts_ms)


class MemoryStateStore:
    """State in process memory, with the same semantics as `RedisStateStore`."""

    def __init__(self, hasher: EntityHasher, limits: StateLimits | None = None) -> None:
        self._hasher = hasher
        self._limits = limits or StateLimits()
        self._accounts: dict[str, _Account] = {}
        self._entities: dict[str, _Entity] = {}
        self._observation = Observation()
        # Each transfer id's payer, payee, time, amount and currency (`claim_transfer_ids`).
        self._records: dict[str, tuple[str, str, int, int, str]] = {}

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

    def claim_transfer_ids(self, transfers: Sequence[Transfer]) -> list[bool]:
        """Keep each transfer under its id unless the id holds another transfer (True)."""
        taken = []
        for t in transfers:
            record = (t.src_account, t.dst_account, t.ts_ms, t.sent_minor, t.currency)
            taken.append(self._records.setdefault(t.transfer_id, record) != record)
        return taken

    def put_marks(self, marks: Sequence[tuple[str, TaintMark]]) -> None:
        """Mark each payee with a transfer that alerted and paid it (idempotent)."""
        for payee, mark in marks:
            account = self._account(payee)
            kept = keep_marks(account.marks, mark)
            if kept is not None:
                account.marks = kept

    def apply_transfers(self, transfers: Sequence[Transfer]) -> list[TransferFacts]:
        """Keep each transfer's record and apply it, in order; see `streams.state.base` for the
        semantics (ids another transfer holds are the batch processor's to refuse)."""
        self.claim_transfer_ids(transfers)
        return self._apply(transfers)

    def _apply(self, transfers: Sequence[Transfer]) -> list[TransferFacts]:
        observation = self._observation = self._observation.applied(t.ts_ms for t in transfers)
        return [self._transfer(t, observation.since(t.ts_ms), dry=False) for t in transfers]

    def prepare_transfers(self, transfers: Sequence[Transfer]) -> ImmediateTransfers:
        """The transfers, applied when sent (nothing here to wait for)."""
        return ImmediateTransfers(partial(self._apply, list(transfers)))

    def peek(self, transfers: Sequence[Transfer]) -> list[TransferFacts]:
        """The facts each transfer would get if applied now on its own, changing nothing."""
        observation = self._observation.applied(t.ts_ms for t in transfers)
        return [self._transfer(t, observation.since(t.ts_ms), dry=True) for t in transfers]

    def _transfer(self, transfer: Transfer, observed_since_ms: int, *, dry: bool) -> TransferFacts:
        spec.check_storable(transfer.ts_ms)
        device, phone, ip = self._hasher.entities_of(transfer)
        first = transfer.transfer_id not in self._account(transfer.src_account).payer_facts
        return TransferFacts(
            self._apply_payer(transfer, device, dry),
            self._apply_payee(transfer, dry),
            EntityFacts(
                self._apply_entity("device", device, transfer, dry),
                self._apply_entity("phone", phone, transfer, dry),
                self._apply_entity("ip", ip, transfer, dry),
            ),
            first,
            observed_since_ms,
            self._account(transfer.src_account).marks,
        )

    def _apply_payer(self, t: Transfer, device: str | None, dry: bool) -> PayerFacts:
        account = self._account(t.src_account)
        stored = account.payer_facts.get(t.transfer_id)
        if stored is not None:
            return stored
        ts, w = t.ts_ms, account.windows
        horizon = ts - spec.ACCOUNT_RETENTION_MS
        member = entry_member(t.transfer_id, t.dst_account, t.amount_minor)
        first_paid = w.at(_PAYEES_FIRST, t.dst_account)
        last_paid = w.at(_PAYEES_LAST, t.dst_account)
        # A replay past the dedupe horizon finds its entry already there and adds nothing.
        added = int(w.at(_OUT, member) is None)
        first_time = _first_time(first_paid, ts)
        device_last = None if device is None else w.at(_DEVICES, device)
        # Retained outgoing history, without the entries past retention not yet trimmed.
        expired = [split_member(m)[2] for _, m in w.bands["out"].range(
            *_OUT.scores(None, horizon - 1))]  # fmt: skip
        in_before = w.bands["in"].range(*_IN.scores(horizon, ts))
        facts = PayerFacts(
            out_n_1h=w.count(_OUT, ts - WINDOW_1H_MS, ts) + added,
            out_n_24h=w.count(_OUT, ts - WINDOW_24H_MS, ts) + added,
            payees_1h=w.count(_PAYEES_LAST, ts - WINDOW_1H_MS, None)
            + _newly(last_paid, ts - WINDOW_1H_MS),
            payees_24h=w.count(_PAYEES_LAST, ts - WINDOW_24H_MS, None)
            + _newly(last_paid, ts - WINDOW_24H_MS),
            new_payees_24h=w.count(_PAYEES_FIRST, ts - WINDOW_24H_MS, ts) + first_time,
            first_time_payee=first_time,
            out_amt_24h=hour_sum(account.out_amount, ts) + added * t.amount_minor,
            out_n_30d_prior=len(w.bands["out"]) - len(expired),
            out_amt_30d_prior=account.out_sum - sum(expired),
            in_n_24h=w.count(_IN, ts - WINDOW_24H_MS, ts),
            in_amt_24h=hour_sum(account.in_amount, ts),
            payers_24h=w.count(_PAYERS_LAST, ts - WINDOW_24H_MS, None),
            last_in_ts=_IN.ts(in_before[-1][0]) if in_before else UNKNOWN,
            first_seen_ts=ts if account.first_seen == UNKNOWN else min(account.first_seen, ts),
            opened_at=account.opened_at,
            birth_year=account.birth_year,
            is_business=account.is_business,
            devices_7d=w.count(_DEVICES, ts - WINDOW_7D_MS, None)
            + (0 if device is None else _newly(device_last, ts - WINDOW_7D_MS)),
            out_n_7d=w.count(_OUT, ts - WINDOW_7D_MS, ts) + added,
            in_n_7d=w.count(_IN, ts - WINDOW_7D_MS, ts),
            payers_7d=w.count(_PAYERS_LAST, ts - WINDOW_7D_MS, None),
        )
        if dry:
            return facts

        if added:
            w.put(_OUT, member, ts)
            account.out_sum += t.amount_minor
            _bucket_add(account.out_amount, hour_of(ts), t.amount_minor)
        if first_time:
            w.put(_PAYEES_FIRST, t.dst_account, ts)
        w.put(_PAYEES_LAST, t.dst_account, ts)
        if device is not None:
            w.put(_DEVICES, device, ts)
        dropped = self._trim(account, account.payer_facts, spec.PAYER_SIDE, ts)
        account.first_seen = facts.first_seen_ts
        if self._keeps(account, spec.PAYER_SIDE, added, t, dropped):
            account.payer_facts[t.transfer_id] = facts
        return facts

    def _apply_payee(self, t: Transfer, dry: bool) -> PayeeFacts:
        account = self._account(t.dst_account)
        stored = account.payee_facts.get(t.transfer_id)
        if stored is not None:
            return stored
        ts, w = t.ts_ms, account.windows
        member = entry_member(t.transfer_id, t.src_account, t.amount_minor)
        first_paid = w.at(_PAYERS_FIRST, t.src_account)
        last_paid = w.at(_PAYERS_LAST, t.src_account)
        added = int(w.at(_IN, member) is None)
        first_time = _first_time(first_paid, ts)
        facts = PayeeFacts(
            in_n_1h=w.count(_IN, ts - WINDOW_1H_MS, ts) + added,
            in_n_24h=w.count(_IN, ts - WINDOW_24H_MS, ts) + added,
            payers_1h=w.count(_PAYERS_LAST, ts - WINDOW_1H_MS, None)
            + _newly(last_paid, ts - WINDOW_1H_MS),
            payers_24h=w.count(_PAYERS_LAST, ts - WINDOW_24H_MS, None)
            + _newly(last_paid, ts - WINDOW_24H_MS),
            new_payers_24h=w.count(_PAYERS_FIRST, ts - WINDOW_24H_MS, ts) + first_time,
            in_amt_24h=hour_sum(account.in_amount, ts) + added * t.amount_minor,
            out_amt_24h=hour_sum(account.out_amount, ts),
            first_seen_ts=ts if account.first_seen == UNKNOWN else min(account.first_seen, ts),
            opened_at=account.opened_at,
            birth_year=account.birth_year,
            is_business=account.is_business,
            in_n_7d=w.count(_IN, ts - WINDOW_7D_MS, ts) + added,
            payers_7d=w.count(_PAYERS_LAST, ts - WINDOW_7D_MS, None)
            + _newly(last_paid, ts - WINDOW_7D_MS),
            new_payers_7d=w.count(_PAYERS_FIRST, ts - WINDOW_7D_MS, ts) + first_time,
        )
        if dry:
            return facts

        if added:
            w.put(_IN, member, ts)
            _bucket_add(account.in_amount, hour_of(ts), t.amount_minor)
        if first_time:
            w.put(_PAYERS_FIRST, t.src_account, ts)
        w.put(_PAYERS_LAST, t.src_account, ts)
        dropped = self._trim(account, account.payee_facts, spec.PAYEE_SIDE, ts)
        account.first_seen = facts.first_seen_ts
        if self._keeps(account, spec.PAYEE_SIDE, added, t, dropped):
            account.payee_facts[t.transfer_id] = facts
        return facts

    def _trim(
        self,
        account: _Account,
        facts: dict[str, PayerFacts] | dict[str, PayeeFacts],
        side: spec.Side,
        ts_ms: int,
    ) -> set[str]:
        """Cap the side's bands, then, on the side's first transfer of an event day, drop the
        facts of the entries the day took past the dedupe horizon and what the bands hold from
        before the retention horizon of the day's start. The ids whose facts went."""
        w, cap = account.windows, self._limits.window_cap
        gone: set[str] = set()
        kept = [band for band in side.bands if band.name in w.bands]
        for band in kept:
            dropped = w.cap(band, cap)
            self._dropped(account, band, dropped)
            if band is side.entries:
                gone.update(split_member(m)[0] for m in dropped)
        day = ts_ms // MS_PER_DAY
        previous = getattr(account, side.day_field)
        if day > previous:
            setattr(account, side.day_field, day)
            if previous >= 0:
                horizon = self._limits.dedupe_horizon_ms
                low, high = max(previous * MS_PER_DAY - horizon, 0), day * MS_PER_DAY - horizon
                if low < high:
                    entries = w.bands[side.entries.name].range(*side.entries.scores(low, high - 1))
                    gone.update(split_member(m)[0] for _, m in entries)
            cut = day * MS_PER_DAY - spec.ACCOUNT_RETENTION_MS
            for band in side.expiring:
                if band.name in w.bands:
                    self._dropped(account, band, w.drop_before(band, cut))
        for tid in gone:
            facts.pop(tid, None)
        return gone

    def _keeps(
        self, account: _Account, side: spec.Side, added: int, t: Transfer, gone: set[str]
    ) -> bool:
        """Whether the side keeps the facts it just gave `t`: its entry is new and stays, and
        its time is within the dedupe horizon of the side's housekeeping day."""
        day = getattr(account, side.day_field)
        floor = day * MS_PER_DAY - self._limits.dedupe_horizon_ms
        return bool(added) and t.transfer_id not in gone and t.ts_ms >= floor

    @staticmethod
    def _dropped(account: _Account, band: Band, members: list[str]) -> None:
        if band is _OUT:
            account.out_sum -= sum(split_member(m)[2] for m in members)

    def _apply_entity(self, kind: str, pseudonym: str | None, t: Transfer, dry: bool) -> int:
        if pseudonym is None:
            return UNKNOWN
        key = f"{kind}:{pseudonym}"
        entity = self._entities.get(key)
        if entity is None:
            entity = self._entities[key] = _Entity()
        stored = entity.facts.get(t.transfer_id)
        if stored is not None:
            return stored[1]
        ts = t.ts_ms
        since = ts - WINDOW_7D_MS
        accounts = entity.accounts
        count = accounts.count(since, spec.BAND_SPAN) + _newly(accounts.score(t.src_account), since)
        if dry:
            return count
        accounts.add_max(t.src_account, ts)
        entity.facts[t.transfer_id] = (ts // MS_PER_MINUTE, count)
        while len(accounts) > self._limits.window_cap:
            accounts.pop_lowest()
        week = spec.week_of(ts)
        new_week = week > entity.trimmed_week
        if new_week or ts % 64 == 0:
            oldest = (ts - self._limits.dedupe_horizon_ms) // MS_PER_MINUTE
            entity.facts = {tid: kept for tid, kept in entity.facts.items() if kept[0] >= oldest}
        if new_week:
            entity.trimmed_week = week
            accounts.remove_range(0, week * spec.MS_PER_WEEK - spec.ENTITY_RETENTION_MS - 1)
        return count
