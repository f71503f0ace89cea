"""The embedded stack as one unit: services, topics, worker and API as child processes.

`fraudwatch up` and `fraudwatch demo` run it; `produce`, `keys` and friends find it through
the run file. Each service that is configured (FRAUDWATCH_KAFKA_BOOTSTRAP, FRAUDWATCH_REDIS_URL
with FRAUDWATCH_REDIS_CLUSTER) is used, after checking it answers; only the missing ones are
started: a Tansu broker, a redis-server, or with FRAUDWATCH_REDIS_CLUSTER and no URL a local
Redis Cluster of three primaries. `up` says which it uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from service.embedded import ManagedProcess, free_port, spawn
from service.embedded.broker import start_broker
from service.embedded.process import port_open
from service.embedded.redis_cluster import start_redis_cluster
from service.embedded.redis_server import start_redis
from service.settings import Settings

# Held by the `up` that runs on a home (with its pid); see `hold_home`.
LOCK_FILE = "up.lock"
# The local cluster `up` starts when asked for a cluster without naming one.
EMBEDDED_CLUSTER_PRIMARIES = 3
# A part that exits this many times within a minute is not started again: the stack stops.
RESTARTS_PER_MINUTE = 5


@dataclass(eq=False)
class Supervised:
    """A part of the stack (the worker, the API, an embedded service) that is started again
    when it exits: a killed worker must not take the API and the data down with it."""

    proc: ManagedProcess
    restart: Callable[[], ManagedProcess]
    # What the operator should know once it runs again (what it kept, what it lost).
    after_restart: str = ""
    # When it was started again, the latest RESTARTS_PER_MINUTE - 1 times.
    _recent: deque[float] = field(
        default_factory=lambda: deque(maxlen=RESTARTS_PER_MINUTE - 1)
    )

    def check(self) -> bool:
        """Start it again if it exited (saying so); False if it keeps exiting."""
        if self.proc.alive():
            return True
        print(f"{self.proc.name} exited with code {self.proc.popen.returncode}; its log ends:\n"
              f"{self.proc.log_tail()}", file=sys.stderr, flush=True)  # fmt: skip
        now = time.monotonic()
        if len(self._recent) == RESTARTS_PER_MINUTE - 1 and now - self._recent[0] < 60:
            print(f"{self.proc.name} exited {RESTARTS_PER_MINUTE} times within a minute; "
                  "stopping the stack", file=sys.stderr, flush=True)  # fmt: skip
            return False
        self._recent.append(now)
        self.proc.stop()  # reaps it (and anything left in its process group)
        try:
            self.proc = self.restart()
        except Exception as error:  # e.g. its port still taken: tried again on the next check
            print(f"{self.proc.name} could not be started again: {error}", file=sys.stderr,
                  flush=True)  # fmt: skip
            return True
        print(f"{self.proc.name} started again (pid {self.proc.pid}). {self.after_restart}",
              file=sys.stderr, flush=True)  # fmt: skip
        return True


def resolve_settings() -> Settings:
    """Settings from the environment, with addresses filled from a running stack's run file."""
    settings = Settings()
    if settings.kafka_bootstrap and settings.redis_url:
        return settings
    try:
        run = json.loads(settings.run_file.read_text())
    except (OSError, ValueError):
        return settings
    updates = {"kafka_bootstrap": settings.kafka_bootstrap or run.get("kafka_bootstrap")}
    if not settings.redis_url:
        updates |= {"redis_url": run.get("redis_url"),
                    "redis_cluster": bool(run.get("redis_cluster", False))}  # fmt: skip
    return settings.model_copy(update=updates)


