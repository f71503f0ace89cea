"""One benchmark run, phase by phase, inside the target's lifetime; nothing outlives it."""

from __future__ import annotations

import shlex
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from loadtest.config import LoadtestConfig
from loadtest.data import Dataset, prepare
from loadtest.environment import Target, open_target
from loadtest.kafka_tools import Produced, produce_all
from loadtest.machine import machine_info
from loadtest.phases.latency import run_latency
from loadtest.phases.pipeline import PipelineResult, run_pipeline
from loadtest.phases.raw_read import run_raw_read
from loadtest.progress import say
from loadtest.results import build_result
from loadtest.settings import phase_settings
from service.embedded import exit_on_termination_signals


def _pipeline_runs(
    config: LoadtestConfig, target: Target, dataset: Dataset, produced: Produced
) -> list[PipelineResult]:
    runs = []
    for workers in config.worker_counts:
        say(f"pipeline: {workers} worker(s), cold start, {config.transfers} transfers")
        run = run_pipeline(
            target,
            dataset,
            produced,
            workers,
            config.partitions,
            config.batch_size,
            target.workdir / f"pipeline-{workers}",
            config.phase_timeout_s,
        )
        say(
            f"pipeline: {run.tps:,.0f} transfers/s (steady {run.steady_tps or 0:,.0f}); "
            f"lost {run.lost}, duplicated {run.duplicated}, dlq {run.dlq}, alerts {run.alerts}"
        )
        runs.append(run)
    return runs


def run(config: LoadtestConfig) -> dict[str, object]:
    """Run every phase and return the result object."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    machine = machine_info()
    wall = time.monotonic()
    with (
        exit_on_termination_signals(),
        tempfile.TemporaryDirectory(prefix="fraudwatch-loadtest-") as tmp,
        open_target(Path(tmp), config.redis_db, config.force, config.redis_cluster) as target,
    ):
        say(f"simulating {config.transfers} transfers")
        dataset = prepare(config.transfers, config.seed)
        topics = target.fresh_topics("in", config.partitions)
        say(f"pre-loading {dataset.size} transfers into {config.partitions} partition(s)")
        produce_started = time.monotonic()
        produced = produce_all(target.kafka_bootstrap, topics.transfers, dataset.records())
        produce_s = time.monotonic() - produce_started
        say(f"produced in {produce_s:.1f} s; raw read")
        raw_settings = phase_settings(target, topics, "", config.partitions, config.batch_size)
        raw = run_raw_read(raw_settings, produced, config.phase_timeout_s)
        say(f"raw read: {raw.tps:,.0f} transfers/s")
        runs = _pipeline_runs(config, target, dataset, produced)
        rate = config.rate or max(1.0, 0.5 * runs[0].tps)
        latency = run_latency(target, config.workers, config.partitions, config.batch_size,
                              rate, config.duration_s, config.seed)  # fmt: skip
        say(f"latency: p99 {latency.p99_ms} ms over {latency.alerts} alerts")
        near_max = None
        if config.near_max_share:
            near_rate = config.near_max_share * runs[0].tps
            near_max = run_latency(target, config.workers, config.partitions, config.batch_size,
                                   near_rate, config.duration_s, config.seed)  # fmt: skip
            say(f"latency near the maximum: p99 {near_max.p99_ms} ms over {near_max.alerts} alerts")
        context: dict[str, object] = {
            "target": "embedded" if target.embedded is not None else "external",
            "machine": machine,
            "started_at": started_at,
            "wall_s": round(time.monotonic() - wall, 1),
            "command": shlex.join([Path(sys.executable).name, "-m", "loadtest", *sys.argv[1:]]),
            "run_id": uuid.uuid4().hex[:12],
        }
        return build_result(
            config, dataset, produced, produce_s, raw, runs, latency, near_max, context
        )
