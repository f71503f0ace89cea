"""The Redis state store and its in-memory twin return identical facts for the same input:
redeliveries, late events, shared devices, profiles, window caps and months of history; and a
dry run (screening) gives the facts that applying the transfer then gives."""

from __future__ import annotations

import random
from decimal import Decimal

import msgspec
import orjson
import pytest
import redis

from models.currency import ScoringRates
from models.events import AccountProfile, Transfer, parse_transfer
from models.features import MS_PER_DAY
from streams.state import keys, spec
from streams.state.base import EntityHasher, StateLimits
from streams.state.memory import MemoryStateStore
from streams.state.observation import Observation
from streams.state.redis_store import RedisStateStore, read_transfer_record
from streams.state.windows import applied_transfers

BASE_MS = 1772374503000
ACCOUNTS = [f"A{i}" for i in range(40)] + ["pipe|in|name", "ünïcode"]


def traffic(seed: int, count: int, max_gap_ms: int) -> tuple[list[Transfer], list[AccountProfile]]:
    rng = random.Random(seed)
    ts = BASE_MS
    events: list[Transfer] = []
    for i in range(count):
        ts += rng.randint(0, max_gap_ms)
        late = rng.randint(0, 600_000) if rng.random() < 0.1 else 0
        src, dst = rng.sample(ACCOUNTS, 2)
        amount = rng.randint(1, 10**7)
        events.append(
            Transfer(
                transfer_id=f"t{i}",
                ts="-",
                ts_ms=ts - late,
                utc_offset_min=480,
                src_account=src,
                dst_account=dst,
                amount=Decimal(amount) / 100,
                amount_minor=amount,
                currency="CNY",
                device_id=rng.choice([None, "d1", "d2", "d3"]),
                phone=rng.choice([None, "p1", "p2"]),
                ip=rng.choice([None, "198.51.100.4"]),
            )
        )
        if rng.random() < 0.05:
            events.append(rng.choice(events))  # a redelivery
    profiles = [
        AccountProfile(
            account_id=a,
            opened_at_ms=BASE_MS - 86_400_000 * rng.randint(1, 900),
            holder_birth_year=rng.randint(1940, 2008),
            kind=rng.choice(["personal", "business"]),
        )
        for a in ACCOUNTS[:20]
    ]
    return events, profiles


@pytest.mark.parametrize(
    ("max_gap_ms", "cap"),
    [(600_000, 50), (7_200_000, 50), (60_000, 1000)],
    ids=["days-small-cap", "months-small-cap", "hours-default-cap"],
)
def test_redis_and_memory_stores_agree(
    redis_client: redis.Redis, max_gap_ms: int, cap: int
) -> None:
    events, profiles = traffic(seed=max_gap_ms, count=2500, max_gap_ms=max_gap_ms)
    hasher, limits = EntityHasher("parity"), StateLimits(window_cap=cap)
    in_redis = RedisStateStore(redis_client, hasher, limits)
    in_memory = MemoryStateStore(hasher, limits)
    in_redis.apply_profiles(profiles)
    in_memory.apply_profiles(profiles)
    for start in range(0, len(events), 97):
        batch = events[start : start + 97]
        # Screening's dry run agrees across stores and with what applying then gives.
        peeked = in_redis.peek(batch[:2])
        assert peeked == in_memory.peek(batch[:2]), start
        applied = in_redis.apply_transfers(batch)
        assert applied == in_memory.apply_transfers(batch), start
        assert applied[0][:3] == peeked[0][:3], start
    # Both keep the same transfers' facts for redeliveries (the rest went past the horizon).
    assert _kept_facts(redis_client) == _twin_kept_facts(in_memory)
    assert applied_transfers(redis_client) == sum(
        len(account.windows.bands["out"]) for account in in_memory._accounts.values()
    )


def _kept_facts(client: redis.Redis) -> set[tuple[str, str]]:
    kept: set[tuple[str, str]] = set()
    for key in client.scan_iter(match=keys.account_keys("*")["meta"]):
        names: list[bytes] = client.hkeys(key)  # type: ignore[assignment]
        for name in names:
            if name[:1] in (b">", b"<"):
                kept.add((key.decode(), name.decode()))
    return kept


def _twin_kept_facts(store: MemoryStateStore) -> set[tuple[str, str]]:
    kept: set[tuple[str, str]] = set()
    for account_id, account in store._accounts.items():
        meta = keys.account_keys(account_id)["meta"]
        kept.update((meta, spec.PAYER_SIDE.facts_field(t)) for t in account.payer_facts)
        kept.update((meta, spec.PAYEE_SIDE.facts_field(t)) for t in account.payee_facts)
    return kept


def test_sent_batches_read_later_and_a_lost_script_cache_change_nothing(
    redis_client: redis.Redis,
) -> None:
    """The worker's path: a batch is sent, other Redis work happens, then its facts are read;
    after a SCRIPT FLUSH mid-stream (what a Redis restart leaves) the sent batch reloads the
    scripts and goes through, with exactly the facts an undisturbed store gives."""
    events, profiles = traffic(seed=11, count=600, max_gap_ms=600_000)
    hasher = EntityHasher("parity")
    in_redis = RedisStateStore(redis_client, hasher)
    in_memory = MemoryStateStore(hasher)
    in_redis.apply_profiles(profiles)
    in_memory.apply_profiles(profiles)
    batches = [events[start : start + 150] for start in range(0, len(events), 150)]

    # Encoded ahead without I/O, as the worker does while the batch before is still applied.
    prepared = [in_redis.prepare_transfers(batch) for batch in batches[:2]]
    sent = prepared[0].send()
    assert redis_client.ping()  # the pool serves other commands meanwhile
    assert sent.facts() == in_memory.apply_transfers(batches[0])
    with pytest.raises(RuntimeError, match="already read"):
        sent.facts()

    redis_client.script_flush()
    assert prepared[1].send().facts() == in_memory.apply_transfers(batches[1])
    assert redis_client.ping()  # the refused batch's unread replies were dropped with its link
    redis_client.script_flush()
    for batch in batches[2:]:
        assert in_redis.apply_transfers(batch) == in_memory.apply_transfers(batch)


