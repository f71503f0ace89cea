"""Running a real worker in tests: in a thread, or as a process that can be SIGKILLed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import orjson
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from service import wiring
from service.embedded import EmbeddedServices
from service.settings import Settings
from streams.state import spec
from streams.state.partition_claims import KEY_PREFIX
from streams.state.pipelines import AnyRedis
from streams.state.windows import applied_transfers
from streams.worker import Worker
from tests.integration.conftest import SettingsFactory, TopicFactory
from tests.traffic import background, fan_out_ring

CLAIMS_PREFIX = KEY_PREFIX.encode()


def lines(events: list[dict[str, object]]) -> list[bytes]:
    """Events as the JSON message values a producer sends."""
    return [json.dumps(e).encode() for e in events]


def scored(client: AnyRedis) -> int:
    """Transfers whose payer side has been applied."""
    return applied_transfers(client)


def scored_at_least(client: AnyRedis, count: int) -> bool:
    """Whether at least `count` transfers have their state applied."""
    return scored(client) >= count


_CHAIN_FIELD = spec.META_FIELDS["chain"].encode()
_CHAIN_MEMBER = spec.ENTITY_CHAIN.encode()


def without_chain_link(key: bytes, value: object) -> object:
    """A dumped key's value without the chain link of the batch call that last wrote it
    (`spec.chain_link`: ordering bookkeeping that differs between runs, not state)."""
    if key.startswith(b"fw:{a:") and key.endswith(b"}:m") and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != _CHAIN_FIELD}
    if key.startswith(b"fw:{e:") and key.endswith(b"}:w") and isinstance(value, list):
        return [(m, s) for m, s in value if m != _CHAIN_MEMBER]
    return value


def comparable(dump: dict[bytes, object]) -> dict[bytes, object]:
    """A `redis_dump` with alert bodies without their processing time and state without the
    chain links, and without the group's partition claims (named after the group); the rest
    as is."""
    out: dict[bytes, object] = {}
    for key, value in dump.items():
        if key.startswith(CLAIMS_PREFIX):
            continue
        if key.startswith(b"fw:{al}:a:") and isinstance(value, bytes):
            body = orjson.loads(value)
            body.pop("created_at")
            out[key] = body
        else:
            out[key] = without_chain_link(key, value)
    return out


def produce(
    bootstrap: str | None, topic: str, values: list[bytes], key_field: str = "src_account"
) -> None:
    """Send raw values in order to partition 0's leader, keyed like `fraudwatch produce`
    (`bootstrap` straight from a test's settings, where it is always set)."""
    from streams.produce import produce_lines

    assert bootstrap is not None, "the test's settings name no broker"
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    try:
        produce_lines(values, topic, key_field=key_field, producer=producer)
    finally:
        producer.close()


@contextlib.contextmanager
def worker_thread(settings: Settings, worker: Worker | None = None) -> Iterator[Worker]:
    """A worker (built from `settings` unless given) running in a background thread until
    the block ends."""
    worker = worker or wiring.build_worker(settings)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "worker did not stop"


def wait_for(condition: Callable[[], bool], timeout_s: float = 45.0, what: str = "") -> None:
    """Poll until `condition()` holds; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")


def committed_total(settings: Settings, topic: str, partitions: int) -> int:
    """The group's committed offsets summed over a topic's partitions."""
    return sum(committed(settings, topic, p) for p in range(partitions))


def committed(settings: Settings, topic: str, partition: int = 0) -> int:
    """The group's committed offset on a partition (0 when nothing is committed)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
    )
    try:
        return consumer.committed(TopicPartition(topic, partition)) or 0
    finally:
        consumer.close()


