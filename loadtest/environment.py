"""Where the benchmark runs: the embedded broker and Redis (or a local Redis Cluster of N
primaries with `--redis-cluster N`), or external ones, and fresh names.

External services are named by FRAUDWATCH_KAFKA_BOOTSTRAP and FRAUDWATCH_REDIS_URL (with
FRAUDWATCH_REDIS_CLUSTER for a cluster). There the benchmark uses uniquely named topics (deleted
afterwards) and a dedicated Redis database that must be empty (unless `--force`), because the
benchmark empties it between phases; a cluster has database 0 only, so all of it must be.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.cluster
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from redis import Redis as RedisServer

from loadtest.progress import say
from service.embedded import EmbeddedServices, embedded_services
from service.embedded.broker import start_broker
from service.embedded.redis_cluster import LocalCluster, start_redis_cluster
from service.settings import Settings
from service.wiring import redis_client, redis_password
from streams.state.pipelines import AnyRedis
from streams.topics import ensure_topics


class LoadtestError(RuntimeError):
    """The benchmark cannot go on; the message says why."""


@dataclass(frozen=True)
class Topics:
    """One phase's uniquely named topic set."""

    transfers: str
    accounts: str
    alerts: str
    dlq: str

    @property
    def names(self) -> list[str]:
        """All four names."""
        return [self.transfers, self.accounts, self.alerts, self.dlq]


@dataclass
class Target:
    """The broker and Redis database the benchmark drives, plus the base settings."""

    kafka_bootstrap: str
    redis_url: str
    base_settings: Settings
    workdir: Path
    embedded: EmbeddedServices | None
    cluster: LocalCluster | None = None
    broker_pid: int | None = None
    created_topics: list[str] = field(default_factory=list)

    @property
    def redis_cluster(self) -> bool:
        """Whether Redis is a cluster (local or external)."""
        return self.base_settings.redis_cluster

    def redis(self) -> AnyRedis:
        """A client on the benchmark's Redis database (a cluster client on a cluster)."""
        if self.redis_cluster:
            return redis_client(self.base_settings.model_copy(update={"redis_url": self.redis_url}))
        return redis.Redis.from_url(
            self.redis_url, password=redis_password(self.base_settings), socket_timeout=60
        )

    def redis_nodes(self) -> list[RedisServer]:
        """A client on each primary: INFO and key counts are per node."""
        client = self.redis()
        if not isinstance(client, redis.cluster.RedisCluster):
            return [client]
        try:
            password = redis_password(self.base_settings)
            return [redis.Redis(host=node.host, port=node.port, password=password,
                                socket_timeout=60) for node in client.get_primaries()]  # fmt: skip
        finally:
            client.close()

    def fresh_topics(self, tag: str, partitions: int) -> Topics:
        """Create a uniquely named topic set with `partitions` partitions each."""
        suffix = f"lt{tag}-{uuid.uuid4().hex[:8]}"
        topics = Topics(
            transfers=f"transfers-{suffix}",
            accounts=f"accounts-{suffix}",
            alerts=f"alerts-{suffix}",
            dlq=f"transfers.dlq-{suffix}",
        )
        ensure_topics(self.kafka_bootstrap, topics.names, partitions)
        self.created_topics.extend(topics.names)
        return topics

    def reset_redis(self) -> None:
        """Empty the benchmark's own database (checked empty, or `--force`d, at the start);
        on a cluster, every primary."""
        for client in self.redis_nodes():
            try:
                client.flushdb()
            finally:
                client.close()

    def server_pids(self) -> dict[str, int]:
        """The pids of the services we started: `tansu`, and `redis` or, on a local cluster,
        `redis:<port>` per primary."""
        pids = {}
        if self.embedded is not None:
            pids = {"tansu": self.embedded.broker.pid, "redis": self.embedded.redis.pid}
        if self.broker_pid is not None:
            pids["tansu"] = self.broker_pid
        if self.cluster is not None:
            for port in self.cluster.primaries():
                pids[f"redis:{port}"] = self.cluster.node(port).pid
        return pids


