"""How far each worker of a consumer group has read its partitions in event time, shared
through Redis, so that workers catching up on a backlog keep pace with one another and a
worker never reads ahead of partitions held by a member that died (see
`streams.event_time_merge`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import redis
from kafka import TopicPartition
from redis.typing import EncodableT, FieldT

from streams.failures import describe
from streams.state.pipelines import AnyRedis

log = logging.getLogger("fraudwatch.worker")

# A retired group's entries go once nobody has written them for this long.
_KEEP_MS = 7 * 86_400_000
# Followed by the group's name and `}`: a key of coordination, not of the fraud state.
KEY_PREFIX = "fw:{merge:"


def _field(tp: TopicPartition) -> str:
    return f"{tp.topic}:{tp.partition}"


class RedisGroupFrontier:
    """One hash per consumer group: per partition, the group generation its owner wrote in
    and the event time up to which the others may read (`EventTimeMerge` says what that is).

    Redis being unreachable is not an error here: an entry not written stays at an older,
    lower value, and one not read counts as unknown; both only make the others wait longer.
    """

    def __init__(self, client: AnyRedis, group: str) -> None:
        self._client = client
        self._key = f"{KEY_PREFIX}{group}}}"

    def publish(self, generation: int, limits: Mapping[TopicPartition, int]) -> None:
        """Write this member's limits for its partitions in `generation`."""
        if not limits:
            return
        values: dict[FieldT, EncodableT] = {
            _field(tp): f"{generation} {at}" for tp, at in limits.items()
        }
        try:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.hset(self._key, mapping=values)
                pipe.pexpire(self._key, _KEEP_MS)
                pipe.execute()
        except redis.RedisError as error:
            log.debug("frontier not shared", extra={"event": "frontier_not_shared",
                                                    "error": describe(error)})  # fmt: skip

    def read(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, tuple[int, int]]:
        """The (generation, limit) last written for each of `partitions` that has one."""
        if not partitions:
            return {}
        try:
            values = self._client.hmget(self._key, [_field(tp) for tp in partitions])
        except redis.RedisError as error:
            log.debug("frontier not read", extra={"event": "frontier_not_read",
                                                  "error": describe(error)})  # fmt: skip
            return {}
        entries: dict[TopicPartition, tuple[int, int]] = {}
        for tp, value in zip(partitions, values, strict=True):
            if value is not None:
                generation, at = value.split()
                entries[tp] = (int(generation), int(at))
        return entries
