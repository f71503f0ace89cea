"""The one JSON object the benchmark prints, assembled from the phases' results."""

from __future__ import annotations

import os
from dataclasses import asdict

from loadtest.config import LoadtestConfig
from loadtest.data import Dataset
from loadtest.kafka_tools import Produced
from loadtest.phases.latency import LatencyResult
from loadtest.phases.pipeline import PipelineResult
from loadtest.phases.raw_read import RawReadResult

LATENCY_NOTE = (
    "event-to-alert latency of every alert raised in the measured window: alert created_at "
    "(stamped when its batch is scored, before the Redis write) minus the transfer's event ts "
    "(stamped as it was produced); transfers without an alert carry no processing time"
)
_TIMELINE_POINTS = 240
# Shares of the input at which worker memory is reported (growth would show between them).
_PROGRESS = (0.1, 0.5, 1.0)
# The workers' count of state calls sent again (streams.metrics.STATE_CALLS_RESENT), summed
# over its reasons.
RESENT_COUNTER = "fraudwatch_state_calls_resent_total"


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _per(value: float, count: int, digits: int = 3) -> float | None:
    return round(value / count, digits) if count else None


def _timeline(run: PipelineResult) -> list[list[float]]:
    step = max(1, len(run.samples) // _TIMELINE_POINTS)
    picked = run.samples[::step]
    if picked[-1] is not run.samples[-1]:
        picked.append(run.samples[-1])
    return [[round(s.t, 2), s.committed] for s in picked]


def _cores() -> int:
    """Every core of the machine: the ones `/proc/stat`'s busy time is summed over."""
    return os.cpu_count() or 1


def _server_cpu_per_1k(run: PipelineResult, name: str) -> float | None:
    """CPU seconds per 1,000 transfers of an embedded server (every node of an embedded
    cluster for `redis`); None when it runs elsewhere."""
    seconds = [s for server, s in run.server_cpu_s.items() if server.split(":")[0] == name]
    return _per(sum(seconds) * 1000, run.transfers) if seconds else None


def _per_node(run: PipelineResult) -> list[dict[str, object]]:
    """Each Redis node's share: commands and (embedded) CPU per 1,000 transfers, keys."""
    nodes: list[dict[str, object]] = []
    for node in run.redis.nodes:
        cpu = run.server_cpu_s.get(f"redis:{node.name.rsplit(':', 1)[1]}")
        if cpu is None and len(run.redis.nodes) == 1:
            cpu = run.server_cpu_s.get("redis")
        nodes.append({
            "node": node.name,
            "commands_per_1k": _per(node.commands * 1000, run.transfers, 1),
            "cpu_s_per_1k": None if cpu is None else _per(cpu * 1000, run.transfers),
            "bytes_per_transfer": _per(node.net_input_bytes + node.net_output_bytes,
                                       run.transfers, 1),
            "keys": node.keys,
        })  # fmt: skip
    return nodes


def _key_spread(run: PipelineResult) -> float | None:
    """The most keys on one node over the fewest on another (1.0 for a single Redis)."""
    keys = [node.keys for node in run.redis.nodes]
    if not keys or min(keys) == 0:
        return None
    return round(max(keys) / min(keys), 3)


def _round_trips(run: PipelineResult) -> tuple[float | None, str]:
    batches = int(run.counters.get("fraudwatch_batch_seconds_count", 0))
    if run.round_trips is not None:
        source = "measured: redis-py writes up to each first reply read"
        return _per(run.round_trips, run.transfers, 4), source
    return _per(batches, run.transfers, 4), "estimated: one per batch (lower bound)"


def _percentiles(latency: LatencyResult) -> dict[str, float | int | None]:
    return {
        "p50": _round(latency.p50_ms),
        "p95": _round(latency.p95_ms),
        "p99": _round(latency.p99_ms),
        "max": _round(latency.max_ms),
        "count": latency.alerts,
    }


def _near_max(latency: LatencyResult | None, share: float) -> dict[str, object] | None:
    if latency is None:
        return None
    return {
        "share_of_pipeline_tps": share,
        "offered_rate": _round(latency.offered_rate),
        "achieved_rate": _round(latency.achieved_rate),
        "drain_s": round(latency.drain_s, 2),
        **_percentiles(latency),
    }


def _resent_per_1k(run: PipelineResult) -> float | None:
    """State calls the workers sent again within a batch (another worker came between two of
    its calls on a shared account or device, a cluster redirect), per 1,000 transfers."""
    return _per(run.counters.get(RESENT_COUNTER, 0.0) * 1000, run.transfers, 2)


def _run_summary(run: PipelineResult) -> dict[str, object]:
    return {
        "pipeline_tps": _round(run.tps),
        "pipeline_steady_tps": _round(run.steady_tps),
        "state_calls_resent_per_1k": _resent_per_1k(run),
        "elapsed_s": round(run.elapsed_s, 2),
        "lost": run.lost,
        "duplicated": run.duplicated,
        "redelivered": run.redelivered,
        "dlq": run.dlq,
        "alerts": run.alerts,
    }


def build_result(
    config: LoadtestConfig,
    dataset: Dataset,
    produced: Produced,
    produce_s: float,
    raw: RawReadResult,
    runs: list[PipelineResult],
    latency: LatencyResult,
    near_max: LatencyResult | None,
    context: dict[str, object],
) -> dict[str, object]:
    """Every figure of the run, flat where the issue names a key."""
    main = runs[0]
    n = main.transfers
    round_trips, round_trips_source = _round_trips(main)
    batches = int(main.counters.get("fraudwatch_batch_seconds_count", 0))
    redis_bytes = main.redis.net_input_bytes + main.redis.net_output_bytes
    return {
        "raw_read_tps": _round(raw.tps),
        "raw_read_cold_tps": _round(raw.cold_tps),
        "pipeline_tps": _round(main.tps),
        "pipeline_steady_tps": _round(main.steady_tps),
        "pipeline_vs_raw": round(main.tps / raw.tps, 3),
        "pipeline_steady_vs_raw": _round((main.steady_tps or 0) / raw.tps, 3),
        "pipeline_first_commit_s": round(main.first_commit_s, 2),
        "pipeline_elapsed_s": round(main.elapsed_s, 2),
        "pipeline_tps_by_workers": {str(r.workers): _round(r.tps) for r in runs},
        "offered_rate": _round(latency.offered_rate),
        "achieved_rate": _round(latency.achieved_rate),
        "latency_ms": _percentiles(latency),
        "latency_near_max_ms": _near_max(near_max, config.near_max_share),
        "latency_transfers_sent": latency.sent,
        "latency_injected_fan_out_transfers": latency.injected,
        "latency_drain_s": round(latency.drain_s, 2),
        "latency_note": LATENCY_NOTE,
        "redis_roundtrips_per_transfer": round_trips,
        "redis_roundtrips_source": round_trips_source,
        "redis_roundtrips_per_batch": _per(main.round_trips or 0, batches, 2),
        "redis_commands_per_transfer": _per(main.redis.commands, n, 2),
        "state_calls_resent_per_1k": _resent_per_1k(main),
        "redis_bytes_per_transfer": _per(redis_bytes, n, 1),
        "redis_bytes_in_per_transfer": _per(main.redis.net_input_bytes, n, 1),
        "redis_bytes_out_per_transfer": _per(main.redis.net_output_bytes, n, 1),
        "batches": batches,
        "transfers_per_batch": _per(n, batches, 1),
        "cpu_s_per_1k": _per(main.steady_cpu_s * 1000, main.steady_transfers),
        "cpu_s_per_1k_with_startup": _per(main.worker_cpu_s * 1000, n),
        "redis_cpu_s_per_1k": _server_cpu_per_1k(main, "redis"),
        "redis_nodes": len(main.redis.nodes),
        "redis_per_node": _per_node(main),
        "redis_keys_max_over_min": _key_spread(main),
        "broker_cpu_s_per_1k": _server_cpu_per_1k(main, "tansu"),
        "machine_cpu_s_per_1k": _per(main.machine_busy_s * 1000, n),
        "machine_busy_cores": round(main.machine_busy_s / main.elapsed_s, 2),
        "cpu_bound_tps": _round(
            _cores() * n / main.machine_busy_s if main.machine_busy_s else None
        ),
        "worker_rss_max_mb": round(main.worker_rss_max_bytes / 2**20, 1),
        "worker_rss_mb_by_progress": {
            f"{share:.0%}": round(main.worker_rss_at(share) / 2**20, 1) for share in _PROGRESS
        },
        "redis_memory_per_account_bytes": _per(main.redis.used_memory, dataset.accounts, 0),
        "active_accounts": dataset.accounts,
        "produce_tps": round(produced.total / produce_s, 1),
        "produce_s": round(produce_s, 2),
        "processed": main.processed,
        "lost": sum(r.lost for r in runs),
        "duplicated": sum(r.duplicated for r in runs),
        "redelivered": sum(r.redelivered for r in runs),
        "dlq": sum(r.dlq for r in runs),
        "raw_read_invalid": raw.invalid,
        "alerts": main.alerts,
        "fraud_transfers_in_input": dataset.fraud_transfers,
        "by_workers": {str(r.workers): _run_summary(r) for r in runs},
        "throughput_timeline": _timeline(main),
        "parameters": {
            **asdict(config),
            "simulated_accounts": dataset.simulated_accounts,
            "simulated_days": dataset.simulated_days,
            "partition_counts": {str(p): c for p, c in sorted(produced.per_partition.items())},
        },
        **context,
    }
