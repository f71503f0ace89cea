"""What `fraudwatch up` runs on: each configured service (checked first), and an embedded one
only for what is not configured, said plainly."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import redis
import redis.cluster

from service.embedded import EmbeddedServices, free_port
from service.embedded.process import ManagedProcess, spawn
from service.embedded.redis_cluster import wait_cluster_ready
from service.settings import Settings
from service.stack_runtime import (
    RESTARTS_PER_MINUTE,
    StackRefused,
    Supervised,
    hold_home,
    provide_services,
)


def test_a_configured_redis_is_used_and_only_the_broker_embedded(
    services: EmbeddedServices, tmp_path: Path
) -> None:
    provided = provide_services(Settings(redis_url=services.redis_url), tmp_path)
    try:
        assert provided.redis_url == services.redis_url
        assert provided.redis_source == "configured (FRAUDWATCH_REDIS_URL)"
        assert provided.kafka_source.startswith("embedded Tansu broker")
        assert [p.proc.name for p in provided.processes] == ["tansu"]
        assert provided.kafka_bootstrap != services.kafka_bootstrap
    finally:
        provided.stop()
    assert not provided.processes[0].proc.alive()


def test_a_configured_broker_is_used_and_only_redis_embedded(
    services: EmbeddedServices, tmp_path: Path
) -> None:
    provided = provide_services(Settings(kafka_bootstrap=services.kafka_bootstrap), tmp_path)
    try:
        assert provided.kafka_source == "configured (FRAUDWATCH_KAFKA_BOOTSTRAP)"
        assert provided.redis_source.startswith("embedded redis-server")
        assert redis.Redis.from_url(provided.redis_url).ping()
    finally:
        provided.stop()


def test_an_embedded_redis_that_dies_is_started_again_with_its_data(
    services: EmbeddedServices, tmp_path: Path
) -> None:
    """`up` keeps the embedded Redis's data in an append-only file and starts it again on its
    port when it dies: state and alerts survive a crash of Redis and a restart of the stack."""
    provided = provide_services(Settings(kafka_bootstrap=services.kafka_bootstrap), tmp_path)
    try:
        [part] = provided.processes
        client = redis.Redis.from_url(provided.redis_url)
        client.set("fw:acknowledged", "kept")
        os.kill(part.proc.pid, signal.SIGKILL)
        part.proc.popen.wait(timeout=10)
        assert part.check()
        assert part.proc.alive()
        assert client.get("fw:acknowledged") == b"kept"
    finally:
        provided.stop()


def test_a_cluster_asked_for_without_an_address_is_embedded(
    services: EmbeddedServices, tmp_path: Path
) -> None:
    settings = Settings(kafka_bootstrap=services.kafka_bootstrap, redis_cluster=True)
    provided = provide_services(settings, tmp_path)
    try:
        assert provided.redis_cluster and provided.redis_source.startswith(
            "embedded Redis Cluster (3 primaries"
        )
        cluster = redis.cluster.RedisCluster.from_url(provided.redis_url)
        assert len(cluster.get_primaries()) == 3
        # Each node is supervised and durable: one that dies comes back with its slots and data.
        cluster.set("fw:acknowledged", "kept")
        port = cluster.get_node_from_key("fw:acknowledged").port
        [part] = [p for p in provided.processes if p.proc.port == port]
        os.kill(part.proc.pid, signal.SIGKILL)
        part.proc.popen.wait(timeout=10)
        assert part.check()
        assert part.proc.alive()
        wait_cluster_ready([p.proc.port or 0 for p in provided.processes], 0)
        assert cluster.get("fw:acknowledged") == b"kept"
        cluster.close()
    finally:
        provided.stop()
    assert not any(p.proc.alive() for p in provided.processes)


def test_a_configured_redis_that_does_not_answer_is_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", kafka_bootstrap="x:1")
    with pytest.raises(StackRefused, match="FRAUDWATCH_REDIS_URL names does not answer"):
        provide_services(settings, tmp_path)


def test_a_single_redis_named_as_a_cluster_is_refused_with_a_hint(
    services: EmbeddedServices, tmp_path: Path
) -> None:
    settings = Settings(redis_url=services.redis_url, redis_cluster=True, kafka_bootstrap="x:1")
    with pytest.raises(StackRefused, match="unset FRAUDWATCH_REDIS_CLUSTER for a single Redis"):
        provide_services(settings, tmp_path)


def test_one_stack_per_home(tmp_path: Path) -> None:
    """A second `up` on a home would append to the first's Redis file and take its run file
    and metrics: refused, naming the holder; the home is free once the first stops."""
    held = hold_home(tmp_path)
    with pytest.raises(StackRefused, match=f"pid {os.getpid()}"):
        hold_home(tmp_path)
    os.close(held)
    os.close(hold_home(tmp_path))


def test_a_part_that_exits_five_times_within_a_minute_stops_the_stack(tmp_path: Path) -> None:
    def start() -> ManagedProcess:
        return spawn("crashing", ["sh", "-c", "exit 3"], tmp_path / "crashing.log")

    part = Supervised(start(), start)
    for exit_number in range(1, RESTARTS_PER_MINUTE + 1):
        part.proc.popen.wait(timeout=10)
        assert part.check() is (exit_number < RESTARTS_PER_MINUTE), exit_number
    part.proc.stop()



def test_a_redis_holding_an_earlier_state_layout_is_refused_before_anything_starts(
    services: EmbeddedServices, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """After an upgrade that changed the state layout, `up` says what to do instead of
    starting a worker that would refuse the state again and again."""
    from service.stack_runtime import start_stack

    redis_client.hset("fw:{a:6222020000000001}:meta", "opened_at_ms", "1")  # layout 1
    settings = Settings(home=tmp_path, redis_url=services.redis_url,
                        kafka_bootstrap=services.kafka_bootstrap)  # fmt: skip
    with pytest.raises(StackRefused, match="Upgrading fraudwatch"), start_stack(settings):
        pytest.fail("the stack started")
    # (and its home, which holds the AOF's personal data, is its user's alone)
    assert tmp_path.stat().st_mode & 0o777 == 0o700
