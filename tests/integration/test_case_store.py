"""The Redis case store groups alerts exactly as the in-memory one does, however the alerts
are batched, and two writers grouping at once end as one would."""

from __future__ import annotations

import random
import threading
from decimal import Decimal
from typing import Any

from models.alerts import Alert, Reason
from streams.state.case_memory import MemoryCases
from streams.state.case_store import (
    CASES_ALL,
    RedisCases,
    case_accounts_key,
    case_alerts_key,
    case_index,
    case_key,
    decode_record,
)

T0 = 1_772_413_200_000


def alert(n: int, suspect: str, other: str, minutes: int, status: str = "open") -> Alert:
    payer_suspected = n % 2 == 0
    src, dst = (suspect, other) if payer_suspected else (other, suspect)
    return Alert(
        alert_id=f"al_{n:024x}", transfer_id=f"t{n}", ts="x", src_account=src, dst_account=dst,
        amount=f"{Decimal(100 + n):.2f}", currency="CNY", score=0.7,
        severity=("low", "medium", "high", "critical")[n % 4],
        reasons=[Reason(rule="r", title="r", evidence={})], model=None, status=status,
        created_at="x", ts_ms=T0 + minutes * 60_000, suspect_account=suspect,
    )  # fmt: skip


def traffic(seed: int, count: int = 300) -> list[Alert]:
    """Rings of mules passing money on, a hub many of them pay, and lone suspects."""
    rnd = random.Random(seed)
    alerts = []
    for n in range(count):
        minute = n * rnd.randint(1, 40)
        ring = rnd.randrange(12)
        if rnd.random() < 0.1:
            alerts.append(alert(n, f"r{ring}-m{rnd.randrange(4)}", "atm-1", minute))
        elif rnd.random() < 0.7:
            a, b = rnd.sample(range(5), 2)
            alerts.append(alert(n, f"r{ring}-m{a}", f"r{ring}-m{b}", minute))
        else:
            alerts.append(alert(n, f"lone-{rnd.randrange(60)}", f"victim-{n}", minute))
    return sorted(alerts, key=lambda a: a.ts_ms)


def redis_cases(client: Any) -> dict[str, tuple]:
    """Every live case as stored: summary, alerts, accounts."""
    cases = {}
    for raw in client.zrange(CASES_ALL, 0, -1):
        case_id = raw.decode()
        record = decode_record(case_id, client.hgetall(case_key(case_id)))
        assert record is not None
        alerts = {a.decode() for a in client.zrange(case_alerts_key(case_id), 0, -1)}
        accounts = {k.decode(): v == b"1" for k, v in
                    client.hgetall(case_accounts_key(case_id)).items()}  # fmt: skip
        cases[case_id] = (record.alerts, record.amounts, record.suspects, record.severity,
                          record.first_ts_ms, record.last_ts_ms, alerts, accounts)  # fmt: skip
    return cases


def memory_cases(alerts: list[Alert]) -> dict[str, tuple]:
    memory = MemoryCases()
    memory.assign(alerts)
    return {
        r.case_id: (r.alerts, r.amounts, r.suspects, r.severity, r.first_ts_ms, r.last_ts_ms,
                    set(memory.case_alerts[r.case_id]), memory.case_accounts[r.case_id])
        for r in memory.open_cases()
    }  # fmt: skip


def test_redis_groups_as_memory_does_however_the_alerts_are_batched(
    redis_client,
) -> None:
    alerts = traffic(seed=3)
    expected = memory_cases(alerts)
    assert 5 < len(expected) < len(alerts) / 2  # rings merged, lone suspects alone
    for batch in (1, 17, 500):
        redis_client.flushdb()
        store = RedisCases(redis_client)
        cased: dict[str, str] = {}
        for start in range(0, len(alerts), batch):
            cased.update(store.assign(alerts[start : start + batch]))
        assert redis_cases(redis_client) == expected, batch
        # Every alert names its case as it finally stands.
        assert store.case_ids(a.alert_id for a in alerts) == {
            a: c for c, parts in expected.items() for a in parts[6]
        }
        # Again: nothing changes.
        store.assign(alerts)
        assert redis_cases(redis_client) == expected


def test_indexes_hold_every_live_case_by_priority(redis_client) -> None:
    alerts = traffic(seed=5, count=120)
    RedisCases(redis_client).assign(alerts)
    live = redis_cases(redis_client)
    assert {m.decode() for m in redis_client.zrange(case_index("status", "open"), 0, -1)} == set(
        live
    )
    for case_id, score in redis_client.zrange(CASES_ALL, 0, -1, withscores=True):
        record = decode_record(case_id.decode(), redis_client.hgetall(case_key(case_id.decode())))
        assert record is not None and record.priority == score
        assert redis_client.zscore(case_index("severity", record.severity), case_id) == score
        for account in record.suspects:
            assert redis_client.zscore(case_index("account", account), case_id) is not None


def test_two_writers_at_once_never_interleave_half_a_grouping(redis_client) -> None:
    alerts = traffic(seed=9, count=200)
    # Two writers take chunks in turn and write at once: each chunk is grouped on what the
    # other wrote (or again, when it wrote meanwhile), so nothing is lost or counted twice.
    first, second = RedisCases(redis_client), RedisCases(redis_client)
    chunks = [alerts[i : i + 5] for i in range(0, len(alerts), 5)]
    lock = threading.Lock()
    order = iter(chunks)

    def run(store: RedisCases) -> None:
        while True:
            with lock:
                chunk = next(order, None)
            if chunk is None:
                return
            store.assign(chunk)

    workers = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    grouped = redis_cases(redis_client)
    assert sum(parts[0] for parts in grouped.values()) == len(alerts)
    members = [a for parts in grouped.values() for a in parts[6]]
    assert sorted(members) == sorted(a.alert_id for a in alerts)
    assert first.conflicts + second.conflicts >= 0  # counted; how many depends on timing
