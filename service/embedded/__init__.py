"""The embedded default: a Tansu broker and a redis-server as child processes on loopback.

`embedded_services(workdir)` starts both on free ports (or the given ones), waits until each
really answers, and stops both on the way out, even when interrupted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from service.embedded.broker import start_broker
from service.embedded.process import (
    ManagedProcess,
    ServiceStartError,
    exit_on_termination_signals,
    free_port,
    spawn,
    stop_all,
)
from service.embedded.redis_server import start_redis

__all__ = [
    "EmbeddedServices",
    "ManagedProcess",
    "ServiceStartError",
    "embedded_services",
    "exit_on_termination_signals",
    "free_port",
    "spawn",
    "start_embedded",
    "stop_all",
]


@dataclass(frozen=True)
class EmbeddedServices:
    """A running broker and Redis, with the addresses clients need."""

    workdir: Path
    broker: ManagedProcess
    redis: ManagedProcess

    @property
    def kafka_bootstrap(self) -> str:
        """Bootstrap address for Kafka clients, `127.0.0.1:PORT`."""
        return f"127.0.0.1:{self.broker.port}"

    @property
    def redis_url(self) -> str:
        """URL for redis-py, `redis://127.0.0.1:PORT/0`."""
        return f"redis://127.0.0.1:{self.redis.port}/0"

    @property
    def processes(self) -> tuple[ManagedProcess, ...]:
        """The child processes, in start order."""
        return (self.broker, self.redis)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop both services (Redis first, the broker last); safe to call twice."""
        for proc in reversed(self.processes):
            proc.stop(timeout_s)


def start_embedded(
    workdir: Path, *, kafka_port: int | None = None, redis_port: int | None = None
) -> EmbeddedServices:
    """Start the broker and Redis, logging to `workdir/tansu.log` and `workdir/redis.log`.

    The caller owns the result and must `stop()` it; prefer `embedded_services`.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    broker = start_broker(workdir, kafka_port)
    try:
        redis = start_redis(workdir, redis_port)
    except BaseException:
        broker.stop()
        raise
    return EmbeddedServices(workdir=workdir, broker=broker, redis=redis)


@contextlib.contextmanager
def embedded_services(
    workdir: Path, *, kafka_port: int | None = None, redis_port: int | None = None
) -> Iterator[EmbeddedServices]:
    """Run the broker and Redis for the duration of the `with` block."""
    with exit_on_termination_signals():
        services = start_embedded(workdir, kafka_port=kafka_port, redis_port=redis_port)
        try:
            yield services
        finally:
            services.stop()