def http_url(host: str, port: int) -> str:
    """The base URL of an HTTP server on `host` (an IPv6 address in brackets) and `port`."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class StackRefused(RuntimeError):
    """`up` cannot run with this configuration; the message says why and what to do."""


@dataclass
class StackServices:
    """The broker and Redis a stack uses: each configured or embedded, and how to say which."""

    kafka_bootstrap: str
    redis_url: str
    redis_cluster: bool
    kafka_source: str
    redis_source: str
    processes: list[Supervised] = field(default_factory=list)
    clusters: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        """Stop what was embedded (Redis first, the broker last); safe to call twice."""
        for cluster in self.clusters:
            cluster.stop()
        for part in reversed(self.processes):
            part.proc.stop()


def _check_redis(settings: Settings) -> None:
    """Refuse a configured Redis that does not answer as configured."""
    import redis as redis_py
    import redis.cluster

    from service import wiring

    try:
        client = wiring.redis_client(settings)
        client.ping()
        client.close()
    except (redis_py.RedisError, redis_py.cluster.RedisClusterException) as error:
        kind = "Redis Cluster" if settings.redis_cluster else "Redis"
        hint = (
            " (is it a cluster node? unset FRAUDWATCH_REDIS_CLUSTER for a single Redis)"
            if settings.redis_cluster
            else " (a cluster node? set FRAUDWATCH_REDIS_CLUSTER=true)"
            if "MOVED" in str(error) or "CROSSSLOT" in str(error)
            else ""
        )
        raise StackRefused(
            f"the {kind} that FRAUDWATCH_REDIS_URL names does not answer: {error}{hint}"
        ) from error


def provide_services(settings: Settings, workdir: Path) -> StackServices:
    """Use each configured service (refusing one that does not answer) and start the missing
    ones under `workdir`. The caller stops the result."""
    embedded = StackServices("", "", settings.redis_cluster, "", "")
    try:
        if settings.kafka_bootstrap:
            embedded.kafka_bootstrap = settings.kafka_bootstrap
            embedded.kafka_source = "configured (FRAUDWATCH_KAFKA_BOOTSTRAP)"
        else:
            broker = start_broker(workdir)
            bootstrap = embedded.kafka_bootstrap = f"127.0.0.1:{broker.port}"

            def restart_broker(port: int | None = broker.port) -> ManagedProcess:
                from streams.topics import ensure_topics

                again = start_broker(workdir, port)
                ensure_topics(bootstrap, settings.topics(), settings.partitions)
                return again

            embedded.processes.append(Supervised(broker, restart_broker, (
                "It keeps nothing in memory across a restart: transfers produced but not yet "
                "scored before it exited are gone; send them again (`fraudwatch produce`), "
                "what was scored already changes nothing."
            )))  # fmt: skip
            embedded.kafka_source = "embedded Tansu broker (in memory)"
        if settings.redis_url:
            _check_redis(settings)
            embedded.redis_url = settings.redis_url
            embedded.redis_source = "configured (FRAUDWATCH_REDIS_URL" + (
                ", a Redis Cluster)" if settings.redis_cluster else ")"
            )
        elif settings.redis_cluster:
            # Durable and supervised as the single embedded Redis: a node that dies is started
            # again with its slots and data (there are no replicas to take over meanwhile).
            cluster = start_redis_cluster(workdir / "redis-cluster", EMBEDDED_CLUSTER_PRIMARIES, 0,
                                          durable=True)  # fmt: skip
            embedded.clusters.append(cluster)
            for node in cluster.nodes:
                embedded.processes.append(Supervised(
                    node, partial(cluster.start_again, node.port or 0),
                    "It read its append-only file back and serves its slots again: nothing it "
                    "acknowledged was lost.",
                ))  # fmt: skip
            embedded.redis_url = cluster.url
            ports = ", ".join(str(p) for p in cluster.ports)
            embedded.redis_source = (
                f"embedded Redis Cluster ({EMBEDDED_CLUSTER_PRIMARIES} primaries, ports {ports}, "
                f"append-only files in {workdir / 'redis-cluster'})"
            )
        else:
            # Durable: a stack restarted, or a Redis that died and was started again, still has
            # every state update and alert it acknowledged.
            server = start_redis(workdir, durable=True)
            embedded.processes.append(Supervised(
                server, partial(start_redis, workdir, server.port, durable=True),
                "It read its append-only file back: nothing it acknowledged was lost.",
            ))  # fmt: skip
            embedded.redis_url = f"redis://127.0.0.1:{server.port}/0"
            embedded.redis_source = (
                f"embedded redis-server (append-only file in {workdir / 'redis'})"
            )
    except BaseException:
        embedded.stop()
        raise
    return embedded


@dataclass
class RunningStack:
    """Addresses and children of a running stack."""

    settings: Settings
    api_url: str
    api_key: str
    services: StackServices
    run_file: Path
    children: list[Supervised] = field(default_factory=list)
    # A plain flag, set by the signal handler: setting a threading.Event there deadlocks when
    # the signal lands while this same thread holds the event's lock inside `wait`.
    stop_requested: bool = False

    def supervise(self) -> bool:
        """Start again every part that exited, embedded services first; False when one keeps
        exiting (then the stack stops)."""
        return all(part.check() for part in [*self.services.processes, *self.children])

    def wait(self) -> int:
        """Block until Ctrl-C / SIGTERM (exit 0) or a part keeps exiting (exit 1), starting
        again the parts that exit."""
        while not self.stop_requested:
            time.sleep(0.2)
            if not self.supervise():
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


def _check_scoring(settings: Settings) -> None:
    """Refuse, before anything starts, rules, a screening policy or a model file that the
    worker and the API could not load: they would exit at once, again and again, while `up`
    waited a minute for an API that never came. The model's file is verified, not loaded:
    this process would keep scikit-learn's memory for as long as the stack runs."""
    from models.artifact import ModelArtifactError, verify_artifact
    from rules.problems import RuleLibraryError
    from service import wiring

    try:
        wiring.load_policy(settings, wiring.load_rules(settings))
    except RuleLibraryError as error:
        raise StackRefused(str(error)) from None
    try:
        if settings.model_path is not None:
            verify_artifact(settings.model_path)
    except ModelArtifactError as error:
        raise StackRefused(f"{error}; set by FRAUDWATCH_MODEL_PATH (empty: rules alone)") from None


