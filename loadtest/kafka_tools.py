"""Kafka helpers: produce with per-partition counts, group progress, topic reads."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.producer.future import RecordMetadata

from streams.kafka_io import acked_producer


@dataclass
class Produced:
    """How many messages went to each partition (their true high watermarks on a fresh topic)."""

    topic: str
    per_partition: dict[int, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All messages produced."""
        return sum(self.per_partition.values())


class PartitionCounter:
    """Send-side bookkeeping: the acked high watermark of each partition, and any failure."""

    def __init__(self, topic: str) -> None:
        self.produced = Produced(topic)
        self.failures: list[BaseException] = []

    def on_ack(self, metadata: RecordMetadata) -> None:
        """Callback for a delivered record."""
        current = self.produced.per_partition.get(metadata.partition, 0)
        self.produced.per_partition[metadata.partition] = max(current, metadata.offset + 1)

    def send(self, producer: KafkaProducer, key: bytes, value: bytes) -> None:
        """Send one record to the counter's topic, tracking its delivery."""
        future = producer.send(self.produced.topic, key=key, value=value)
        future.add_callback(self.on_ack)
        future.add_errback(self.failures.append)

    def raise_failures(self) -> None:
        """Raise the first delivery failure, if any (call after a flush)."""
        if self.failures:
            raise self.failures[0]


def produce_all(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> Produced:
    """Send (key, value) records with the service's acked producer; flush; return the counts."""
    producer = acked_producer(bootstrap, client_id="fraudwatch-loadtest")
    counter = PartitionCounter(topic)
    try:
        for key, value in records:
            counter.send(producer, key, value)
        producer.flush()
    finally:
        producer.close()
    counter.raise_failures()
    return counter.produced


def committed_total(admin: KafkaAdminClient, group: str, produced: Produced) -> int | None:
    """Messages of `produced` the group has committed (capped at what was produced).

    None when the broker cannot answer yet (e.g. the group's coordinator is still loading).
    """
    partitions = [TopicPartition(produced.topic, p) for p in produced.per_partition]
    try:
        offsets = admin.list_group_offsets({group: partitions}).get(group, {})
    except KafkaError:
        return None
    total = 0
    for tp in partitions:
        committed = offsets.get(tp)
        if committed is not None and committed.offset > 0:
            total += min(committed.offset, produced.per_partition[tp.partition])
    return total


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[ConsumerRecord]:
    """Every record of `topic` up to its high watermark, read without a consumer group."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=100).values():
                records.extend(batch)
            # Tansu's ListOffsets under-reports; the fetch high watermark after a poll is exact.
            if all(_caught_up(consumer, tp) for tp in partitions):
                return records
        raise TimeoutError(f"reading topic {topic!r} did not finish in {timeout_s:.0f} s")
    finally:
        consumer.close()


def _caught_up(consumer: KafkaConsumer, tp: TopicPartition) -> bool:
    highwater = consumer.highwater(tp)
    return highwater is not None and consumer.position(tp) >= highwater
