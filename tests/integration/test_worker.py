"""The streaming worker end to end on the session's real broker and Redis."""

from __future__ import annotations

import json
import signal
from datetime import timedelta
from pathlib import Path

import orjson
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from models.events import InvalidEvent, parse_transfer
from service import wiring
from service.app import create_app
from streams.state.alert_store import ALL_INDEX
from tests.integration.conftest import TEST_API_KEY, SettingsFactory, TopicReader, TopicSet
from tests.integration.harness import (
    committed,
    comparable,
    lines,
    produce,
    redis_dump,
    scored,
    start_worker_process,
    wait_for,
    worker_thread,
)
from tests.traffic import (
    T0,
    background,
    fan_out_ring,
    merchant,
    payroll,
    profiles_for_negatives,
)

AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}


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
    headers = [("traceparent", b"00-4bf92f3577b34da6-00f067aa0ba902b7-01")]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    producer.send(topics.transfers, b"[]", key=b"ACME/7", headers=headers).get(timeout=10)
    producer.close()
    with worker_thread(settings):
        wait_for(lambda: committed(settings, topics.transfers) == len(values) + 1, what="commit")
    assert scored(redis_client) == len(good)
    records = read_topic(topics.dlq, count=5)
    dead = [orjson.loads(r.value) for r in records]
    by_code = {d["reason_code"]: d for d in dead}
    assert set(by_code) == {
        "malformed_json", "missing_field", "bad_amount", "bad_timestamp", "not_an_object",
    }  # fmt: skip
    # Each dead letter keeps its message's key and headers.
    keyed = {orjson.loads(r.value)["reason_code"]: r for r in records}
    assert keyed["not_an_object"].key == b"ACME/7"
    assert keyed["not_an_object"].headers == headers
    assert keyed["bad_amount"].key == good[0]["src_account"].encode()
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
        before = comparable(redis_dump(redis_client))
        alerts_before = redis_client.zcard(ALL_INDEX)
        produce(settings.kafka_bootstrap, topics.transfers, ring[-3:] + ring[:2])
        wait_for(lambda: committed(settings, topics.transfers) == len(ring) + 5, what="replay")
    assert alerts_before > 0
    assert redis_client.zcard(ALL_INDEX) == alerts_before
    assert comparable(redis_dump(redis_client)) == before


def test_sigterm_finishes_the_batch_and_exits_zero(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory, tmp_path: Path
) -> None:
    settings = settings_for(topics)
    values = lines(background(seed=3, count=300))
    produce(settings.kafka_bootstrap, topics.transfers, values)
    proc = start_worker_process(settings, tmp_path / "worker.log")
    try:
        # A worker process starts in seconds; on a machine busy with other work, in more.
        wait_for(lambda: scored(redis_client) > 0, timeout_s=120, what="first batch")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        # A worker left running would write into the next test's Redis.
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = committed(settings, topics.transfers)
    assert 0 < done <= len(values)
    assert scored(redis_client) == done


def test_a_transfer_that_will_be_dead_lettered_does_not_hold_its_partition_back(
    topics: TopicSet, settings_for: SettingsFactory
) -> None:
    """The event-time merge places a transfer by its time; one that will be dead-lettered goes
    first, like a profile, whatever time it carries: a valid time a day ahead on a message
    with a bad amount would otherwise hold every later transfer of its partition back. It is
    decoded once, there, and the batch dead-letters it with the same reason."""
    settings = settings_for(topics)
    worker = wiring.build_worker(settings)
    try:
        good = fan_out_ring("merge")[0]
        ahead = good | {"transfer_id": "bad-amount", "amount": "12.345",
                        "ts": (T0 + timedelta(days=1)).isoformat()}  # fmt: skip

        def record(event: dict, offset: int) -> ConsumerRecord:
            value = json.dumps(event).encode()
            return ConsumerRecord(settings.topic_transfers, 0, -1, offset, 0, 0, None, value,
                                  [], None, -1, len(value), -1)  # fmt: skip

        bad, ok = record(ahead, 7), record(good, 8)
        assert worker._event_time(bad) is None
        assert worker._event_time(ok) == parse_transfer(ok.value).ts_ms
        [message, following] = worker._messages([bad, ok])
        assert isinstance(message.parsed, InvalidEvent) and following.parsed is not None
        prepared = worker.processor.prepare_state([message, following])
        assert [r.code for r in prepared.rejected] == ["bad_amount"]
        assert [t.transfer_id for t in prepared.transfers] == [good["transfer_id"]]
    finally:
        worker.consumer.close()
        worker.producer.close()
