"""CPU per transfer of the worker's batch path and of Redis, without a broker:
`python -m loadtest.batch_bench`.

In `python -m loadtest` the worker's CPU includes its Kafka client, and every process shares the
machine with the broker and the load generator; CPU-seconds on a shared machine then vary by a
third from run to run. This benchmark runs only the worker's own batch path (the
`BatchProcessor` that `fraudwatch worker` runs: parsing, state in Redis, features, rules and
model, alerts and cases stored) over the load test's simulated transfers, in batches of
`--batch-size`, on an embedded Redis. Each of `--runs` runs starts from an empty database with
the profiles loaded; the figures per transfer are the worker's CPU (this process), Redis's CPU,
and Redis's commands and bytes, as the fastest run and the median. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

from loadtest import procstats
from loadtest.data import Dataset, load_profiles, prepare
from loadtest.redis_stats import NodeSnapshot


def _one_run(redis_url: str, redis_pid: int, dataset: Dataset, batch_size: int) -> dict[str, float]:
    """Process the dataset once on an empty database; its figures per transfer."""
    from service import wiring
    from service.settings import Settings
    from streams.batch import Message

    settings = Settings(redis_url=redis_url)
    client = wiring.redis_client(settings)
    client.flushdb()
    load_profiles(settings, client, dataset.profiles)
    processor = wiring.batch_processor(settings, client, wiring.build_scorer(settings))
    messages = [Message("transfer", settings.topic_transfers, 0, offset, value)
                for offset, value in enumerate(dataset.values)]  # fmt: skip
    alerts = 0
    server = redis.Redis.from_url(redis_url)  # one server: its counters
    before, redis_before = NodeSnapshot.take(server), procstats.cpu_seconds(redis_pid)
    worker_before = time.process_time()
    for low in range(0, len(messages), batch_size):
        alerts += len(processor.process(messages[low : low + batch_size]).new_alerts)
    worker_s = time.process_time() - worker_before
    redis_s = procstats.cpu_seconds(redis_pid) - redis_before
    used = NodeSnapshot.take(server).minus(before)
    n = len(messages)
    return {
        "worker_cpu_us": worker_s / n * 1e6,
        "redis_cpu_us": redis_s / n * 1e6,
        "redis_commands": used.commands / n,
        "redis_bytes": (used.net_input_bytes + used.net_output_bytes) / n,
        "alerts": alerts,
    }


def run(args: argparse.Namespace) -> dict[str, object]:
    """Start Redis, process the transfers `args.runs` times, stop; return the figures."""
    from service.embedded.redis_server import start_redis

    dataset = prepare(args.transfers, args.seed)
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
        server = start_redis(Path(tmp))
        try:
            url = f"redis://127.0.0.1:{server.port}/0"
            runs = [_one_run(url, server.pid, dataset, args.batch_size) for _ in range(args.runs)]
        finally:
            server.stop()

    def figure(name: str, digits: int) -> dict[str, float]:
        values = [each[name] for each in runs]
        return {
            "min": round(min(values), digits),
            "median": round(statistics.median(values), digits),
        }

    return {
        "transfers": dataset.size,
        "batch_size": args.batch_size,
        "runs": args.runs,
        "worker_cpu_us_per_transfer": figure("worker_cpu_us", 1),
        "redis_cpu_us_per_transfer": figure("redis_cpu_us", 1),
        "redis_commands_per_transfer": figure("redis_commands", 2),
        "redis_bytes_per_transfer": figure("redis_bytes", 1),
        "alerts": runs[-1]["alerts"],
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print its JSON."""
    parser = argparse.ArgumentParser(prog="python -m loadtest.batch_bench", description=__doc__)
    parser.add_argument("--transfers", type=int, default=20_000, help="simulated transfers")
    parser.add_argument("--runs", type=int, default=4, help="runs, each on an empty database")
    parser.add_argument("--batch-size", type=int, default=500, help="transfers per batch")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (as the load test)")
    print(json.dumps(run(parser.parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
