"""Which partitions the members of a consumer group have claimed in its current generation,
and how far in event time each member has read them, kept in Redis. A partition that nobody
claimed in this generation, while the group has records of it not committed, is held by a
member that died and keeps it until its session expires; a partition whose head stops
moving holds the others' live records back (see `streams.event_time_merge`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

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


def _head_field(tp: TopicPartition) -> str:
    return f"h:{tp.topic}:{tp.partition}"


class RedisPartitionClaims:
    """One hash per consumer group: per partition, the last generation a member claimed it in,
    and its member's last word on its head (`h:` fields: event time, then when it was said).

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

    def exchange_heads(
        self, mine: Mapping[TopicPartition, int], others: Sequence[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, int]]:
        """Say where this member's partitions (`mine`) stand in event time and read, in the same
        round trip, what the members holding `others` last said of theirs: per partition (those
        ever said), its head in ms and when it was said (ms since the epoch, the sayer's clock).
        Nothing is read when Redis does not answer: the others then hold nothing back."""
        said_at = time.time_ns() // 1_000_000
        try:
            with self._client.pipeline(transaction=False) as pipe:
                if mine:
                    pipe.hset(self._key, mapping={
                        _head_field(tp): f"{at}:{said_at}" for tp, at in mine.items()
                    })  # fmt: skip
                    pipe.pexpire(self._key, _KEEP_MS)
                if others:
                    pipe.hmget(self._key, [_head_field(tp) for tp in others])
                replies = pipe.execute()
        except redis.RedisError as error:
            log.debug(
                "partition heads not exchanged",
                extra={"event": "heads_unexchanged", "error": describe(error)},
            )
            return {}
        if not others:
            return {}
        heads: dict[TopicPartition, tuple[int, int]] = {}
        for tp, value in zip(others, replies[-1], strict=True):
            if value is None:
                continue
            text = value.decode() if isinstance(value, bytes) else str(value)
            at, _, when = text.partition(":")
            try:
                heads[tp] = (int(at), int(when))
            except ValueError:  # not a head this release writes: nothing to hold back for
                continue
        return heads
