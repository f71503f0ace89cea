"""The streaming worker end to end on the session's real broker and Redis."""

from __future__ import annotations

import json
import signal
from functools import partial
from pathlib import Path

import orjson
import redis
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from service.app import create_app
from streams.state.alert_store import ALL_INDEX
from tests.integration.conftest import TEST_API_KEY, SettingsFactory, TopicReader, TopicSet
from tests.integration.harness import (
    committed,
    produce,
    redis_dump,
    start_worker_process,
    wait_for,
    worker_thread,
)
from tests.traffic import (
    background,
    fan_out_ring,
    merchant,
    payroll,
    profiles_for_negatives,
)

AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}


def lines(events: list[dict]) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]


def scored(client: redis.Redis) -> int:
    """Transfers whose payer side has been applied."""
    return sum(1 for _ in client.scan_iter(match="fw:{a:*}:pf:*", count=1000))


def scored_at_least(client: redis.Redis, count: int) -> bool:
    """Whether at least `count` transfers have their state applied."""
    return scored(client) >= count


def test_fan_out_ring_alert_is_served_by_the_api(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory
) -> None:
    settings = settings_for(topics)
    ring = fan_out_ring()
    produce(settings.kafka_bootstrap, topics.transfers, lines(ring))
    with worker_thread(settings), TestClient(create_app(settings)) as api:
        wait_for(lambda: committed(settings, topics.transfers) == len(ring), what="commit")
        page = api.get("/v1/alerts", params={"rule": "fan_out_rapid"}, headers=AUTH).json()
    flagged = {alert["transfer_id"] for alert in page["items"]}
    assert "ring-out-11" in flagged
    alert = next(a for a in page["items"] if a["transfer_id"] == "ring-out-11")
    assert alert["src_account"] == "ring-mule"
    assert alert["amount"] == "9900.00"
    assert alert["status"] == "open"
    # The shipped model scores it too: its verdict and its reason sit beside the rule's.
    assert alert["model"]["score"] > 0.5
    by_rule = {reason["rule"]: reason for reason in alert["reasons"]}
    assert set(by_rule) == {"fan_out_rapid", "model"}
    assert by_rule["fan_out_rapid"]["evidence"]["src_distinct_payees_1h"] == 12


def test_payroll_and_merchant_do_not_alert(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory
) -> None:
    settings = settings_for(topics)
    produce(settings.kafka_bootstrap, topics.accounts, lines(profiles_for_negatives()),
            key_field="account_id")  # fmt: skip
    negatives = payroll() + merchant()
    with worker_thread(settings):
        wait_for(lambda: committed(settings, topics.accounts) == 2, what="profiles")
        produce(settings.kafka_bootstrap, topics.transfers, lines(negatives))
        wait_for(lambda: committed(settings, topics.transfers) == len(negatives), what="commit")
    assert scored(redis_client) == len(negatives)
    assert redis_client.zcard(ALL_INDEX) == 0


def test_bad_events_go_to_the_dead_letter_topic_with_reasons(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory,
    read_topic: TopicReader,
) -> None:  # fmt: skip
    settings = settings_for(topics)
    good = background(seed=1, count=6)
    bad: list[bytes | str] = [
        b'{"transfer_id": "broken", "amount": ',
        json.dumps({k: v for k, v in good[0].items() if k != "amount"} | {"transfer_id": "nf"}),
        json.dumps(good[0] | {"transfer_id": "neg", "amount": "-20.00"}),
        json.dumps(good[0] | {"transfer_id": "badts", "ts": "2026-13-45 25:61"}),
    ]
    broken = [b if isinstance(b, bytes) else b.encode() for b in bad]
    values = [lines(good)[0], broken[0], lines(good)[1], broken[1], lines(good)[2], broken[2]]
    values += [broken[3], *lines(good[3:])]
    produce(settings.kafka_bootstrap, topics.transfers, values)
    with worker_thread(settings):
        wait_for(lambda: committed(settings, topics.transfers) == len(values), what="commit")
    assert scored(redis_client) == len(good)
    dead = [orjson.loads(r.value) for r in read_topic(topics.dlq, count=4)]
    by_code = {d["reason_code"]: d for d in dead}
    assert set(by_code) == {"malformed_json", "missing_field", "bad_amount", "bad_timestamp"}
    assert by_code["malformed_json"]["original_text"] == '{"transfer_id": "broken", "amount": '
    assert "amount" in by_code["missing_field"]["reason"]
    assert "greater than 0" in by_code["bad_amount"]["reason"]
    assert by_code["bad_timestamp"]["offset"] == 6
    assert all(d["topic"] == topics.transfers and d["partition"] == 0 for d in dead)


