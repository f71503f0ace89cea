"""Latency of the case queue with many alerts stored: `python -m loadtest.case_bench`.

Starts the embedded Redis, stores `--alerts` alerts through the worker's own write path
(alerts stored, then grouped into cases, in batches of 500) — mules splitting money (tens of
alerts each), rings of linked mules, and lone false positives, over 30 days of event time —
and decides about a third of the cases (confirmed or dismissed, through the case action's
own path). Then it starts the API in its own process and offers case-queue requests at a
fixed rate from a separate load process (open loop, as `loadtest.screen_bench`): the queue's
first page, the next page (by cursor), and the queue filtered by severity and by account.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import tempfile
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from loadtest import procstats
from loadtest.screen_bench import (
    API_KEY,
    Request,
    load_in_process,
    percentile,
    start_api,
    wait_ready,
)

if TYPE_CHECKING:
    from models.alerts import Alert
    from models.workflow import Action

DAY_MS = 86_400_000
T0_MS = 1_772_323_200_000  # 2026-03-01 00:00 UTC


def _alerts(count: int, seed: int) -> list[Alert]:
    """Alerts shaped like a bank's queue: split mules, rings, lone false positives."""
    from models.alerts import Alert, Reason, alert_id_for

    rnd = random.Random(seed)
    made: list[Alert] = []

    def alert(src: str, dst: str, ts_ms: int, suspect: str, rule: str, score: float) -> None:
        n = len(made)
        severity = "critical" if score >= 0.92 else "high" if score >= 0.8 else (
            "medium" if score >= 0.65 else "low")  # fmt: skip
        reason = Reason(rule=rule, title=rule, evidence={"src_distinct_payees_1h": 9},
                        score=score, suspect="payer" if suspect == src else "payee")  # fmt: skip
        made.append(Alert(
            alert_id=alert_id_for(f"bench-{n}"), transfer_id=f"bench-{n}", ts="",
            src_account=src, dst_account=dst,
            amount=f"{Decimal(rnd.randrange(1000, 5_000_000)) / 100:.2f}",
            currency="CNY", score=score, severity=severity, reasons=[reason], model=None,
            status="open", created_at="", ts_ms=ts_ms, suspect_account=suspect,
        ))  # fmt: skip

    while len(made) < count:
        start = T0_MS + rnd.randrange(30 * DAY_MS)
        kind = rnd.random()
        tag = f"{len(made)}"
        if kind < 0.4:  # one mule splits a victim's money
            mule = f"mule-{tag}"
            for i in range(rnd.randint(10, 40)):
                alert(mule, f"{mule}-to-{i}", start + i * 120_000, mule, "fan_out_rapid",
                      rnd.uniform(0.6, 0.95))  # fmt: skip
        elif kind < 0.8:  # a ring: a collector, mules, cash-out
            ring = [f"ring-{tag}-m{i}" for i in range(rnd.randint(3, 8))]
            for i in range(rnd.randint(3, 10)):
                alert(f"victim-{tag}-{i}", ring[0], start + i * 300_000, ring[0],
                      "fan_in_collection", rnd.uniform(0.6, 0.9))  # fmt: skip
            for hop, (src, dst) in enumerate(itertools.pairwise(ring)):
                for i in range(rnd.randint(1, 4)):
                    alert(src, dst, start + 3_600_000 + hop * 900_000 + i * 60_000, src,
                          "mule_pass_through", rnd.uniform(0.65, 0.99))  # fmt: skip
        else:  # a false positive
            alert(f"payer-{tag}", f"payee-{tag}", start, f"payee-{tag}", "model",
                  rnd.uniform(0.5, 0.7))  # fmt: skip
    made.sort(key=lambda a: a.ts_ms)
    return made[:count]


