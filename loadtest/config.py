"""The benchmark's parameters and its command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadtestConfig:
    """Everything one benchmark run is parameterised by."""

    transfers: int = 200_000
    rate: float | None = None  # offered rate of the latency phase; None = 50 % of pipeline_tps
    workers: int = 1
    partitions: int = 3
    batch_size: int | None = None  # None = the service's default
    duration_s: float = 20.0
    near_max_share: float = 0.9  # second latency phase at this share of pipeline_tps; 0 = skip
    compare_workers: tuple[int, ...] = ()
    redis_db: int = 15
    redis_cluster: int | None = None  # primaries of a local Redis Cluster to start; None = one
    force: bool = False
    seed: int = 7
    json_only: bool = False
    report_dir: str = "loadtest/report"
    timeout_s: float | None = None  # per phase; None = scaled with `transfers`

    @property
    def phase_timeout_s(self) -> float:
        """Hard bound on any one phase (produce, raw read, one pipeline run, drain)."""
        if self.timeout_s is not None:
            return self.timeout_s
        return 120.0 + self.transfers / 250.0

    @property
    def worker_counts(self) -> tuple[int, ...]:
        """Worker counts to run the pipeline phase with; `workers` first, then the others."""
        extra = [k for k in self.compare_workers if k != self.workers]
        return (self.workers, *dict.fromkeys(extra))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


def _cluster_size(text: str) -> int:
    value = int(text)
    if value < 3:
        raise argparse.ArgumentTypeError(f"a Redis Cluster needs at least 3 primaries, not {value}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {value}")
    return value


def _worker_list(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a list like 1,2 not {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive worker counts, not {text!r}")
    return counts


def build_parser() -> argparse.ArgumentParser:
    """The `python -m loadtest` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description="Throughput, latency, resource and correctness benchmark of the worker. "
        "Runs on an embedded Tansu + redis-server unless FRAUDWATCH_KAFKA_BOOTSTRAP and "
        "FRAUDWATCH_REDIS_URL are set.",
    )
    parser.add_argument(
        "--transfers",
        type=_positive_int,
        default=200_000,
        metavar="N",
        help="simulated transfers to pre-load (default 200000)",
    )
    parser.add_argument(
        "--rate",
        type=_positive_float,
        default=None,
        metavar="R",
        help="offered rate of the latency phase, transfers/s "
        "(default: 50%% of the measured pipeline throughput)",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="K",
        help="worker processes in the consumer group (default 1)",
    )
    parser.add_argument(
        "--partitions",
        type=_positive_int,
        default=3,
        metavar="P",
        help="partitions of the transfers topic (default 3)",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        metavar="B",
        help="worker micro-batch size (default: the service's)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=20.0,
        metavar="S",
        help="seconds of paced traffic in the latency phase (default 20)",
    )
    parser.add_argument(
        "--near-max",
        type=_share,
        default=0.9,
        metavar="SHARE",
        help="also measure latency at this share of the measured pipeline throughput, the goal's "
        "'90%% of maximum' (default 0.9; 0 skips it)",
    )
    parser.add_argument(
        "--compare-workers",
        type=_worker_list,
        default=(),
        metavar="K1,K2",
        help="also run the pipeline phase with these worker counts",
    )
    parser.add_argument(
        "--redis-db",
        type=int,
        default=15,
        metavar="DB",
        help="Redis database to use on an external Redis (default 15)",
    )
    parser.add_argument(
        "--redis-cluster",
        type=_cluster_size,
        default=None,
        metavar="N",
        help="start a local Redis Cluster of N primaries (N >= 3) instead of one redis-server; "
        "the result then shows each node's share",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="use (and empty) the Redis database even if it holds keys",
    )
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        metavar="S",
        help="hard bound per phase in seconds (default 120 + N/250)",
    )
    parser.add_argument(
        "--report-dir",
        default="loadtest/report",
        help="where latest.md and latest.png go (default loadtest/report)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print only the result object on stdout, no progress on stderr",
    )
    return parser  # fmt: skip


def parse_args(argv: Sequence[str] | None = None) -> LoadtestConfig:
    """Parse the command line into a `LoadtestConfig`."""
    args = build_parser().parse_args(argv)
    return LoadtestConfig(
        transfers=args.transfers,
        rate=args.rate,
        workers=args.workers,
        partitions=args.partitions,
        batch_size=args.batch_size,
        duration_s=args.duration,
        near_max_share=args.near_max,
        compare_workers=args.compare_workers,
        redis_db=args.redis_db,
        redis_cluster=args.redis_cluster,
        force=args.force,
        seed=args.seed,
        json_only=args.json,
        report_dir=args.report_dir,
        timeout_s=args.timeout,
    )