def _check_layout(settings: Settings, services: StackServices) -> None:
    """Refuse, before any worker starts, a Redis holding state of another layout (an
    upgrade that changed it) or of another PII key: the worker would refuse it anyway, started
    again and again."""
    from service import wiring
    from streams.state.eviction import EvictingRedis
    from streams.state.layout import LayoutMismatch, ensure_state_is_ours
    from streams.state.pii_key import PiiKeyMismatch

    used = {"redis_url": services.redis_url, "redis_cluster": services.redis_cluster}
    client = wiring.redis_client(settings.model_copy(update=used))
    try:
        ensure_state_is_ours(client, settings.pii_key.get_secret_value())
    except (LayoutMismatch, PiiKeyMismatch, EvictingRedis) as refused:
        raise StackRefused(str(refused)) from None
    finally:
        client.close()


@contextlib.contextmanager
def start_stack(settings: Settings) -> Iterator[RunningStack]:
    """Start whatever is needed, yield the running stack, and stop all of it on exit."""
    from streams.topics import ensure_topics

    home = settings.home.resolve()
    # The home holds personal data (the embedded Redis's append-only file: raw phones, IPs,
    # device ids) and the logs: this user's alone, and so is all that the stack writes in it.
    umask = os.umask(0o077)
    if home.exists() and not home.is_dir():
        raise StackRefused(f"FRAUDWATCH_HOME={home} is a file, not a directory")
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    try:
        lock = hold_home(home)
    except BaseException:
        os.umask(umask)
        raise
    services: StackServices | None = None
    stack: RunningStack | None = None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _check_scoring(settings)
        services = provide_services(settings, home / "services")
        kafka, redis_url = services.kafka_bootstrap, services.redis_url
        try:
            ensure_topics(kafka, settings.topics(), settings.partitions)
        except Exception as error:
            raise StackRefused(f"the Kafka broker at {kafka} ({services.kafka_source}) "
                               f"does not serve topics: {error}") from error  # fmt: skip
        _check_layout(settings, services)

        api_key = (settings.bootstrap_api_keys() or [secrets.token_urlsafe(24)])[0]
        # 0 (any port) must become a real one: `up` waits for the API on it.
        taken = settings.api_port == 0 or port_open(settings.api_port)
        api_port = free_port() if taken else settings.api_port
        metrics_dir = home / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()
        env = {
            **os.environ,
            "FRAUDWATCH_KAFKA_BOOTSTRAP": kafka,
            "FRAUDWATCH_REDIS_URL": redis_url,
            "FRAUDWATCH_REDIS_CLUSTER": "true" if services.redis_cluster else "false",
            "FRAUDWATCH_API_KEYS": ",".join([api_key, *settings.bootstrap_api_keys()[1:]]),
            "FRAUDWATCH_API_PORT": str(api_port),
            "FRAUDWATCH_WORKER_METRICS_PORT": "0",
            # The API's /metrics then also shows the worker's counters.
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        command = [sys.executable, "-m", "service.cli"]
        start_worker = partial(spawn, "worker", [*command, "worker"], home / "logs" / "worker.log",
                               env=env)  # fmt: skip
        start_api = partial(spawn, "api", [*command, "api"], home / "logs" / "api.log",
                            port=api_port, env=env)  # fmt: skip
        api = start_api()
        parts = [
            Supervised(start_worker(), start_worker,
                       "It redelivers what was not committed; that changes nothing twice."),
            Supervised(api, start_api),
        ]  # fmt: skip
        api_url = http_url(settings.api_host, api_port)
        stack = RunningStack(settings, api_url, api_key, services, settings.run_file.resolve(),
                             parts)  # fmt: skip

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
                    "redis_cluster": services.redis_cluster,
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
            for part in reversed(stack.children):
                part.proc.stop(timeout_s=15)
            with contextlib.suppress(OSError):
                stack.run_file.unlink()
        if services is not None:
            services.stop()
        os.close(lock)
        os.umask(umask)


def hold_home(home: Path) -> int:
    """Hold `home` for one stack; the descriptor to close when it stops (the kernel releases
    the hold however the process ends). Two stacks on one home would append to one Redis
    append-only file, and each would take the other's run file and metrics away."""
    fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StackRefused(f"another `fraudwatch up` (pid {holder}) runs on {home}: stop it, "
                           "or set FRAUDWATCH_HOME to another directory") from None  # fmt: skip
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


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

    producer = acked_producer(stack.services.kafka_bootstrap, client_id="fraudwatch-demo")
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
        if not stack.supervise():
            return 1
        time.sleep(0.01)
    producer.flush()
    producer.close()
    print()
    return 0
