"""Pipeline throughput: K cold-started worker processes drain the pre-loaded topic.

Progress is the group's committed offsets against the known per-partition message counts,
sampled every `SAMPLE_S`; the phase ends at the sample that sees the last commit.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from kafka import KafkaAdminClient

from loadtest import redis_stats
from loadtest.data import Dataset, load_profiles
from loadtest.environment import LoadtestError, Target
from loadtest.kafka_tools import Produced, committed_total, read_topic
from loadtest.probe import read_round_trips
from loadtest.procstats import cpu_seconds, machine_busy_seconds
from loadtest.progress import say
from loadtest.redis_stats import RedisSnapshot
from loadtest.settings import phase_settings
from loadtest.worker_metrics import read_counters
from loadtest.workers import WorkerGroup, running_workers

SAMPLE_S = 0.25


@dataclass(frozen=True)
class Sample:
    """One progress sample: seconds since the workers started, transfers committed, CPU, and
    the largest worker's resident memory."""

    t: float
    committed: int
    worker_cpu_s: float
    worker_rss_bytes: int


@dataclass
class PipelineResult:
    """Throughput, resources and correctness of one pipeline run with `workers` workers."""

    workers: int
    transfers: int
    elapsed_s: float
    first_commit_s: float
    samples: list[Sample]
    worker_cpu_s: float
    steady_cpu_s: float
    steady_transfers: int
    server_cpu_s: dict[str, float]
    machine_busy_s: float  # all cores, every process, over `elapsed_s`
    redis: RedisSnapshot
    round_trips: int | None
    counters: dict[str, float]
    processed: int
    alerts: int
    dlq: int

    @property
    def tps(self) -> float:
        """Transfers per second from the workers' cold start to the last commit."""
        return self.transfers / self.elapsed_s

    @property
    def steady_tps(self) -> float | None:
        """Transfers per second from the first to the last sample with progress."""
        span = self.elapsed_s - self.first_commit_s
        return self.steady_transfers / span if span > 0 and self.steady_transfers else None

    @property
    def worker_rss_max_bytes(self) -> int:
        """The largest worker's resident memory at its highest sample."""
        return max((s.worker_rss_bytes for s in self.samples), default=0)

    def worker_rss_at(self, share: float) -> int:
        """The largest worker's resident memory when `share` of the input was committed:
        flat from 10 % to 100 % means memory does not grow with the input."""
        target = share * self.transfers
        return next((s.worker_rss_bytes for s in self.samples if s.committed >= target), 0)

    @property
    def lost(self) -> int:
        """Valid transfers whose state was never applied."""
        return max(0, self.transfers - self.processed)

    @property
    def duplicated(self) -> int:
        """Transfers counted as first deliveries more than once (dedupe failures)."""
        return max(0, int(self.counters.get("fraudwatch_transfers_total", 0)) - self.processed)

    @property
    def redelivered(self) -> int:
        """Redeliveries the workers recognised and did not count twice (harmless)."""
        return int(self.counters.get("fraudwatch_duplicate_transfers_total", 0))


def _server_cpu(target: Target) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in target.server_pids().items()}


def _wait_for_drain(
    admin: KafkaAdminClient, group: str, produced: Produced, workers: WorkerGroup, timeout_s: float
) -> list[Sample]:
    started = time.monotonic()
    samples: list[Sample] = []
    last_said = started
    while True:
        done = committed_total(admin, group, produced)
        now = time.monotonic()
        if done is not None:
            samples.append(Sample(now - started, done, workers.cpu_seconds(), workers.rss_bytes()))
            if done >= produced.total:
                return samples
        workers.check_alive()
        if now - started > timeout_s:
            raise LoadtestError(
                f"pipeline: {done or 0} of {produced.total} committed after {timeout_s:.0f} s"
            )
        if now - last_said >= 5:
            say(f"  committed {done or 0}/{produced.total}")
            last_said = now
        time.sleep(max(0.0, SAMPLE_S - (time.monotonic() - now)))


def run_pipeline(
    target: Target,
    dataset: Dataset,
    produced: Produced,
    workers: int,
    partitions: int,
    batch_size: int | None,
    rundir: Path,
    timeout_s: float,
) -> PipelineResult:
    """Run `workers` workers from a cold start over the pre-loaded topic and measure."""
    target.reset_redis()
    topics = target.fresh_topics(f"p{workers}", partitions)
    group = f"fraudwatch-loadtest-{uuid.uuid4().hex[:8]}"
    settings = phase_settings(target, topics, group, partitions, batch_size)
    settings = settings.model_copy(update={"topic_transfers": produced.topic})
    client = target.redis()
    nodes = target.redis_nodes()
    admin = KafkaAdminClient(bootstrap_servers=target.kafka_bootstrap)
    try:
        before_profiles = RedisSnapshot.take(nodes)
        load_profiles(settings, client, dataset.profiles)
        before = RedisSnapshot.take(nodes)
        servers_before = _server_cpu(target)
        machine_before = machine_busy_seconds()
        with running_workers(settings, workers, rundir) as group_procs:
            samples = _wait_for_drain(admin, group, produced, group_procs, timeout_s)
            after = RedisSnapshot.take(nodes)
            servers_after = _server_cpu(target)
            machine_after = machine_busy_seconds()
        round_trips = read_round_trips(group_procs.probe_dir, workers)
        counters = read_counters(group_procs.metrics_dir)
        delta = after.minus(before)
        # Memory grown since before the profiles, the rest since after them (per node).
        grown = {n.name: n.used_memory for n in after.minus(before_profiles).nodes}
        delta = RedisSnapshot(tuple(
            replace(node, used_memory=grown[node.name]) for node in delta.nodes
        ))  # fmt: skip
        progressing = [s for s in samples if s.committed > 0]
        first = progressing[0]
        last = samples[-1]
        return PipelineResult(
            workers=workers,
            transfers=produced.total,
            elapsed_s=last.t,
            first_commit_s=first.t,
            samples=samples,
            worker_cpu_s=last.worker_cpu_s,
            steady_cpu_s=last.worker_cpu_s - first.worker_cpu_s,
            steady_transfers=last.committed - first.committed,
            server_cpu_s={k: servers_after[k] - servers_before[k] for k in servers_after},
            machine_busy_s=machine_after - machine_before,
            redis=delta,
            round_trips=round_trips,
            counters=counters,
            processed=redis_stats.processed_transfers(client),
            alerts=redis_stats.stored_alerts(client),
            dlq=len(read_topic(target.kafka_bootstrap, topics.dlq)),
        )
    finally:
        admin.close()
        client.close()
        for node in nodes:
            node.close()
