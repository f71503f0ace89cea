"""One real Tansu broker and one real redis-server per test session; fresh names per test.

Every test gets its own uuid-suffixed topics and consumer group, and an emptied Redis, so tests
never see each other's data while sharing the (quick but not free) service start-up.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import SecretStr

from service.embedded import EmbeddedServices, embedded_services
from service.embedded.redis_cluster import LocalCluster, start_redis_cluster
from service.settings import Settings
from streams.topics import ensure_topics

INTEGRATION_DIR = Path(__file__).resolve().parent
TEST_API_KEY = "test-admin-key"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration as `integration` (select with -m)."""
    for item in items:
        if INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class TopicSet:
    """Unique topic names for one test, already created on the session broker."""

    transfers: str
    accounts: str
    alerts: str
    dlq: str
    partitions: int

    @property
    def names(self) -> list[str]:
        """All four names, in the order of `Settings.topics`."""
        return [self.transfers, self.accounts, self.alerts, self.dlq]


TopicFactory = Callable[..., TopicSet]
SettingsFactory = Callable[..., Settings]
TopicReader = Callable[..., list[ConsumerRecord]]


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServices]:
    """The session's broker and Redis, on free ports; logs under the session's tmp dir."""
    with embedded_services(tmp_path_factory.mktemp("services")) as running:
        yield running


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real Redis Cluster for the session: 3 primaries, each with a replica, formed once
    (a few seconds) and shared by the cluster tests, which empty it first."""
    cluster = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"), 3, 1)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_client(redis_cluster: LocalCluster) -> Iterator[redis.cluster.RedisCluster]:
    """A cluster client on the session cluster, emptied before the test (every primary)."""
    client = redis.cluster.RedisCluster.from_url(redis_cluster.url)
    client.flushall(target_nodes=redis.cluster.RedisCluster.PRIMARIES)
    yield client
    client.close()


@pytest.fixture
def redis_client(services: EmbeddedServices) -> Iterator[redis.Redis]:
    """A client on the session Redis, emptied before the test (tests in a session run serially)."""
    client = redis.Redis.from_url(services.redis_url)
    client.flushdb()
    yield client
    client.close()


def make_topic_set(bootstrap: str, partitions: int = 1) -> TopicSet:
    """A fresh, uniquely named topic set, created on the broker."""
    suffix = uuid.uuid4().hex[:10]
    topic_set = TopicSet(
        transfers=f"transfers-{suffix}",
        accounts=f"accounts-{suffix}",
        alerts=f"alerts-{suffix}",
        dlq=f"transfers.dlq-{suffix}",
        partitions=partitions,
    )
    ensure_topics(bootstrap, topic_set.names, partitions)
    return topic_set


@pytest.fixture
def make_topics(services: EmbeddedServices) -> TopicFactory:
    """Creates a fresh, uniquely named topic set: `make_topics(partitions=3)`."""

    def make(partitions: int = 1) -> TopicSet:
        return make_topic_set(services.kafka_bootstrap, partitions)

    return make


@pytest.fixture
def topics(make_topics: TopicFactory) -> TopicSet:
    """A fresh single-partition topic set."""
    return make_topics()


def settings_of(
    services: EmbeddedServices, topic_set: TopicSet, home: Path, **overrides: Any
) -> Settings:
    """`Settings` for the session services and a topic set; keyword args override."""
    values: dict[str, Any] = {
        "home": home,
        "kafka_bootstrap": services.kafka_bootstrap,
        "redis_url": services.redis_url,
        "partitions": topic_set.partitions,
        "topic_transfers": topic_set.transfers,
        "topic_accounts": topic_set.accounts,
        "topic_alerts": topic_set.alerts,
        "topic_dlq": topic_set.dlq,
        "consumer_group": f"fw-test-{uuid.uuid4().hex[:10]}",
        # Tansu holds a rebalance open this long; small keeps group joins quick.
        "max_poll_interval_ms": 3000,
        "session_timeout_ms": 6000,
        "batch_wait_ms": 20,
        "api_keys": SecretStr(TEST_API_KEY),
        # Workers under test do not purge on their own (test_retention.py tests the purge):
        # its lock key would sit in the state dumps that tests compare.
        "purge_interval_minutes": 0,
        # Port 0: parallel sessions must not fight over a fixed metrics port.
        "worker_metrics_port": 0,
        "api_port": 0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_for(services: EmbeddedServices, tmp_path: Path) -> SettingsFactory:
    """Builds `Settings` for the session services and a topic set; keyword args override."""

    def build(topic_set: TopicSet, **overrides: Any) -> Settings:
        return settings_of(services, topic_set, tmp_path / "fraudwatch-home", **overrides)

    return build


@pytest.fixture
def read_topic(services: EmbeddedServices) -> TopicReader:
    """Reads a topic from the start: `read_topic(name, count=None, timeout_s=10.0)`.

    Without `count`, returns everything up to the high watermark; with it, waits until at least
    `count` records have arrived (or the timeout passes) and returns what it has.
    """

    def read(topic: str, count: int | None = None, timeout_s: float = 10.0) -> list[ConsumerRecord]:
        consumer = KafkaConsumer(
            bootstrap_servers=services.kafka_bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        try:
            return _read_all(consumer, topic, count, time.monotonic() + timeout_s)
        finally:
            consumer.close()

    return read


def _read_all(
    consumer: KafkaConsumer, topic: str, count: int | None, deadline: float
) -> list[ConsumerRecord]:
    known = consumer.partitions_for_topic(topic)
    if not known:
        raise LookupError(f"topic {topic!r} does not exist on the broker")
    partitions = [TopicPartition(topic, p) for p in sorted(known)]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    records: list[ConsumerRecord] = []
    while time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=100).values():
            records.extend(batch)
        if count is not None:
            if len(records) >= count:
                break
        # Tansu's ListOffsets under-reports; the fetch high watermark after a poll is exact.
        elif all(_caught_up(consumer, tp) for tp in partitions):
            break
    return sorted(records, key=lambda r: (r.partition, r.offset))


def _caught_up(consumer: KafkaConsumer, tp: TopicPartition) -> bool:
    highwater = consumer.highwater(tp)
    return highwater is not None and consumer.position(tp) >= highwater
