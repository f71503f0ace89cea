"""Where the benchmark runs: the embedded broker and Redis, or external ones, and fresh names.

External services are named by FRAUDWATCH_KAFKA_BOOTSTRAP and FRAUDWATCH_REDIS_URL. There the
benchmark uses uniquely named topics (deleted afterwards) and a dedicated Redis database that
must be empty (unless `--force`), because the benchmark empties it between phases.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from loadtest.progress import say
from service.embedded import EmbeddedServices, embedded_services
from service.settings import Settings
from service.wiring import redis_password
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
    created_topics: list[str] = field(default_factory=list)

    def redis(self) -> redis.Redis:
        """A client on the benchmark's Redis database."""
        return redis.Redis.from_url(
            self.redis_url, password=redis_password(self.base_settings), socket_timeout=60
        )

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
        """Empty the benchmark's own database (checked empty, or `--force`d, at the start)."""
        client = self.redis()
        try:
            client.flushdb()
        finally:
            client.close()

    def server_pid(self, name: str) -> int | None:
        """The pid of the embedded `tansu` or `redis-server`, when we started them."""
        if self.embedded is None:
            return None
        return {"tansu": self.embedded.broker.pid, "redis": self.embedded.redis.pid}.get(name)


def with_db(url: str, db: int) -> str:
    """The Redis URL pointing at database `db` instead of whatever it named."""
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "db"])
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", query, parts.fragment))


def _claim_database(url: str, password: str | None, force: bool) -> None:
    client = redis.Redis.from_url(url, password=password, socket_timeout=10)
    try:
        keys = client.dbsize()
        if keys and not force:
            raise LoadtestError(
                f"Redis database {url} holds {keys} keys; the benchmark empties its database, "
                "so pick an empty one with --redis-db, or pass --force to wipe this one"
            )
        if keys:
            client.flushdb()
    except redis.RedisError as error:
        raise LoadtestError(f"cannot use Redis at {url}: {error}") from error
    finally:
        client.close()


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
def open_target(workdir: Path, redis_db: int, force: bool) -> Iterator[Target]:
    """Start the embedded services, or claim the external ones; clean up on the way out."""
    base = Settings()
    external = bool(base.kafka_bootstrap or base.redis_url)
    if external and not (base.kafka_bootstrap and base.redis_url):
        raise LoadtestError(
            "set both FRAUDWATCH_KAFKA_BOOTSTRAP and FRAUDWATCH_REDIS_URL, or neither "
            "(then an embedded broker and Redis are started)"
        )
    if external:
        assert base.kafka_bootstrap is not None and base.redis_url is not None
        url = with_db(base.redis_url, redis_db)
        _claim_database(url, redis_password(base), force)
        say(f"external services: Kafka {base.kafka_bootstrap}, Redis {url}")
        target = Target(base.kafka_bootstrap, url, base, workdir, None)
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