def store(redis_url: str, count: int, seed: int) -> tuple[float, list[str]]:
    """Store and group the alerts, decide a third of the cases; the seconds it took and some
    suspect accounts (for the account filter)."""
    from models.workflow import Actor
    from service import wiring
    from service.settings import Settings
    from streams.state.case_store import CASES_ALL, CaseReader

    settings = Settings(redis_url=redis_url)
    client = wiring.redis_client(settings)
    sink = wiring.alert_sink(settings, client)
    alerts = _alerts(count, seed)
    began = time.perf_counter()
    for start in range(0, len(alerts), 500):
        sink.put_alerts(alerts[start : start + 500])
    took = time.perf_counter() - began
    reader = CaseReader(client)
    alert_store = wiring.alert_store(settings, client)
    rnd = random.Random(seed)
    actor = Actor("bench", "bench", "investigator")
    live = [m.decode() for m in client.zrange(CASES_ALL, 0, -1)]  # type: ignore[union-attr]
    for case_id in rnd.sample(live, len(live) // 3):
        _, ids = reader.alert_ids(case_id, 10_000)
        action: Action = "confirm_fraud" if rnd.random() < 0.6 else "dismiss"
        alert_store.apply_many(ids, action, actor, "bench", "2026-04-01T00:00:00Z")
    suspects = [a.suspect_account or "" for a in alerts[:: max(1, len(alerts) // 200)]]
    client.close()
    return took, suspects


def _first_page_cursor(port: int) -> str | None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/cases?limit=50",
                                     headers={"Authorization": f"Bearer {API_KEY}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        cursor: str | None = json.load(response)["next_cursor"]
    return cursor


def run(args: argparse.Namespace) -> dict[str, object]:
    """Start Redis, store, start the API, measure, stop; return the figures."""
    from service.embedded import embedded_services, free_port

    with (
        tempfile.TemporaryDirectory(prefix="case-bench-") as tmp,
        embedded_services(Path(tmp) / "services") as services,
    ):
        stored_s, suspects = store(services.redis_url, args.alerts, args.seed)
        port = free_port()
        api = start_api(services.redis_url, port, args.api_workers, Path(tmp) / "api.log")
        try:
            wait_ready(f"http://127.0.0.1:{port}")
            cursor = _first_page_cursor(port)
            shapes: list[str] = ["/v1/cases?limit=50", "/v1/cases?status=open&limit=50",
                                 "/v1/cases?severity=critical&limit=50"]  # fmt: skip
            if cursor:
                shapes.append(f"/v1/cases?limit=50&cursor={cursor}")
            count = int(args.rate * args.duration)
            requests: list[Request] = []
            for i in range(count):
                path = shapes[i % len(shapes)] if i % 5 else (
                    f"/v1/cases?account={suspects[i % len(suspects)]}")  # fmt: skip
                requests.append(("GET", path, None))
            load_in_process(port, requests[:200], min(args.rate, 100.0), args.threads)
            # CPU per request, as screen_bench measures it: unlike latency on a shared
            # machine, it says what a request costs whatever else is running.
            api_pids = procstats.session_pids(api.pid)
            api_cpu = sum(procstats.cpu_seconds(pid) for pid in api_pids)
            redis_cpu = procstats.cpu_seconds(services.redis.pid)
            results, elapsed, _ = load_in_process(port, requests, args.rate, args.threads)
            api_cpu = sum(procstats.cpu_seconds(pid) for pid in api_pids) - api_cpu
            redis_cpu = procstats.cpu_seconds(services.redis.pid) - redis_cpu
        finally:
            api.stop()
    latencies = sorted(ms * 1000 for ms, status in results if status == 200)
    return {
        "alerts_stored": args.alerts,
        "store_and_group_alerts_per_s": round(args.alerts / stored_s, 1),
        "offered_rate": args.rate,
        "achieved_rate": round(len(results) / elapsed, 1),
        "requests": len(results),
        "errors": sum(1 for _, status in results if status != 200),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p95_ms": round(percentile(latencies, 0.95), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(latencies[-1], 2) if latencies else None,
        "cpu_ms_per_request": {
            "api": round(api_cpu * 1000 / max(len(results), 1), 3),
            "redis": round(redis_cpu * 1000 / max(len(results), 1), 3),
        },
        "load_average_1m": round(os.getloadavg()[0], 2),
        "api_workers": args.api_workers,
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print its JSON."""
    parser = argparse.ArgumentParser(prog="python -m loadtest.case_bench", description=__doc__)
    parser.add_argument("--alerts", type=int, default=100_000, help="alerts stored")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second offered")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--api-workers", type=int, default=1, help="FRAUDWATCH_API_WORKERS")
    parser.add_argument("--threads", type=int, default=8, help="client threads (connections)")
    parser.add_argument("--seed", type=int, default=7)
    print(json.dumps(run(parser.parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
