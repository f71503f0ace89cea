"""The workers' own Prometheus counters, summed over processes from their multiprocess files."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector


def read_counters(metrics_dir: Path) -> dict[str, float]:
    """Every sample of every metric, summed over labels: `{sample name: value}`.

    E.g. `fraudwatch_transfers_total`, `fraudwatch_duplicate_transfers_total`,
    `fraudwatch_dlq_total`, `fraudwatch_batch_seconds_count`.
    """
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    totals: dict[str, float] = {}
    for metric in registry.collect():
        for sample in metric.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals
