"""Latency of pre-transfer screening under load: `python -m loadtest.screen_bench`.

Starts the embedded Redis and broker, preloads state with simulated traffic (straight into
the Redis state store, as a worker would leave it), starts the API in its own process(es),
then offers `POST /v1/screen` at a fixed rate from a separate load process (open loop: each
request has a scheduled send time, and its latency counts from that time, so a slow server
cannot hide queueing by slowing the load down). Prints one JSON object.

Per-key rate limiting is switched off for the API under test: the benchmark measures
screening, not the limiter (one key at 500 req/s is far above the default budget).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from loadtest import procstats

if TYPE_CHECKING:
    from service.embedded.process import ManagedProcess

API_KEY = "screen-bench-key"


def _stream(seed: int, accounts: int, start: datetime, step: timedelta) -> Iterator[dict]:
    from models.simulator import live_stream

    moment = [start]

    def clock() -> datetime:
        moment[0] += step
        return moment[0]

    # The rings' spacing follows the simulated pace, so fraud stays a realistic share of it.
    return live_stream(seed, accounts, 1 / step.total_seconds(), clock)


def preload(redis_url: str, transfers: int, seed: int, accounts: int) -> Iterator[dict]:
    """Apply `transfers` simulated transfers over the last 2 days to Redis state; return the
    stream, positioned at "now", for the prospective transfers to screen."""
    from models.events import parse_transfer
    from service import wiring
    from service.settings import Settings

    settings = Settings(redis_url=redis_url)
    client = wiring.redis_client(settings)
    store = wiring.redis_state_store(settings, client)
    step = timedelta(days=2) / max(transfers, 1)
    stream = _stream(seed, accounts, datetime.now(UTC) - timedelta(days=2), step)
    batch = []
    for _ in range(transfers):
        batch.append(parse_transfer(json.dumps(next(stream)).encode()))
        if len(batch) == 500:
            store.apply_transfers(batch)
            batch = []
    store.apply_transfers(batch)
    client.close()
    return stream


def start_api(redis_url: str, port: int, workers: int, log: Path) -> ManagedProcess:
    """The API as an operator runs it (`fraudwatch api`), on this Redis, rate limit off."""
    from service.embedded import spawn

    env = {
        **os.environ,
        "FRAUDWATCH_REDIS_URL": redis_url,
        "FRAUDWATCH_API_KEYS": API_KEY,
        "FRAUDWATCH_RATE_LIMIT_PER_MINUTE": "0",
        "FRAUDWATCH_LOG_LEVEL": "WARNING",
        "FRAUDWATCH_API_HOST": "127.0.0.1",
        "FRAUDWATCH_API_PORT": str(port),
        "FRAUDWATCH_API_WORKERS": str(workers),
    }
    # The product's own command, as an operator runs it.
    return spawn("api", [sys.executable, "-m", "service.cli", "api"], log, port=port, env=env)


def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    """Wait until the API at `url` answers /readyz with 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"API at {url} not ready after {timeout_s:.0f} s")


# One request: method, path, body (None for a GET).
Request = tuple[str, str, bytes | None]


def _client_thread(
    port: int,
    requests: list[Request],
    next_index: list[int],
    lock: threading.Lock,
    start: float,
    rate: float,
    out: list[tuple[float, int]],
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while True:
        with lock:
            index = next_index[0]
            next_index[0] += 1
        if index >= len(requests):
            break
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        method, path, body = requests[index]
        try:
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            status = 0
        out.append((time.perf_counter() - due, status))
    conn.close()


def _load(port: int, requests: list[Request], rate: float, threads: int, queue: object) -> None:
    """The load process: open-loop pacing over keep-alive connections."""
    results: list[tuple[float, int]] = []
    lock = threading.Lock()
    next_index = [0]
    start = time.perf_counter() + 0.2
    pool = [
        threading.Thread(
            target=_client_thread, args=(port, requests, next_index, lock, start, rate, results)
        )
        for _ in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - start
    queue.put((results, elapsed, time.process_time()))  # type: ignore[attr-defined]


def percentile(sorted_ms: list[float], q: float) -> float:
    """The `q` quantile of sorted values (NaN for none)."""
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def run(args: argparse.Namespace) -> dict[str, object]:
    """Start everything, preload, measure, stop; return the figures."""
    from service.embedded import embedded_services, free_port

    with (
        tempfile.TemporaryDirectory(prefix="screen-bench-") as tmp,
        embedded_services(Path(tmp) / "services") as services,
    ):
        stream = preload(services.redis_url, args.preload, args.seed, args.accounts)
        count = int(args.rate * args.duration)
        bodies: list[Request] = []
        for i in range(count):
            transfer = next(stream)
            transfer["transfer_id"] = f"screen-{i}"
            bodies.append(("POST", "/v1/screen", json.dumps(transfer).encode()))
        port = free_port()
        api = start_api(services.redis_url, port, args.api_workers, Path(tmp) / "api.log")
        try:
            wait_ready(f"http://127.0.0.1:{port}")
            warmup = bodies[: min(200, count)]
            load_in_process(port, warmup, min(args.rate, 200.0), args.threads)
            api_pids = procstats.session_pids(api.pid)
            api_cpu = sum(procstats.cpu_seconds(pid) for pid in api_pids)
            redis_cpu = procstats.cpu_seconds(services.redis.pid)
            results, elapsed, load_cpu = load_in_process(port, bodies, args.rate, args.threads)
            api_cpu = sum(procstats.cpu_seconds(pid) for pid in api_pids) - api_cpu
            redis_cpu = procstats.cpu_seconds(services.redis.pid) - redis_cpu
        finally:
            api.stop()
    latencies = sorted(ms * 1000 for ms, status in results if status == 200)
    return {
        "offered_rate": args.rate,
        "achieved_rate": round(len(results) / elapsed, 1),
        "requests": len(results),
        "errors": sum(1 for _, status in results if status != 200),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p95_ms": round(percentile(latencies, 0.95), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(latencies[-1], 2) if latencies else None,
        # CPU per request, by process: what a request costs this machine's two cores.
        "cpu_ms_per_request": {
            "api": round(api_cpu * 1000 / max(len(results), 1), 3),
            "redis": round(redis_cpu * 1000 / max(len(results), 1), 3),
            "load_generator": round(load_cpu * 1000 / max(len(results), 1), 3),
        },
        "preloaded_transfers": args.preload,
        "api_workers": args.api_workers,
        "client_threads": args.threads,
        "cpus": os.cpu_count(),
    }


def load_in_process(
    port: int, requests: list[Request], rate: float, threads: int
) -> tuple[list[tuple[float, int]], float, float]:
    """Offer the requests at `rate` from a process of their own: latencies and statuses, the
    seconds the load took, and the CPU seconds it used itself."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    proc = context.Process(target=_load, args=(port, requests, rate, threads, queue))
    proc.start()
    results, elapsed, cpu_s = queue.get()
    proc.join()
    return results, elapsed, cpu_s


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print its JSON."""
    parser = argparse.ArgumentParser(prog="python -m loadtest.screen_bench", description=__doc__)
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second offered")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--preload", type=int, default=50_000, help="transfers preloaded")
    parser.add_argument("--accounts", type=int, default=20_000, help="simulated accounts")
    parser.add_argument("--api-workers", type=int, default=1, help="FRAUDWATCH_API_WORKERS")
    parser.add_argument("--threads", type=int, default=32, help="client threads (connections)")
    parser.add_argument("--seed", type=int, default=7)
    print(json.dumps(run(parser.parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
