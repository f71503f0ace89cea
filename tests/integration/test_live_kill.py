"""A worker SIGKILLed while live traffic flows costs no alert.

The killed worker stays a member of the group, holding its partitions, until its session
expires. Live transfers go on arriving on them meanwhile, and on the survivor's. Here money
arrives at a mule on the killed worker's partition after the kill, and the mule pays it on
from the survivor's partition a moment later: the survivor must not score the payouts before
the arrivals, or the pass-through it shows is never seen (`streams/event_time_merge.py`, the
members' heads). A replacement worker is started after the kill, as a supervisor would.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import redis
from kafka import KafkaProducer

from service import wiring
from service.settings import Settings
from streams.batch import BatchProcessor, MemoryAlertSink, Message
from streams.state.base import EntityHasher
from streams.state.memory import MemoryStateStore
from tests.integration.conftest import SettingsFactory, TopicFactory
from tests.integration.harness import (
    committed_total,
    redis_dump,
    start_worker_process_as_configured,
    wait_for,
    worker_thread,
)
from tests.traffic import event

_ALERT_BODY = b"fw:{al}:a:"


def _now() -> datetime:
    return datetime.now(UTC)


def _backtest(settings: Settings, values: list[bytes]) -> set[str]:
    """The transfer ids the same input raises alerts on, read in the order it was sent."""
    sink = MemoryAlertSink()
    processor = BatchProcessor(
        MemoryStateStore(EntityHasher("live-kill")), sink, wiring.build_scorer(settings)
    )
    processor.process([Message("transfer", settings.topic_transfers, 0, n, v)
                       for n, v in enumerate(values)])  # fmt: skip
    return {alert.transfer_id for alert in sink.alerts.values()}


def _alerted(client: redis.Redis) -> set[str]:
    return {
        orjson.loads(value)["transfer_id"]
        for key, value in redis_dump(client).items()
        if key.startswith(_ALERT_BODY) and isinstance(value, bytes)
    }


def test_a_worker_killed_in_live_traffic_costs_no_alert(
    redis_client: redis.Redis, make_topics: TopicFactory, settings_for: SettingsFactory,
    tmp_path: Path,
) -> None:  # fmt: skip
    topics = make_topics(partitions=3)
    settings = settings_for(topics, model_path="")  # rules alone: what they see is the point
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=2)
    sent: list[bytes] = []

    def send(partition: int, transfer: dict[str, object]) -> None:
        value = orjson.dumps(transfer)
        producer.send(topics.transfers, value=value, partition=partition,
                      key=str(transfer["src_account"]).encode())  # fmt: skip
        producer.flush()
        sent.append(value)

    def all_committed() -> bool:
        return committed_total(settings, topics.transfers, 3) == len(sent)

    with worker_thread(settings) as survivor:
        victim = start_worker_process_as_configured(settings, tmp_path / "victim.log")
        replacement = None
        try:

            def shared() -> bool:
                owned = {tp.partition for tp in survivor.consumer.assignment()
                         if tp.topic == topics.transfers}  # fmt: skip
                return 0 < len(owned) < 3

            wait_for(shared, timeout_s=60, what="the two workers sharing the partitions")
            mine = sorted(tp.partition for tp in survivor.consumer.assignment()
                          if tp.topic == topics.transfers)  # fmt: skip
            theirs = sorted({0, 1, 2} - set(mine))
            # Everyday payments on every partition, each worker scoring its own.
            for n in range(30):
                send(n % 3, event(f"day-{n}", f"payer-{n}", f"shop-{n % 4}", _now(), "35.00"))
            wait_for(all_committed, timeout_s=60, what="the everyday payments scored")
            time.sleep(0.5)  # both have said where their partitions stand since

            victim.send_signal(signal.SIGKILL)
            victim.wait()
            time.sleep(3.0)  # the survivor reads on; the victim is silent
            for n in range(4):  # money arrives at the mule, on the dead worker's partition
                send(theirs[0], event(f"in-{n}", f"victim-{n}", "mule", _now(), "3000.00"))
            time.sleep(1.5)
            for n in range(3):  # and leaves from the survivor's partition
                send(mine[0], event(f"out-{n}", "mule", f"cash-{n}", _now(), "3500.00"))
            time.sleep(2.0)
            replacement = start_worker_process_as_configured(settings, tmp_path / "replacement.log")
            wait_for(all_committed, timeout_s=120, what="every transfer scored")
        finally:
            for proc in (victim, replacement):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=30)
            producer.close()

    expected = _backtest(settings, sent)
    assert {"out-0", "out-1", "out-2"} & expected, "the payouts raise no alert even in order"
    assert _alerted(redis_client) == expected
