"""fraudwatch's state needs a Redis that never evicts. One that does (any `maxmemory-policy`
but `noeviction`: every state key has a TTL, so even the `volatile-*` policies take them)
drops state without a word at its memory limit: windows and profiles vanish, dedupe records
go (a redelivered transfer counts twice), alerts and the layout marker go. At its limit a
`noeviction` Redis refuses writes instead, which the worker retries until memory is freed."""

from __future__ import annotations

import redis.cluster

from streams.state.pipelines import AnyRedis

SAFE_POLICY = "noeviction"


class EvictingRedis(RuntimeError):
    """Redis (or a primary of a cluster) would evict fraudwatch's state under memory pressure."""

    def __init__(self, policies: dict[str, str]) -> None:
        named = ", ".join(f"{node}: {policy}" for node, policy in sorted(policies.items()))
        super().__init__(
            f"Redis evicts keys at its memory limit (maxmemory-policy {named}), which would "
            "drop fraud state, alerts and dedupe records without a word; set "
            f"`maxmemory-policy {SAFE_POLICY}` (deploy/redis/redis.conf) and raise maxmemory "
            "instead: deploy/RUNBOOK.md, FraudwatchRedisEvicting"
        )
        self.policies = policies


def eviction_policies(client: AnyRedis) -> dict[str, str]:
    """`maxmemory-policy` of each primary (INFO answers where CONFIG may be renamed away)."""
    if isinstance(client, redis.cluster.RedisCluster):
        infos = client.info("memory", target_nodes=redis.cluster.RedisCluster.PRIMARIES)
        return {str(node): str(info["maxmemory_policy"]) for node, info in infos.items()}
    return {"redis": str(client.info("memory")["maxmemory_policy"])}


def refuse_eviction(client: AnyRedis) -> None:
    """Raise `EvictingRedis` unless every primary keeps `noeviction`."""
    evicting = {n: p for n, p in eviction_policies(client).items() if p != SAFE_POLICY}
    if evicting:
        raise EvictingRedis(evicting)
