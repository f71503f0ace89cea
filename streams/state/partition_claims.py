"""Which partitions the members of a consumer group have claimed in its current generation,
kept in Redis. A partition that nobody claimed in this generation, while the group has
records of it not committed, is held by a member that died and keeps it until its session
expires (see `streams.event_time_merge`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import redis
from kafka import TopicPartition
from redis.typing import EncodableT, FieldT

from streams.failures import describe
from streams.state.pipelines import AnyRedis

log = logging.getLogger("fraudwatch.worker")

# A retired group's claims go once nobody has written them for this long.
_KEEP_MS = 7 * 86_400_000
# Followed by the group's name and `}`: a key of coordination, not of the fraud state.
KEY_PREFIX = "fw:{claims:"


def _field(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"


class RedisPartitionClaims:
    """One hash per consumer group: per partition, the last generation a member claimed it in.

    Redis being unreachable is not an error here: a claim not written leaves the others
    waiting for this member's partitions a while, a claim not read leaves this member waiting.
    """

    def __init__(self, client: AnyRedis, group: str) -> None:
        self._client = client
        self._key = f"{KEY_PREFIX}{group}}}"

    def claim(self, generation: int, partitions: Sequence[TopicPartition]) -> bool:
        """Claim `partitions` for this member in `generation`; False if Redis did not take it."""
        if not partitions:
            return True
        values: dict[FieldT, EncodableT] = {_field(tp): generation for tp in partitions}
        try:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.hset(self._key, mapping=values)
                pipe.pexpire(self._key, _KEEP_MS)
                pipe.execute()
        except redis.RedisError as error:
            log.warning("partitions not claimed", extra={"event": "claim_failed",
                                                         "error": describe(error)})  # fmt: skip
            return False
        return True

    def generations(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The generation each of `partitions` was last claimed in (those ever claimed)."""
        if not partitions:
            return {}
        try:
            values = self._client.hmget(self._key, [_field(tp) for tp in partitions])
        except redis.RedisError as error:
            log.debug("partition claims not read", extra={"event": "claims_unread",
                                                          "error": describe(error)})  # fmt: skip
            return {}
        return {tp: int(v) for tp, v in zip(partitions, values, strict=True) if v is not None}