def test_observation_begins_at_the_first_transfers_applied_in_both_stores(
    redis_client: redis.Redis,
) -> None:
    events, _ = traffic(seed=3, count=300, max_gap_ms=600_000)
    hasher = EntityHasher("parity")
    in_redis = RedisStateStore(redis_client, hasher)
    stores: list[RedisStateStore | MemoryStateStore] = [in_redis, MemoryStateStore(hasher)]
    # Before anything is applied, a dry run takes the observation as applying would leave it.
    peeked = events[5:8]
    for store in stores:
        since = {f.observed_since_ms for f in store.peek(peeked)}
        assert since == {min(t.ts_ms for t in peeked)}
    late_first = events[1:]  # an earlier event (events[0]) arrives after observation began
    start = min(t.ts_ms for t in late_first[:100])
    assert events[0].ts_ms < start
    for store in stores:
        facts = store.apply_transfers(late_first[:100])
        facts += store.apply_transfers([events[0], *late_first[100:]])
        # What came before observation began counts as not observed (its own time).
        expected = [start] * 100 + [events[0].ts_ms] + [start] * (len(late_first) - 100)
        assert [f.observed_since_ms for f in facts] == expected
        assert {f.observed_since_ms for f in store.peek(late_first[:2])} == {start}
    assert in_redis.observation().current_start == start


def test_observation_begins_again_after_a_silence_longer_than_every_window_in_both_stores(
    redis_client: redis.Redis,
) -> None:
    """One stray event years old as the installation's first: the stream after it begins
    observation again (before, every account looked observed for years, and first-time
    payees and new accounts counted as known). Cut anywhere, or applied again after a crash,
    every transfer gets the same beginning."""
    events, _ = traffic(seed=4, count=200, max_gap_ms=600_000)
    stream_start = min(t.ts_ms for t in events)
    stray = msgspec.structs.replace(events[0], transfer_id="stray",
                                   ts_ms=stream_start - 5 * 365 * MS_PER_DAY)
    hasher = EntityHasher("parity")
    in_redis = RedisStateStore(redis_client, hasher)
    stores: list[RedisStateStore | MemoryStateStore] = [in_redis, MemoryStateStore(hasher)]
    expected = [stray.ts_ms] + [stream_start] * len(events)
    for store in stores:
        facts = store.apply_transfers([stray, *events[:50]])
        facts += store.apply_transfers(events[50:])
        assert [f.observed_since_ms for f in facts] == expected
        again = store.apply_transfers([stray, *events[:50]])  # a redelivery
        assert [f.observed_since_ms for f in again] == expected[:51]
    in_one, in_two = MemoryStateStore(hasher), MemoryStateStore(hasher)
    in_two.apply_transfers([stray])
    assert [f.observed_since_ms for f in in_one.apply_transfers([stray, *events])] == expected
    assert [f.observed_since_ms for f in in_two.apply_transfers(events)] == expected[1:]
    latest = max(t.ts_ms for t in events)
    assert in_redis.observation() == Observation((stray.ts_ms, stream_start), latest)
    stored = redis_client.get(keys.OBSERVED_SINCE_KEY)
    assert stored == f"{latest},{stray.ts_ms},{stream_start}".encode()


def test_an_observation_recorded_before_restarts_existed_goes_on(redis_client: redis.Redis) -> None:
    """A start stored alone (the layout before restarts) is kept: with no latest time known,
    no silence can be measured, so the first batch after an upgrade does not begin again."""
    events, _ = traffic(seed=5, count=50, max_gap_ms=600_000)
    legacy = min(t.ts_ms for t in events) - 400 * MS_PER_DAY
    redis_client.set(keys.OBSERVED_SINCE_KEY, str(legacy))
    store = RedisStateStore(redis_client, EntityHasher("parity"))
    assert {f.observed_since_ms for f in store.apply_transfers(events)} == {legacy}
    assert store.observation() == Observation((legacy,), max(t.ts_ms for t in events))


def test_a_transfer_is_known_by_what_was_sent_whatever_the_rates_in_both_stores(
    redis_client: redis.Redis,
) -> None:
    """A transfer's record keeps its amount and currency as sent: delivered again after the
    rates changed (a restart with other FRAUDWATCH_CURRENCY_RATES), it is the same transfer,
    not another under a reused id; its scoring amount is what changed."""
    raw = orjson.dumps({"transfer_id": "fx-1", "ts": "2026-03-01T10:00:00+08:00",
                        "src_account": "A1", "dst_account": "A2", "amount": "700.00",
                        "currency": "USD"})  # fmt: skip
    before = parse_transfer(raw)
    after = parse_transfer(raw, ScoringRates.with_overrides("USD=7.12"))
    assert before.amount_minor != after.amount_minor
    hasher = EntityHasher("parity")
    for store in (RedisStateStore(redis_client, hasher), MemoryStateStore(hasher)):
        assert store.claim_transfer_ids([before]) == [False]
        assert store.claim_transfer_ids([after]) == [False]
        other = msgspec.structs.replace(after, amount=Decimal("701.00"))
        assert store.claim_transfer_ids([other]) == [True]
    record = read_transfer_record(redis_client, "fx-1")
    assert record is not None and (record.amount_minor, record.currency) == (70_000, "USD")
