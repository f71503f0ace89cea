"""What Redis says about a phase: command, byte and memory deltas, and key counts, per node
(one for a single Redis, one per primary of a cluster) and in total."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from streams.state.alert_store import ALL_INDEX
from streams.state.pipelines import AnyRedis
from streams.state.windows import applied_transfers


@dataclass(frozen=True)
class NodeSnapshot:
    """One node's server-wide counters at one moment."""

    name: str
    commands: int
    net_input_bytes: int
    net_output_bytes: int
    used_memory: int
    keys: int

    @classmethod
    def take(cls, client: redis.Redis) -> NodeSnapshot:
        """Read INFO stats, memory and the key count now."""
        stats, memory = client.info("stats"), client.info("memory")
        kwargs = client.connection_pool.connection_kwargs
        return cls(
            name=f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}",
            commands=int(stats["total_commands_processed"]),
            net_input_bytes=int(stats["total_net_input_bytes"]),
            net_output_bytes=int(stats["total_net_output_bytes"]),
            used_memory=int(memory["used_memory"]),
            keys=int(client.dbsize()),
        )

    def minus(self, earlier: NodeSnapshot) -> NodeSnapshot:
        """The change since `earlier` (the key count as it is now)."""
        return NodeSnapshot(
            name=self.name,
            commands=self.commands - earlier.commands,
            net_input_bytes=self.net_input_bytes - earlier.net_input_bytes,
            net_output_bytes=self.net_output_bytes - earlier.net_output_bytes,
            used_memory=self.used_memory - earlier.used_memory,
            keys=self.keys,
        )


@dataclass(frozen=True)
class RedisSnapshot:
    """Every node's counters at one moment, and their totals."""

    nodes: tuple[NodeSnapshot, ...]

    @classmethod
    def take(cls, nodes: Sequence[redis.Redis]) -> RedisSnapshot:
        """Read every node now."""
        return cls(tuple(NodeSnapshot.take(node) for node in nodes))

    def minus(self, earlier: RedisSnapshot) -> RedisSnapshot:
        """The change since `earlier`, node by node."""
        before = {node.name: node for node in earlier.nodes}
        return RedisSnapshot(tuple(n.minus(before[n.name]) for n in self.nodes if n.name in before))

    @property
    def commands(self) -> int:
        """Commands processed, every node."""
        return sum(node.commands for node in self.nodes)

    @property
    def net_input_bytes(self) -> int:
        """Bytes received, every node."""
        return sum(node.net_input_bytes for node in self.nodes)

    @property
    def net_output_bytes(self) -> int:
        """Bytes sent, every node."""
        return sum(node.net_output_bytes for node in self.nodes)

    @property
    def used_memory(self) -> int:
        """Memory in use, every node."""
        return sum(node.used_memory for node in self.nodes)


def count_keys(client: AnyRedis, pattern: str) -> int:
    """Keys matching `pattern` (SCAN, never KEYS; on a cluster, every primary)."""
    return sum(1 for _ in client.scan_iter(match=pattern, count=10_000))


def processed_transfers(client: AnyRedis) -> int:
    """Distinct transfers whose payer-side state was applied: their outgoing entries."""
    return applied_transfers(client)


def stored_alerts(client: AnyRedis) -> int:
    """Alerts stored in Redis (each alert id once)."""
    return int(client.zcard(ALL_INDEX))
