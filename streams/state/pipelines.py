"""One name for "a Redis client" and for "a pipeline to queue reads on", whether Redis is one
server or a cluster: the state modules queue reads on either, and the caller sends them."""

from __future__ import annotations

from typing import TypeAlias

import redis.asyncio.client
import redis.asyncio.cluster
import redis.client
import redis.cluster

AnyRedis: TypeAlias = redis.Redis | redis.cluster.RedisCluster
AnyAsyncRedis: TypeAlias = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
# A blocking pipeline (the API's routes and screening run on threads with the blocking client).
Pipeline: TypeAlias = redis.client.Pipeline | redis.cluster.ClusterPipeline
# The asyncio one (authentication, a coroutine on the event loop).
AsyncPipeline: TypeAlias = redis.asyncio.client.Pipeline | redis.asyncio.cluster.ClusterPipeline
