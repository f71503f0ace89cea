"""Latency at a fixed offered rate: paced live traffic stamped `ts = now`, through running workers.

Each alert carries the transfer's event time (`ts`) and its own `created_at` (stamped when its
batch is scored, just before the Redis write and the publish); their difference, over every
alert of the measured window, is the event-to-alert latency. Transfers that raise no alert
carry no processing timestamp, so they are not in the figure.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import orjson
from kafka import KafkaAdminClient

from loadtest.environment import LoadtestError, Target
from loadtest.inject import fan_out_rings, injection_rate
from loadtest.kafka_tools import PartitionCounter, committed_total
from loadtest.progress import say
from loadtest.settings import phase_settings
from loadtest.workers import WorkerGroup, running_workers
from models.events import parse_account, parse_timestamp_ms
from models.simulator.live import live_profiles, live_stream
from service import wiring
from streams.kafka_io import acked_producer
from streams.state.alert_store import alert_key
from streams.state.pipelines import AnyRedis

LIVE_ACCOUNTS = 20_000
WARMUP_TRANSFERS = 300
DRAIN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class LatencyResult:
    """Event-to-alert latency percentiles at the offered rate."""

    offered_rate: float
    achieved_rate: float
    sent: int
    injected: int
    alerts: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    drain_s: float


def _now() -> datetime:
    return datetime.now(UTC)


def _wait_committed(
    admin: KafkaAdminClient, group: str, counter: PartitionCounter, workers: WorkerGroup
) -> float:
    """Wait until the group has committed everything sent so far; return the seconds waited."""
    started = time.monotonic()
    while (committed_total(admin, group, counter.produced) or 0) < counter.produced.total:
        workers.check_alive()
        if time.monotonic() - started > DRAIN_TIMEOUT_S:
            raise LoadtestError(f"latency: workers did not catch up in {DRAIN_TIMEOUT_S:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - started


def _latencies_ms(client: AnyRedis, transfer_ids: set[str]) -> list[int]:
    """created_at - ts of every stored alert raised for one of `transfer_ids`."""
    latencies = []
    keys = list(client.scan_iter(match=alert_key("*"), count=10_000))
    for lo in range(0, len(keys), 1000):
        for raw in client.mget(keys[lo : lo + 1000]):
            if raw is None:
                continue
            body = orjson.loads(raw)
            if body["transfer_id"] in transfer_ids:
                created, _ = parse_timestamp_ms(body["created_at"], "created_at")
                event, _ = parse_timestamp_ms(body["ts"])
                latencies.append(created - event)
    return latencies


def _pace(counter: PartitionCounter, bootstrap: str, rate: float, duration_s: float,
          seed: int) -> tuple[set[str], int, float]:  # fmt: skip
    """Send live transfers, plus injected fan-out rings, at `rate` in all for `duration_s`.

    Returns the ids sent, how many of them were injected, and the achieved rate.
    """
    producer = acked_producer(bootstrap, client_id="fraudwatch-loadtest-pace")
    inject_rate = injection_rate(rate)
    streams = (live_stream(seed, LIVE_ACCOUNTS, rate - inject_rate, _now), fan_out_rings())
    ids: set[str] = set()
    injected = 0
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < duration_s:
            injected_due = int(elapsed * inject_rate) - injected
            for index in range(int(elapsed * rate) - len(ids)):
                transfer = next(streams[index < injected_due])
                injected += index < injected_due
                ids.add(str(transfer["transfer_id"]))
                key = str(transfer["src_account"]).encode()
                counter.send(producer, key, orjson.dumps(transfer))
            time.sleep(0.001)
        producer.flush()
    finally:
        producer.close()
    counter.raise_failures()
    return ids, injected, len(ids) / (time.monotonic() - started)


def run_latency(target: Target, workers: int, partitions: int, batch_size: int | None,
                rate: float, duration_s: float, seed: int) -> LatencyResult:  # fmt: skip
    """Run `workers` workers on fresh topics, warm them up, then offer `rate` for `duration_s`."""
    target.reset_redis()
    topics = target.fresh_topics("lat", partitions)
    group = f"fraudwatch-loadtest-{uuid.uuid4().hex[:8]}"
    settings = phase_settings(target, topics, group, partitions, batch_size)
    client = target.redis()
    admin = KafkaAdminClient(bootstrap_servers=target.kafka_bootstrap)
    rundir = target.workdir / "latency"
    try:
        profiles = [parse_account(orjson.dumps(p)) for p in live_profiles(seed, LIVE_ACCOUNTS)]
        wiring.redis_state_store(settings, client).apply_profiles(profiles)
        counter = PartitionCounter(topics.transfers)
        with running_workers(settings, workers, rundir) as group_procs:
            say(f"latency: warming up {workers} worker(s)")
            _pace(counter, target.kafka_bootstrap, WARMUP_TRANSFERS, 1.0, seed)
            _wait_committed(admin, group, counter, group_procs)
            say(f"latency: offering {rate:.0f} transfers/s for {duration_s:.0f} s")
            ids, injected, achieved = _pace(counter, target.kafka_bootstrap, rate, duration_s, seed)
            drain_s = _wait_committed(admin, group, counter, group_procs)
        latencies = np.array(_latencies_ms(client, ids), dtype=float)
    finally:
        admin.close()
        client.close()
    p50, p95, p99, top = (
        (float(v) for v in np.percentile(latencies, [50, 95, 99, 100]))
        if latencies.size
        else (None, None, None, None)
    )
    return LatencyResult(
        rate, achieved, len(ids), injected, int(latencies.size), p50, p95, p99, top, drain_s
    )
