"""`python -m loadtest` at a tiny size: it runs end to end and finds nothing lost or doubled.

Wall-clock figures depend on the machine and decide nothing here; only their presence and the
correctness counts are checked. The benchmark starts its own embedded broker and Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYS = (
    "raw_read_tps",
    "pipeline_tps",
    "pipeline_vs_raw",
    "offered_rate",
    "latency_ms",
    "redis_roundtrips_per_transfer",
    "redis_bytes_per_transfer",
    "redis_commands_per_transfer",
    "state_calls_resent_per_1k",
    "redis_nodes",
    "cpu_s_per_1k",
    "redis_memory_per_account_bytes",
    "lost",
    "duplicated",
    "dlq",
    "machine",
    "parameters",
    "pipeline_tps_by_workers",
)


def _benchmark(module: str, *args: str) -> dict:
    """Run a benchmark module outside any FRAUDWATCH_ settings of the test session; its JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDWATCH_")}
    completed = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    result: dict = json.loads(completed.stdout)
    return result


def _loadtest(tmp_path: Path, *args: str) -> dict:
    return _benchmark("loadtest", "--json", "--report-dir", str(tmp_path / "report"),
                      "--timeout", "120", *args)  # fmt: skip


def test_loadtest_runs_and_loses_nothing(tmp_path: Path) -> None:
    result = _loadtest(tmp_path, "--transfers", "2000", "--duration", "3")
    for key in KEYS:
        assert key in result, key
    assert set(result["latency_ms"]) >= {"p50", "p95", "p99", "max", "count"}
    near_max = result["latency_near_max_ms"]
    assert set(near_max) >= {"p50", "p95", "p99", "max", "count", "offered_rate"}
    assert near_max["offered_rate"] > result["offered_rate"]
    assert result["lost"] == 0
    assert result["duplicated"] == 0
    assert result["dlq"] == 0
    assert result["processed"] == 2000
    memory = result["worker_rss_mb_by_progress"]
    assert list(memory) == ["10%", "50%", "100%"]
    assert all(0 < mb <= result["worker_rss_max_mb"] for mb in memory.values())
    report = (tmp_path / "report" / "latest.md").read_text()
    assert "worker resident memory at 10 / 50 / 100 %" in report
    # The CPU budget: the embedded Redis was measured (the broker too, though a tiny run may
    # cost it less than one clock tick), and the machine-wide figure includes Redis.
    assert result["redis_cpu_s_per_1k"] > 0
    assert result["broker_cpu_s_per_1k"] is not None
    assert result["machine_cpu_s_per_1k"] >= result["redis_cpu_s_per_1k"]
    assert result["cpu_bound_tps"] > 0
    assert "throughput with every core busy at this CPU cost" in report
    assert result["redis_nodes"] == 1
    assert result["state_calls_resent_per_1k"] == 0  # one worker: nobody comes between
    assert "state calls sent again per 1,000 transfers" in report


def test_loadtest_on_a_local_cluster_shows_each_node(tmp_path: Path) -> None:
    result = _loadtest(tmp_path, "--redis-cluster", "3", "--transfers", "1000",
                       "--duration", "2", "--near-max", "0")  # fmt: skip
    assert (result["lost"], result["duplicated"], result["processed"]) == (0, 0, 1000)
    assert result["redis_nodes"] == 3
    nodes = result["redis_per_node"]
    assert len({n["node"] for n in nodes}) == 3
    assert all(n["commands_per_1k"] > 0 and n["cpu_s_per_1k"] is not None for n in nodes)
    assert sum(n["keys"] for n in nodes) > 0
    report = (tmp_path / "report" / "latest.md").read_text()
    assert "| Redis node | commands / 1,000 transfers |" in report


def test_batch_bench_runs_the_workers_batch_path_on_a_fresh_database_each_run() -> None:
    result = _benchmark("loadtest.batch_bench", "--transfers", "600", "--runs", "2")
    assert result["transfers"] == 600 and result["runs"] == 2
    # Each run starts from an empty database, so both send the same calls (the views of
    # watchlists and suppressions refresh on the clock, a few commands more or less).
    commands = result["redis_commands_per_transfer"]
    assert commands["min"] > 4  # payer, payee, identifiers, trace record, alerts
    assert abs(commands["median"] - commands["min"]) < 0.1
    assert result["worker_cpu_us_per_transfer"]["min"] > 0


def _redis_instructions(*args: str) -> dict:
    return _benchmark("loadtest.redis_instructions", "--warm", "600", *args)


def test_redis_instructions_grow_with_the_transfers_measured() -> None:
    fewer = _redis_instructions("--measure", "100", "--zset-max-listpack-entries", "32")
    more = _redis_instructions("--measure", "300", "--zset-max-listpack-entries", "32")
    assert (fewer["measured_transfers"], more["measured_transfers"]) == (100, 300)
    assert fewer["zset_max_listpack_entries"] == 32
    # A count per transfer that stays put when three times as many are measured: the count
    # is of the transfers' calls (several state functions each), not of a fixed cost.
    per_transfer = fewer["redis_instructions_per_transfer"], more["redis_instructions_per_transfer"]
    assert min(per_transfer) > 100_000
    assert 0.8 < per_transfer[0] / per_transfer[1] < 1.25
    assert fewer["redis_memory_per_account_bytes"] > 0