def worker_env(settings: Settings) -> dict[str, str]:
    """Environment that makes `fraudwatch worker` use these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDWATCH_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"FRAUDWATCH_{name.upper()}"] = str(value)
    return env


def start_worker_process(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """`fraudwatch worker` as a child process, logging to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker"],
            env=worker_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def kill_at_progress(
    settings: Settings, log: Path, client: AnyRedis, progress: tuple[int, ...]
) -> None:
    """Start a worker process and SIGKILL it once it has scored at least each count of
    `progress` in turn (a new process each time): killed mid-stream, at any instant."""
    for count in progress:
        proc = start_worker_process(settings, log)
        wait_for(partial(scored_at_least, client, count), timeout_s=120,
                 what=f"progress to {count}")  # fmt: skip
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def run_after_kills(
    settings: Settings, log: Path, client: AnyRedis, progress: tuple[int, ...], total: int
) -> None:
    """`kill_at_progress`, then one more worker process until all `total` messages of the
    transfers topic are committed, stopped by SIGTERM (and exiting 0)."""
    kill_at_progress(settings, log, client, progress)
    topic, partitions = settings.topic_transfers, settings.partitions
    proc = start_worker_process(settings, log)
    try:
        wait_for(lambda: committed_total(settings, topic, partitions) == total, timeout_s=120,
                 what="run after kills")  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def redis_dump(client: AnyRedis) -> dict[bytes, object]:
    """Every key's type and content (TTLs aside), for comparing whole states."""
    dump: dict[bytes, object] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            dump[key] = client.get(key)
        elif kind == b"zset":
            dump[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"hash":
            dump[key] = client.hgetall(key)
        elif kind == b"set":
            dump[key] = sorted(client.smembers(key))
        elif kind == b"list":
            dump[key] = client.lrange(key, 0, -1)
        else:
            dump[key] = kind
    return dump


def start_worker_process_as_configured(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """Like `start_worker_process`, but a setting that is None reaches the child as empty
    rather than falling back to its default (e.g. `model_path=None`: no model there either)."""
    env = worker_env(settings)
    for name, value in settings.model_dump().items():
        if value is None:
            env[f"FRAUDWATCH_{name.upper()}"] = ""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def redis_dump_pipelined(client: AnyRedis, chunk: int = 2000) -> dict[bytes, object]:
    """What `redis_dump` returns, read in pipelined chunks (two round trips per chunk rather
    than two per key): for dumps of tens of thousands of keys."""
    readers = {
        b"string": lambda p, k: p.get(k),
        b"zset": lambda p, k: p.zrange(k, 0, -1, withscores=True),
        b"hash": lambda p, k: p.hgetall(k),
        b"set": lambda p, k: p.smembers(k),
        b"list": lambda p, k: p.lrange(k, 0, -1),
    }
    keys = list(client.scan_iter(count=1000))
    dump: dict[bytes, object] = {}
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        pipe = client.pipeline(transaction=False)
        for key in part:
            pipe.type(key)
        kinds = pipe.execute()
        for key, kind in zip(part, kinds, strict=True):
            readers.get(kind, lambda p, _k: p.echo(b""))(pipe, key)
        for key, kind, value in zip(part, kinds, pipe.execute(), strict=True):
            if kind == b"set":
                value = sorted(value)
            dump[key] = value if kind in readers else kind
    return dump


def uninterrupted_run(
    services: EmbeddedServices,
    make_topics: TopicFactory,
    settings_for: SettingsFactory,
    values: list[bytes],
    partitions: int = 1,
) -> dict[bytes, object]:
    """Redis after one worker ran over `values` on `partitions` partitions undisturbed (in
    database 1), comparable."""
    reference_url = services.redis_url.rsplit("/", 1)[0] + "/1"
    reference_db = redis.Redis.from_url(reference_url)
    reference_db.flushdb()
    topics = make_topics(partitions)
    settings = settings_for(topics, batch_size=40, redis_url=reference_url)
    produce(settings.kafka_bootstrap, topics.transfers, values)
    with worker_thread(settings):
        wait_for(lambda: committed_total(settings, topics.transfers, partitions) == len(values),
                 timeout_s=120, what="uninterrupted run")  # fmt: skip
    return comparable(redis_dump(reference_db))


def ring_traffic(seed: int, count: int, rings: int) -> list[bytes]:
    """Everyday background traffic with `rings` fan-out rings spread through it."""
    events = background(seed=seed, count=count)
    for n in range(rings):
        at = count // (rings + 1) * (n + 1)
        events[at:at] = fan_out_ring(f"s{seed}r{n}")
    return lines(events)