def with_db(url: str, db: int) -> str:
    """The Redis URL pointing at database `db` instead of whatever it named."""
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "db"])
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", query, parts.fragment))


def _claim_database(target: Target, force: bool) -> None:
    try:
        keys = sum(int(node.dbsize()) for node in target.redis_nodes())
        if keys and not force:
            raise LoadtestError(
                f"Redis {target.redis_url} holds {keys} keys; the benchmark empties its "
                "database, so pick an empty one with --redis-db (one Redis), or pass --force to "
                "wipe this one"
            )
        if keys:
            target.reset_redis()
    except redis.RedisError as error:
        raise LoadtestError(f"cannot use Redis at {target.redis_url}: {error}") from error


def _delete_topics(bootstrap: str, names: list[str]) -> None:
    if not names:
        return
    with contextlib.suppress(KafkaError, OSError):
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fraudwatch-loadtest")
        try:
            admin.delete_topics(names, timeout_ms=10_000)
        finally:
            admin.close()


@contextlib.contextmanager
def open_target(
    workdir: Path, redis_db: int, force: bool, cluster_primaries: int | None = None
) -> Iterator[Target]:
    """Start the embedded services (a local cluster of `cluster_primaries` for Redis when
    given), or claim the external ones; clean up on the way out."""
    base = Settings()
    external = bool(base.kafka_bootstrap or base.redis_url)
    if external and not (base.kafka_bootstrap and base.redis_url):
        raise LoadtestError(
            "set both FRAUDWATCH_KAFKA_BOOTSTRAP and FRAUDWATCH_REDIS_URL, or neither "
            "(then an embedded broker and Redis are started)"
        )
    if external and cluster_primaries:
        raise LoadtestError(
            "--redis-cluster starts a local cluster: unset FRAUDWATCH_KAFKA_BOOTSTRAP and "
            "FRAUDWATCH_REDIS_URL (or name an external cluster with FRAUDWATCH_REDIS_CLUSTER)"
        )
    if cluster_primaries:
        with _local_cluster(workdir, base, cluster_primaries) as target:
            yield target
        return
    if external:
        assert base.kafka_bootstrap is not None and base.redis_url is not None
        url = base.redis_url if base.redis_cluster else with_db(base.redis_url, redis_db)
        target = Target(base.kafka_bootstrap, url, base, workdir, None)
        _claim_database(target, force)
        say(f"external services: Kafka {base.kafka_bootstrap}, Redis {url}")
        try:
            yield target
        finally:
            _delete_topics(target.kafka_bootstrap, target.created_topics)
            with contextlib.suppress(redis.RedisError):
                target.reset_redis()
        return
    say("starting the embedded Tansu broker and redis-server")
    with embedded_services(workdir / "services") as services:
        url = with_db(services.redis_url, redis_db)
        say(f"embedded services: Kafka {services.kafka_bootstrap}, Redis {url}")
        yield Target(services.kafka_bootstrap, url, base, workdir, services)


@contextlib.contextmanager
def _local_cluster(workdir: Path, base: Settings, primaries: int) -> Iterator[Target]:
    """The embedded broker and a local Redis Cluster of `primaries` (no replicas: the
    benchmark measures the primaries' work)."""
    say(f"starting the embedded Tansu broker and a {primaries}-primary Redis Cluster")
    broker = start_broker(workdir / "services")
    try:
        cluster = start_redis_cluster(workdir / "redis-cluster", primaries, 0)
    except BaseException:
        broker.stop()
        raise
    try:
        kafka = f"127.0.0.1:{broker.port}"
        say(f"embedded services: Kafka {kafka}, Redis Cluster {cluster.url}")
        settings = base.model_copy(update={"redis_cluster": True})
        yield Target(kafka, cluster.url, settings, workdir, None, cluster, broker.pid)
    finally:
        cluster.stop()
        broker.stop()
