"""The embedded stack as one unit: services, topics, worker and API as child processes.

`fraudwatch up` and `fraudwatch demo` run it; `produce`, `keys` and friends find it through
the run file. With FRAUDWATCH_KAFKA_BOOTSTRAP and FRAUDWATCH_REDIS_URL set, no service is
started and those are used instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from service.embedded import EmbeddedServices, ManagedProcess, free_port, spawn, start_embedded
from service.embedded.process import port_open
from service.settings import Settings


def resolve_settings() -> Settings:
    """Settings from the environment, with addresses filled from a running stack's run file."""
    settings = Settings()
    if settings.kafka_bootstrap and settings.redis_url:
        return settings
    try:
        run = json.loads(settings.run_file.read_text())
    except (OSError, ValueError):
        return settings
    updates = {
        "kafka_bootstrap": settings.kafka_bootstrap or run.get("kafka_bootstrap"),
        "redis_url": settings.redis_url or run.get("redis_url"),
    }
    return settings.model_copy(update=updates)


@dataclass
class RunningStack:
    """Addresses and children of a running stack."""

    settings: Settings
    api_url: str
    api_key: str
    kafka_bootstrap: str
    redis_url: str
    run_file: Path
    children: list[ManagedProcess] = field(default_factory=list)
    # A plain flag, set by the signal handler: setting a threading.Event there deadlocks when
    # the signal lands while this same thread holds the event's lock inside `wait`.
    stop_requested: bool = False

    def wait(self) -> int:
        """Block until Ctrl-C / SIGTERM (exit 0) or a child dies (exit 1)."""
        while not self.stop_requested:
            time.sleep(0.2)
            for child in self.children:
                if not child.alive():
                    print(
                        f"{child.name} exited with code {child.popen.returncode}; "
                        f"its log ends:\n{child.log_tail()}",
                        file=sys.stderr,
                    )
                    return 1
        return 0


def _wait_for_api(url: str, proc: ManagedProcess, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"the API exited during start-up:\n{proc.log_tail()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/readyz", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the API did not become ready in {timeout_s:.0f} s:\n{proc.log_tail()}")


@contextlib.contextmanager
def start_stack(settings: Settings) -> Iterator[RunningStack]:
    """Start whatever is needed, yield the running stack, and stop all of it on exit."""
    from streams.topics import ensure_topics, fraudwatch_topics

    home = settings.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    services: EmbeddedServices | None = None
    stack: RunningStack | None = None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if settings.kafka_bootstrap and settings.redis_url:
            kafka, redis_url = settings.kafka_bootstrap, settings.redis_url
        else:
            services = start_embedded(home / "services")
            kafka, redis_url = services.kafka_bootstrap, services.redis_url
        ensure_topics(kafka, fraudwatch_topics(settings), settings.partitions)

        api_key = (settings.bootstrap_api_keys() or [secrets.token_urlsafe(24)])[0]
        api_port = settings.api_port if not port_open(settings.api_port) else free_port()
        metrics_dir = home / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()
        env = {
            **os.environ,
            "FRAUDWATCH_KAFKA_BOOTSTRAP": kafka,
            "FRAUDWATCH_REDIS_URL": redis_url,
            "FRAUDWATCH_API_KEYS": ",".join([api_key, *settings.bootstrap_api_keys()[1:]]),
            "FRAUDWATCH_API_PORT": str(api_port),
            "FRAUDWATCH_WORKER_METRICS_PORT": "0",
            # The API's /metrics then also shows the worker's counters.
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        command = [sys.executable, "-m", "service.cli"]
        worker = spawn("worker", [*command, "worker"], home / "logs" / "worker.log", env=env)
        api = spawn("api", [*command, "api"], home / "logs" / "api.log", port=api_port, env=env)
        api_url = f"http://{settings.api_host}:{api_port}"
        stack = RunningStack(
            settings, api_url, api_key, kafka, redis_url, settings.run_file.resolve(), [worker, api]
        )

        def request_stop(_signum: int, _frame: object) -> None:
            assert stack is not None
            stack.stop_requested = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        _wait_for_api(api_url, api)
        write_private(
            stack.run_file,
            json.dumps(
                {
                    "api_url": api_url,
                    "api_key": api_key,
                    "kafka_bootstrap": kafka,
                    "redis_url": redis_url,
                    "metrics_url": f"{api_url}/metrics",
                    "pid": os.getpid(),
                },
                indent=2,
            ),
        )
        yield stack
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if stack is not None:
            for child in reversed(stack.children):
                child.stop(timeout_s=15)
            with contextlib.suppress(OSError):
                stack.run_file.unlink()
        if services is not None:
            services.stop()


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner may read or write (mode 0600, also when the file
    was already there): the run file holds the admin key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)


_SAMPLE = re.compile(r"^(fraudwatch_\w+?)(?:\{(.*)\})? ([0-9.eE+-]+)$")


def _scrape(url: str) -> tuple[float, dict[str, float]]:
    """Transfers scored so far and alerts by rule, from the API's /metrics."""
    transfers = 0.0
    by_rule: dict[str, float] = {}
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            match = _SAMPLE.match(line)
            if not match:
                continue
            name, labels, value = match.groups()
            if name == "fraudwatch_transfers_total":
                transfers += float(value)
            elif name == "fraudwatch_alerts_total" and labels:
                rule = dict(p.split("=", 1) for p in labels.split(",")).get("rule", '"?"')
                by_rule[rule.strip('"')] = by_rule.get(rule.strip('"'), 0.0) + float(value)
    return transfers, by_rule


def run_demo_traffic(stack: RunningStack, *, rate: float, seed: int, accounts: int) -> int:
    """Produce live synthetic traffic at `rate` per second and print progress every second."""
    from models.simulator import live_profiles, live_stream
    from streams.kafka_io import acked_producer

    producer = acked_producer(stack.kafka_bootstrap, client_id="fraudwatch-demo")
    settings = stack.settings
    for profile in live_profiles(seed, accounts):
        producer.send(
            settings.topic_accounts,
            key=str(profile["account_id"]).encode(),
            value=json.dumps(profile).encode(),
        )
    producer.flush()
    stream = live_stream(seed, accounts, rate, lambda: datetime.now(UTC))
    started = time.monotonic()
    sent = 0
    last_report = started
    last_scored = 0.0
    while not stack.stop_requested:
        due = int((time.monotonic() - started) * rate)
        while sent < due:
            transfer = next(stream)
            producer.send(
                settings.topic_transfers,
                key=str(transfer["src_account"]).encode(),
                value=json.dumps(transfer).encode(),
            )
            sent += 1
        now = time.monotonic()
        if now - last_report >= 1.0:
            with contextlib.suppress(OSError, ValueError):
                scored, by_rule = _scrape(f"{stack.api_url}/metrics")
                tps = (scored - last_scored) / (now - last_report)
                last_scored = scored
                rules = ", ".join(f"{r} {n:.0f}" for r, n in sorted(by_rule.items())) or "none yet"
                behind = max(0, sent - int(scored))
                print(
                    f"\rsent {sent}  scored {scored:.0f} ({behind} behind)  {tps:6.0f} transfers/s"
                    f"  alerts: {rules}",
                    end="",
                    flush=True,
                )
            last_report = now
        for child in stack.children:
            if not child.alive():
                print(f"\n{child.name} exited:\n{child.log_tail()}", file=sys.stderr)
                return 1
        time.sleep(0.01)
    producer.flush()
    producer.close()
    print()
    return 0
