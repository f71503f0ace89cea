"""Kafka clients configured for the worker: manual commits, bounded polls, acked produces."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition

from streams import metrics


class ForgetRevokedLag(ConsumerRebalanceListener):  # type: ignore[misc]
    """Drops the lag gauge of partitions this worker gave up, so no stale value lingers."""

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        """Called by the consumer before a rebalance takes partitions away."""
        for tp in revoked:
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition))

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        """Nothing to do: lag is reported after each poll."""


def worker_consumer(
    bootstrap: str,
    topics: Sequence[str],
    group: str,
    *,
    batch_size: int,
    max_poll_interval_ms: int,
    session_timeout_ms: int,
) -> KafkaConsumer:
    """A group consumer that never commits on its own; the worker commits after each batch."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=f"{group}-worker",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch_size,
        max_poll_interval_ms=max_poll_interval_ms,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(100, session_timeout_ms // 3),
        # A short broker-side wait keeps latency low when traffic is light.
        fetch_max_wait_ms=20,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    consumer.subscribe(list(topics), listener=ForgetRevokedLag())
    return consumer


def acked_producer(bootstrap: str, client_id: str = "fraudwatch") -> KafkaProducer:
    """A producer whose sends are acknowledged by all in-sync replicas before `flush` returns."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        linger_ms=5,
        batch_size=256 * 1024,
        retries=5,
    )
