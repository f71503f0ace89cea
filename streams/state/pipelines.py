"""One name for "a pipeline to queue reads on", sync or asyncio.

Queuing a command is the same call on both of redis-py's pipelines; only `execute()` differs
(a plain call, or a coroutine). Reads that are queued by one module and sent by another take
either, so the API can send them from its event loop without blocking it."""

from __future__ import annotations

from typing import TypeAlias

import redis.asyncio.client
import redis.client

AnyPipeline: TypeAlias = redis.client.Pipeline | redis.asyncio.client.Pipeline
