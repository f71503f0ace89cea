"""The API's own metrics, and the exposition that gathers workers' metrics when they share
a multiprocess directory (the embedded stack)."""

from __future__ import annotations

import contextlib
import os
import re

import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from streams.state.case_store import CaseReader
from streams.state.eviction import SAFE_POLICY

HTTP_REQUESTS = Counter(
    "fraudwatch_http_requests", "HTTP requests served", ["route", "method", "status"]
)
HTTP_SECONDS = Histogram(
    "fraudwatch_http_request_seconds",
    "HTTP request handling time",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
REDIS_MEMORY = Gauge(
    "fraudwatch_redis_used_memory_bytes",
    "Memory Redis reports in use",
    multiprocess_mode="livemax",
)
REDIS_MAXMEMORY = Gauge(
    "fraudwatch_redis_maxmemory_bytes",
    "Redis's memory limit (0 = none); at the limit it refuses writes",
    multiprocess_mode="livemax",
)

REDIS_EVICTING = Gauge(
    "fraudwatch_redis_evicting",
    "1 when Redis's maxmemory-policy evicts keys (anything but noeviction): fraud state, "
    "alerts and dedupe records would vanish at the memory limit",
    multiprocess_mode="livemax",
)
REDIS_EVICTED_KEYS = Gauge(
    "fraudwatch_redis_evicted_keys",
    "Keys Redis has evicted since it started (INFO stats evicted_keys); any is lost state",
    multiprocess_mode="livemax",
)


CASES_OPEN = Gauge(
    "fraudwatch_cases_open",
    "Cases not yet decided (open, escalated or under appeal): the investigators' queue",
    multiprocess_mode="livemax",
)
UNDECIDED = ("open", "escalated", "appealed")


# A live gauge's file in the multiprocess directory: `gauge_livemax_<pid>.db` and the like.
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def forget_dead_processes(path: str) -> None:
    """Drop the live gauges of processes that are gone. A worker that `up` (or anyone) started
    again leaves its old file behind, and a `livemax` gauge reads the largest value of every
    file: its stall gauge would stay at what it was when it died, paging for good."""
    for name in os.listdir(path):
        match = _LIVE_GAUGE_FILE.fullmatch(name)
        if match and not _alive(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)), path)


def render_metrics(client: redis.Redis) -> tuple[bytes, str]:
    """The exposition text; Redis memory and the case queue are read at scrape time."""
    # /readyz reports Redis; a scrape should still return the other metrics without it.
    with contextlib.suppress(redis.RedisError):
        info = client.info()  # its default sections hold memory and stats: one round trip
        REDIS_MEMORY.set(float(info["used_memory"]))
        REDIS_MAXMEMORY.set(float(info["maxmemory"]))
        # Checked at start-up too (streams.state.eviction); CONFIG SET can change it later.
        REDIS_EVICTING.set(float(info["maxmemory_policy"] != SAFE_POLICY))
        REDIS_EVICTED_KEYS.set(float(info["evicted_keys"]))
        CASES_OPEN.set(CaseReader(client).count(UNDECIDED))
    if path := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        forget_dead_processes(path)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