def test_redelivered_transfer_changes_nothing(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory,
    read_topic: TopicReader,
) -> None:  # fmt: skip
    settings = settings_for(topics)
    ring = lines(fan_out_ring())
    produce(settings.kafka_bootstrap, topics.transfers, ring)
    with worker_thread(settings):
        wait_for(lambda: committed(settings, topics.transfers) == len(ring), what="first pass")
        before = redis_dump(redis_client)
        alerts_before = redis_client.zcard(ALL_INDEX)
        produce(settings.kafka_bootstrap, topics.transfers, ring[-3:] + ring[:2])
        wait_for(lambda: committed(settings, topics.transfers) == len(ring) + 5, what="replay")
    assert alerts_before > 0
    assert redis_client.zcard(ALL_INDEX) == alerts_before
    assert redis_dump(redis_client) == before


def _comparable(dump: dict[bytes, object]) -> dict[bytes, object]:
    """Alert bodies without their processing time; everything else as is."""
    out = {}
    for key, value in dump.items():
        if key.startswith(b"fw:{al}:a:") and isinstance(value, bytes):
            body = orjson.loads(value)
            body.pop("created_at")
            out[key] = body
        else:
            out[key] = value
    return out


def _uninterrupted_run(
    services, make_topics, settings_for: SettingsFactory, values: list[bytes]
) -> dict[bytes, object]:
    """Redis after one worker ran over `values` undisturbed (in database 1), comparable."""
    reference_url = services.redis_url.rsplit("/", 1)[0] + "/1"
    reference_db = redis.Redis.from_url(reference_url)
    reference_db.flushdb()
    topics = make_topics()
    settings = settings_for(topics, batch_size=40, redis_url=reference_url)
    produce(settings.kafka_bootstrap, topics.transfers, values)
    with worker_thread(settings):
        wait_for(lambda: committed(settings, topics.transfers) == len(values),
                 timeout_s=120, what="uninterrupted run")  # fmt: skip
    return _comparable(redis_dump(reference_db))


def test_worker_killed_mid_stream_ends_like_an_uninterrupted_run(
    services, redis_client, make_topics, settings_for: SettingsFactory, tmp_path: Path
) -> None:
    events = background(seed=7, count=1500)
    for n, ring in enumerate([fan_out_ring(f"r{n}") for n in range(4)]):
        events[200 + 300 * n : 200 + 300 * n] = ring
    values = lines(events)
    expected = _uninterrupted_run(services, make_topics, settings_for, values)

    killed_topics = make_topics()
    killed = settings_for(killed_topics, batch_size=40)
    produce(killed.kafka_bootstrap, killed_topics.transfers, values)
    log = tmp_path / "worker.log"
    kills = 0
    for progress in (150, 600, 1100):
        proc = start_worker_process(killed, log)
        wait_for(partial(scored_at_least, redis_client, progress), timeout_s=120,
                 what=f"progress to {progress}")  # fmt: skip
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    proc = start_worker_process(killed, log)
    try:
        wait_for(lambda: committed(killed, killed_topics.transfers) == len(values),
                 timeout_s=120, what="run after kills")  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert kills == 3
    actual = _comparable(redis_dump(redis_client))
    assert actual.keys() == expected.keys()
    assert actual == expected
    assert redis_client.zcard(ALL_INDEX) >= 4


def _redis_errors() -> float:
    return REGISTRY.get_sample_value("fraudwatch_redis_errors_total") or 0.0


def test_redis_refusing_writes_mid_stream_ends_like_an_uninterrupted_run(
    services, redis_client, make_topics, settings_for: SettingsFactory
) -> None:
    """Batches whose state scripts fail (Redis out of memory, refusing writes) are retried
    until Redis recovers; nothing is lost, applied twice or scored on other state."""
    events = background(seed=5, count=600)
    events[300:300] = fan_out_ring("oom")
    values = lines(events)
    expected = _uninterrupted_run(services, make_topics, settings_for, values)

    refused_topics = make_topics()
    refused = settings_for(refused_topics, batch_size=40)
    errors_before = _redis_errors()
    with worker_thread(refused):
        produce(refused.kafka_bootstrap, refused_topics.transfers, values[:200])
        wait_for(partial(scored_at_least, redis_client, 200), what="first 200")
        redis_client.config_set("maxmemory", 1)
        try:
            produce(refused.kafka_bootstrap, refused_topics.transfers, values[200:])
            wait_for(lambda: _redis_errors() >= errors_before + 2, what="failed batches")
            assert committed(refused, refused_topics.transfers) < len(values)
        finally:
            redis_client.config_set("maxmemory", 0)
        wait_for(lambda: committed(refused, refused_topics.transfers) == len(values),
                 timeout_s=120, what="run after Redis recovered")  # fmt: skip
    actual = _comparable(redis_dump(redis_client))
    assert actual.keys() == expected.keys()
    assert actual == expected
    assert redis_client.zcard(ALL_INDEX) >= 1


def test_sigterm_finishes_the_batch_and_exits_zero(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory, tmp_path: Path
) -> None:
    settings = settings_for(topics)
    values = lines(background(seed=3, count=300))
    produce(settings.kafka_bootstrap, topics.transfers, values)
    proc = start_worker_process(settings, tmp_path / "worker.log")
    wait_for(lambda: scored(redis_client) > 0, what="first batch")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    done = committed(settings, topics.transfers)
    assert 0 < done <= len(values)
    assert scored(redis_client) == done
