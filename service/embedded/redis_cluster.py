"""A local Redis Cluster of Debian's `redis-server` processes on loopback: `masters` primaries,
each with `replicas` replicas, formed with `redis-cli --cluster create`.

For the load test's scale story (`--redis-cluster N`), the cluster integration tests and
`fraudwatch up` with FRAUDWATCH_REDIS_CLUSTER=true and no Redis of its own configured.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import redis

from service.embedded.process import (
    ManagedProcess,
    ServiceStartError,
    free_port,
    spawn,
    wait_ready,
)
from service.embedded.redis_server import STATE_TUNING, debian_binary, redis_binary


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=2)


def _answers(port: int) -> bool:
    client = _client(port)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@dataclass
class LocalCluster:
    """A running local cluster: its node processes (primaries first, as created)."""

    workdir: Path
    nodes: tuple[ManagedProcess, ...]
    masters: int

    def start_again(self, port: int) -> ManagedProcess:
        """Start the node of `port` again after it exited, as it was started: same ports,
        cluster configuration and data directory, so it rejoins with its slots (and, when
        durable, its data). It replaces the exited process in `nodes`."""
        exited = self.node(port)
        argv = cast("list[str]", exited.popen.args)  # `spawn` passes its argv as a list
        proc = spawn("redis-server", argv, exited.log_path, port=port)
        wait_ready(proc, lambda: _answers(port), timeout_s=15, what=f"cluster node on port {port}")
        self.nodes = tuple(proc if node is exited else node for node in self.nodes)
        return proc

    @property
    def url(self) -> str:
        """A URL naming one node: cluster clients find the others from it."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    @property
    def ports(self) -> list[int]:
        """Every node's port."""
        return [int(node.port or 0) for node in self.nodes]

    def node(self, port: int) -> ManagedProcess:
        """The process listening on `port`."""
        return next(node for node in self.nodes if node.port == port)

    def primaries(self) -> list[int]:
        """The ports of the nodes that are primaries now (failovers move them)."""
        return [port for port in self.ports if _role(port) == "master"]

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop every node; safe to call twice."""
        for node in reversed(self.nodes):
            node.stop(timeout_s)


def _role(port: int) -> str | None:
    client = _client(port)
    try:
        return str(client.info("replication")["role"])
    except redis.RedisError:
        return None
    finally:
        client.close()


def _start_node(workdir: Path, binary: str, node_timeout_ms: int, durable: bool) -> ManagedProcess:
    port, bus = free_port(), free_port()
    data_dir = workdir / f"node-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    persistence = ["--appendonly", "yes", "--appendfsync", "always"] if durable else []
    argv = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
        "--cluster-port", str(bus), "--cluster-config-file", str(data_dir / "nodes.conf"),
        "--cluster-node-timeout", str(node_timeout_ms), "--save", "",
        *(persistence or ["--appendonly", "no"]), *STATE_TUNING, "--daemonize", "no",
        "--dir", str(data_dir),
    ]  # fmt: skip
    proc = spawn("redis-server", argv, workdir / f"node-{port}.log", port=port)
    wait_ready(proc, lambda: _answers(port), timeout_s=15, what=f"cluster node on port {port}")
    return proc


def cluster_ready(ports: list[int], replicas: int) -> bool:
    """Every node sees the cluster `ok` with all slots served, and every replica has
    synced with its primary."""
    for port in ports:
        client = _client(port)
        try:
            fields = client.cluster("INFO")  # redis-py parses it into a dict
            if fields.get("cluster_state") != "ok" or int(fields["cluster_slots_ok"]) != 16384:
                return False
            if int(fields["cluster_known_nodes"]) != len(ports):
                return False
            replication = client.info("replication")
            if replication["role"] == "slave" and replication["master_link_status"] != "up":
                return False
            if replication["role"] == "master" and replication["connected_slaves"] < replicas:
                return False
        except redis.RedisError:
            return False
        finally:
            client.close()
    return True


def wait_cluster_ready(ports: list[int], replicas: int, timeout_s: float = 60.0) -> None:
    """Block until `cluster_ready`; ServiceStartError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not cluster_ready(ports, replicas):
        if time.monotonic() > deadline:
            raise ServiceStartError(f"the Redis Cluster on ports {ports} was not ready after "
                                    f"{timeout_s:.0f} s")  # fmt: skip
        time.sleep(0.1)


def start_redis_cluster(
    workdir: Path,
    masters: int = 3,
    replicas: int = 1,
    *,
    durable: bool = False,
    node_timeout_ms: int = 3000,
) -> LocalCluster:
    """Start `masters * (1 + replicas)` nodes, form the cluster and wait until it serves
    every slot. The caller owns the result and must `stop()` it."""
    if masters < 3:
        raise ServiceStartError("a Redis Cluster needs at least 3 primaries")
    workdir.mkdir(parents=True, exist_ok=True)
    binary, cli = redis_binary(), debian_binary("redis-cli", "redis-tools")
    nodes: list[ManagedProcess] = []
    try:
        for _ in range(masters * (1 + replicas)):
            nodes.append(_start_node(workdir, binary, node_timeout_ms, durable))
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        created = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(replicas),
             "--cluster-yes"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if created.returncode != 0:
            raise ServiceStartError(f"redis-cli --cluster create failed:\n{created.stdout}"
                                    f"\n{created.stderr}")  # fmt: skip
        ports = [int(node.port or 0) for node in nodes]
        wait_cluster_ready(ports, replicas)
    except BaseException:
        for node in reversed(nodes):
            node.stop()
        raise
    return LocalCluster(workdir, tuple(nodes), masters)
