"""Running fraudwatch: `up`, `demo`, `worker`, `api` and `produce`."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from service.cli.simulate_cmd import positive_int
from service.settings import Settings, shown_url
from service.stack_runtime import (
    RunningStack,
    StackRefused,
    resolve_settings,
    run_demo_traffic,
    start_stack,
)

if TYPE_CHECKING:
    from fastapi import FastAPI


def _logged_settings() -> Settings:
    """The resolved settings, with logging configured by them (each serving process's start)."""
    from service.logs import configure_logging

    settings = resolve_settings()
    configure_logging(settings.log_level)
    return settings


def _metrics_port_free(port: int) -> None:
    """Refuse a metrics port that another process (a second worker on this host) listens on,
    naming the setting, before the worker connects to anything."""
    from service.wiring import NotConfigured

    with socket.socket() as probe:
        # As the metrics server binds: a port whose last connections are closing is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as error:
            raise NotConfigured(
                f"FRAUDWATCH_WORKER_METRICS_PORT={port} cannot be used ({error.strerror}): each "
                "worker on a host needs a port of its own, or 0 for no metrics endpoint"
            ) from error


def _worker(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from service import wiring

    settings = _logged_settings()
    if settings.worker_metrics_port:
        _metrics_port_free(settings.worker_metrics_port)
    worker = wiring.build_worker(settings)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr="0.0.0.0")
    worker.install_signal_handlers()
    return worker.run()


def served_app() -> FastAPI:
    """The app of one `fraudwatch api` process. uvicorn calls it in every worker process it
    starts, so each resolves the settings (and finds a running stack) as the command does."""
    from service.app import create_app

    return create_app(_logged_settings())


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    from service import wiring
    from service.http_protocol import BoundedHttpToolsProtocol

    settings = _logged_settings()
    # Said here, in one line, rather than as a traceback from inside uvicorn's start-up.
    wiring.redis_client(settings).close()  # NotConfigured without an address
    # More than one process serves in parallel on more cores; each screens its own batches.
    uvicorn.run(
        "service.cli.stack:served_app",
        factory=True,
        workers=settings.api_workers,
        host=settings.api_host,
        port=settings.api_port,
        http=BoundedHttpToolsProtocol,
        log_config=None,
        access_log=False,
    )
    return 0


def _produce(args: argparse.Namespace) -> int:
    from service.wiring import kafka_bootstrap
    from streams.produce import LinesTooLarge, produce_accounts_file, produce_file

    settings = resolve_settings()
    bootstrap = kafka_bootstrap(settings)
    path = Path(args.file)
    if not path.is_file():
        print(f"{path}: no such file", file=sys.stderr)
        return 2
    send, topic = ((produce_accounts_file, settings.topic_accounts) if args.accounts
                   else (produce_file, settings.topic_transfers))  # fmt: skip
    try:
        count = send(path, bootstrap, topic)
    except LinesTooLarge as refused:
        print(f"{path}: {refused}", file=sys.stderr)
        return 1
    print(f"sent {count} messages to {topic} at {bootstrap}")
    return 0


def _rate(value: str) -> float:
    """A rate of transfers per second: a number above 0 (checked before the stack starts)."""
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 < rate < float("inf"):
        raise argparse.ArgumentTypeError("must be above 0")
    return rate


def _announce(stack: RunningStack) -> None:
    services = stack.services
    print(f"fraudwatch is running\n  API:      {stack.api_url}  (docs at {stack.api_url}/docs)")
    print(f"  API key:  {stack.api_key}")
    print(f"  Kafka:    {services.kafka_bootstrap}  {services.kafka_source}")
    print(f"  Redis:    {shown_url(services.redis_url)}  {services.redis_source}")
    print(f"  run file: {stack.run_file}\nPress Ctrl-C to stop.", flush=True)


def _up(args: argparse.Namespace) -> int:
    try:
        with start_stack(Settings()) as stack:
            _announce(stack)
            return stack.wait()
    except StackRefused as refused:
        print(f"fraudwatch up: {refused}", file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace) -> int:
    try:
        with start_stack(Settings()) as stack:
            _announce(stack)
            return run_demo_traffic(stack, rate=args.rate, seed=args.seed, accounts=args.accounts)
    except StackRefused as refused:
        print(f"fraudwatch demo: {refused}", file=sys.stderr)
        return 2


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the running commands."""
    up = subparsers.add_parser(
        "up", help="start worker and API on the configured broker and Redis, embedding those "
        "that are not configured",
    )
    up.set_defaults(run=_up)

    demo = subparsers.add_parser("demo", help="`up` plus a live stream of synthetic traffic")
    demo.add_argument(
        "--rate", type=_rate, default=300.0, help="transfers per second (default 300)"
    )
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--accounts", type=positive_int, default=20000, help="simulated accounts")
    demo.set_defaults(run=_demo)

    worker = subparsers.add_parser("worker", help="run one scoring worker")
    worker.set_defaults(run=_worker)

    api = subparsers.add_parser("api", help="run the HTTP API")
    api.set_defaults(run=_api)

    produce = subparsers.add_parser(
        "produce", help="send a JSON Lines file (plain or .gz) to the running stack"
    )
    produce.add_argument("file")
    produce.add_argument("--accounts", action="store_true", help="the file holds account profiles")
    produce.set_defaults(run=_produce)
