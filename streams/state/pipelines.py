"""One name for "a Redis client" and for "a pipeline to queue reads on": one server or a
cluster, sync or asyncio.

Queuing a command is the same call on all of redis-py's pipelines; only `execute()` differs
(a plain call, or a coroutine). Reads that are queued by one module and sent by another take
any of them, so the API can send them from its event loop without blocking it."""

from __future__ import annotations

from typing import TypeAlias

import redis.asyncio.client
import redis.asyncio.cluster
import redis.client
import redis.cluster

AnyRedis: TypeAlias = redis.Redis | redis.cluster.RedisCluster
AnyAsyncRedis: TypeAlias = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
AnyPipeline: TypeAlias = (
    redis.client.Pipeline
    | redis.asyncio.client.Pipeline
    | redis.cluster.ClusterPipeline
    | redis.asyncio.cluster.ClusterPipeline
)
