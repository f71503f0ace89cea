"""What Redis says about a phase: command, byte and memory deltas, and key counts."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from streams.state.alert_store import ALL_INDEX


@dataclass(frozen=True)
class RedisSnapshot:
    """Server-wide counters at one moment."""

    commands: int
    net_input_bytes: int
    net_output_bytes: int
    used_memory: int

    @classmethod
    def take(cls, client: redis.Redis) -> RedisSnapshot:
        """Read INFO stats and memory now."""
        stats, memory = client.info("stats"), client.info("memory")
        return cls(
            commands=int(stats["total_commands_processed"]),
            net_input_bytes=int(stats["total_net_input_bytes"]),
            net_output_bytes=int(stats["total_net_output_bytes"]),
            used_memory=int(memory["used_memory"]),
        )

    def minus(self, earlier: RedisSnapshot) -> RedisSnapshot:
        """The change since `earlier`."""
        return RedisSnapshot(
            commands=self.commands - earlier.commands,
            net_input_bytes=self.net_input_bytes - earlier.net_input_bytes,
            net_output_bytes=self.net_output_bytes - earlier.net_output_bytes,
            used_memory=self.used_memory - earlier.used_memory,
        )


def count_keys(client: redis.Redis, pattern: str) -> int:
    """Keys matching `pattern` in the current database (SCAN, never KEYS)."""
    return sum(1 for _ in client.scan_iter(match=pattern, count=10_000))


def processed_transfers(client: redis.Redis) -> int:
    """Distinct transfers whose payer-side state was applied: their dedupe records."""
    return count_keys(client, "fw:{a:*}:pf:*")


def stored_alerts(client: redis.Redis) -> int:
    """Alerts stored in Redis (each alert id once)."""
    return int(client.zcard(ALL_INDEX))
