"""Reading a worker's partitions merged in event time.

A consumer hands out one partition's fetched records before the next (up to 4 MB of each).
In live traffic every partition is near its end and the skew between them is a fetch, but a
worker catching up on a backlog (after downtime, or a bank's first replay) would work through
one partition's days of event time before another's. Windows that span partitions (a payee's
payers, a device's accounts, the marks an alert leaves) would then see transfers days out of
order, and raise other alerts than the same traffic read live.

So the worker takes records from per-partition buffers, always the one whose head is earliest
in event time, and takes nothing while a partition it holds has an empty buffer but records
on the broker (as Kafka Streams does). Partitions whose buffer is full are paused, so the
consumer fetches the ones that are behind. Within a partition the order stays that of its
offsets. A partition whose records do not arrive within `patience_s` (a broker in trouble)
stops holding the others back until its records arrive.

History produced while the worker runs (a bank's first files through `fraudwatch produce`)
runs event time far faster than the clock: a partition may run dry just before its next,
earlier records arrive. For records older than REPLAY_LAG_MS, a partition that ran dry (or
has had no record yet) also holds back the records later than its latest, for up to
`patience_s`. Live traffic never waits for a quiet partition.

For a backlog the order depends only on the records, not on when they arrived, so a worker
that restarts from its committed offsets reads on in the order of one that ran through it.

The other members of the group hold the other partitions. Each member shares, per partition
and tagged with the group generation, how far in event time the others may read for its sake
(`GroupFrontier`): to its buffer's head, not at all while its records are on their way, to its
latest record while it is quiet in a replay. In a replay a member reads no further than
PEER_SLACK_MS past what the others shared, so workers catching up on a backlog keep pace with
one another. A partition whose holder has shared nothing in the current generation, while the
group has not committed all its records, holds back everything, live traffic too: its holder
is a member that died (perhaps while it joined) and keeps it until its session expires. The
partition then comes to this worker, which reads on merged as if it had never been
interrupted. A wait for a shared limit ends after `patience_s`, one for a holder that shares
nothing after `peer_patience_s`.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from streams import metrics
from streams.kafka_io import group_generation, release_drained_records

log = logging.getLogger("fraudwatch.worker")

# Records without an event time (profiles, and values too broken to hold one) go first:
# profiles are state as of now, and a broken value only waits for its dead letter.
FIRST = -(2**63)
LAST = 2**63 - 1
# Records whose event time is further behind this machine's clock are history being replayed
# (a bank's first files, a backlog), where event time runs far faster than the clock: a
# partition that ran dry may have its next, earlier records on their way, so it is waited for
# (up to `patience_s`). Live traffic is within minutes of the clock (the contract allows 10 minutes
# out of order) and never waits for a quiet partition: its next records are newer.
REPLAY_LAG_MS = 15 * 60_000
# How far in event time a member may read ahead of what another shared. Without slack, members
# whose partitions interleave minute by minute would hand records over one at a time, a round
# trip through Redis each; with it they go in strides. Live traffic is read up to 10 minutes
# out of order (the contract), so a replay may be too.
PEER_SLACK_MS = 5 * 60_000

# How long what the broker said about a partition of another member (whether the group has
# committed all of its records) is trusted.
_PENDING_TTL_S = 0.5

EventTime = Callable[[Any], int | None]


class GroupFrontier(Protocol):
    """Where the members of a consumer group share, per partition, the group generation and
    the event time up to which the other members may read."""

    def publish(self, generation: int, limits: Mapping[TopicPartition, int]) -> None:
        """Share this member's limits for its partitions."""
        ...

    def read(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, tuple[int, int]]:
        """The (generation, limit) last shared for each of `partitions` that has one."""
        ...


class EventTimeMerge:
    """Polls `consumer` and hands out its records in event-time order across partitions.

    `event_time(record)` gives a record's event time in ms (None: it has none); a partition
    holds at most `buffer_records` before it is paused.
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        event_time: EventTime,
        *,
        buffer_records: int,
        timed_topics: frozenset[str],
        patience_s: float,
        group: GroupFrontier | None = None,
        peer_patience_s: float = 0.0,
    ) -> None:
        self.consumer = consumer
        self.event_time = event_time
        self.buffer_records = buffer_records
        self.timed_topics = timed_topics
        self.patience_s = patience_s
        self.group = group
        self.peer_patience_s = peer_patience_s
        self._buffers: dict[TopicPartition, deque[tuple[int, Any]]] = {}
        # The offset after the last record taken from the consumer, per partition.
        self._next_offset: dict[TopicPartition, int] = {}
        # The latest event time among the records fetched of each partition.
        self._frontier: dict[TopicPartition, int] = {}
        # Since when a partition with records on the broker has held the others back, and
        # those that took longer than `patience_s` (until their next records come).
        self._behind_since: dict[TopicPartition, float] = {}
        self._late: set[TopicPartition] = set()
        # The same for partitions waited for because they have been quiet (in a replay).
        self._quiet_since: dict[TopicPartition, float] = {}
        self._quiet_given_up: set[TopicPartition] = set()
        # The generation the limits were last shared in, and what they were.
        self._shared_generation: int | None = None
        self._shared: dict[TopicPartition, int] = {}
        # Partitions of other members that hold this one back: the limit last seen (None: its
        # holder shared none in this generation) and since when; those waited for too long.
        self._peer_waits: dict[TopicPartition, tuple[int | None, float]] = {}
        self._peers_given_up: set[TopicPartition] = set()
        # Whether the group has records of another member's partition not committed, and when
        # the broker said so.
        self._pending: dict[TopicPartition, tuple[bool, float]] = {}

    def poll(self, timeout_ms: int, max_records: int) -> list[Any]:
        """Up to `max_records` records in event-time order, waiting at most `timeout_ms` for
        them. A broker error is raised only when no record was taken: records taken from
        the buffers are never dropped."""
        deadline = time.monotonic() + timeout_ms / 1000
        taken: list[Any] = []
        wait_ms = 0
        while len(taken) < max_records:
            try:
                self._fetch(wait_ms)
            except KafkaError:
                if taken:
                    break
                raise
            self._share()
            merged = self._merge(max_records - len(taken))
            taken += merged
            if merged:
                self._share()
                # A partition ran dry; the consumer may hold its next records already.
                wait_ms = 0
                continue
            wait_ms = int((deadline - time.monotonic()) * 1000)
            if wait_ms <= 0:
                break
        return taken

    def _fetch(self, wait_ms: int) -> None:
        """Poll the consumer for the partitions whose buffers have room."""
        assigned = self.consumer.assignment()
        self._forget(set(self._buffers) - assigned)
        full = {tp for tp in assigned if len(self._buffers.get(tp, ())) >= self.buffer_records}
        if full:
            self.consumer.pause(*full)
        if room := assigned - full:
            self.consumer.resume(*room)
            release_drained_records(self.consumer)
        # Only partitions with room return records; each holds at most one more batch.
        fetched = self.consumer.poll(timeout_ms=wait_ms, max_records=self.buffer_records)
        for tp in assigned & set(self._buffers):
            if tp not in fetched and self._moved(tp):
                # A rebalance reset the position to the committed offset, or something sought.
                self._forget({tp})
        for tp, records in fetched.items():
            self._take(tp, records)

    def _moved(self, tp: TopicPartition) -> bool:
        """Whether the consumer's position is no longer where the buffer ends."""
        try:
            position = self.consumer.position(tp, timeout_ms=0)
        except KafkaError:
            return True
        return bool(position != self._next_offset.get(tp))

    def buffered(self) -> int:
        """Records fetched and not yet handed out."""
        return sum(len(buffer) for buffer in self._buffers.values())

    def _take(self, tp: TopicPartition, records: Iterable[Any]) -> None:
        records = list(records)
        if not records:
            return
        if records[0].offset != self._next_offset.get(tp, records[0].offset):
            # Not where the buffer ends (the position was reset): start again from here.
            self._forget({tp})
        buffer = self._buffers.setdefault(tp, deque())
        event_time = self.event_time
        frontier = self._frontier.get(tp, FIRST)
        for record in records:
            at = event_time(record)
            if at is None:
                at = FIRST
            elif at > frontier:
                frontier = at
            buffer.append((at, record))
        if frontier != FIRST:
            self._frontier[tp] = frontier
        self._next_offset[tp] = records[-1].offset + 1
        self._clear_waits(tp)

    def _clear_waits(self, tp: TopicPartition) -> None:
        self._behind_since.pop(tp, None)
        self._late.discard(tp)
        self._quiet_since.pop(tp, None)
        self._quiet_given_up.discard(tp)

    def _forget(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self._buffers.pop(tp, None)
            self._next_offset.pop(tp, None)
            self._frontier.pop(tp, None)
            self._clear_waits(tp)

    def _merge(self, limit: int) -> list[Any]:
        """Take up to `limit` records, earliest head first, stopping where a partition that
        may hold earlier records has none buffered."""
        assigned = sorted(self.consumer.assignment())
        empty = [tp for tp in assigned if not self._buffers.get(tp)]
        if any(self._behind_and_waited_for(tp) for tp in empty):
            return []
        quiet = {tp: until for tp in empty if (until := self._quiet_limit(tp)) != LAST}
        horizon = min(quiet.values(), default=LAST)
        replayed = time.time_ns() // 1_000_000 - REPLAY_LAG_MS
        heads = [
            (buffer[0][0], order, tp)
            for order, tp in enumerate(assigned)
            if (buffer := self._buffers.get(tp))
        ]
        heapq.heapify(heads)
        any_limit, replay_limit = self._peer_limits(heads[0][0] if heads else None, replayed)
        taken: list[Any] = []
        while heads and len(taken) < limit:
            at, order, tp = heads[0]
            if at > any_limit or (at < replayed and at > replay_limit):
                break
            if at > horizon and at < replayed and at > (horizon := self._wait_for_quiet(quiet, at)):
                break
            buffer = self._buffers[tp]
            taken.append(buffer.popleft()[1])
            if buffer:
                heapq.heapreplace(heads, (buffer[0][0], order, tp))
            elif self._behind_and_waited_for(tp):
                break
            else:
                heapq.heappop(heads)
                if (until := self._quiet_limit(tp)) != LAST:
                    quiet[tp] = until
                    horizon = min(horizon, until)
        return taken

    def _share(self) -> None:
        """Share this member's limits with the group, in a new generation or when they
        changed."""
        if self.group is None or (generation := group_generation(self.consumer)) is None:
            return
        limits = {
            tp: self._limit_for_others(tp)
            for tp in self.consumer.assignment()
            if tp.topic in self.timed_topics
        }
        if generation != self._shared_generation or limits != self._shared:
            self.group.publish(generation, limits)
            self._shared_generation, self._shared = generation, limits

    def _limit_for_others(self, tp: TopicPartition) -> int:
        """How far in event time the other members may read for the sake of `tp`: to its
        buffer's head; not at all while its records are on their way; while it is quiet, to its
        latest record (they apply it in a replay only, as this member does)."""
        if buffer := self._buffers.get(tp):
            return int(buffer[0][0])
        if tp not in self._late and self._behind(tp):
            return FIRST
        return self._quiet_limit(tp)

    def _peer_limits(self, earliest: int | None, replayed: int) -> tuple[int, int]:
        """How far this member may read for the sake of the other members' partitions, when
        its earliest head is `earliest` (None: it has none): in any traffic (FIRST while a
        partition whose holder shared no limit in this generation has records the group has
        not committed, else LAST), and in a replay (the lowest limit the others shared, plus
        PEER_SLACK_MS)."""
        if self.group is None:
            return LAST, LAST
        others = self._others_partitions()
        for tp in set(self._peer_waits) - set(others):
            self._stop_waiting_for(tp)
        if not others or earliest is None:
            return LAST, LAST
        if (generation := group_generation(self.consumer)) is None:
            # Rejoining the group: the partitions may be about to change hands, and asking the
            # coordinator for offsets now would hold the join up.
            return FIRST, LAST
        shared = self.group.read(others)
        any_limit = replay_limit = LAST
        now = time.monotonic()
        for tp in others:
            entry = shared.get(tp)
            limit = entry[1] if entry is not None and entry[0] == generation else None
            if limit is not None and FIRST < limit < LAST:
                limit += PEER_SLACK_MS
            if limit is None and not self._pending_for(tp, now):
                self._stop_waiting_for(tp)
                continue
            if limit is not None and not limit < earliest < replayed:
                # It holds back no head now (perhaps records behind one): its wait starts anew.
                self._stop_waiting_for(tp)
            elif self._waited_too_long(tp, limit, now):
                continue
            if limit is None:
                any_limit = FIRST
            else:
                replay_limit = min(replay_limit, limit)
        return any_limit, replay_limit

    def _others_partitions(self) -> list[TopicPartition]:
        """The partitions of the timed topics that other members hold."""
        assigned = self.consumer.assignment()
        return [
            tp
            for topic in sorted(self.timed_topics)
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
            if (tp := TopicPartition(topic, p)) not in assigned
        ]

    def _stop_waiting_for(self, tp: TopicPartition) -> None:
        self._peer_waits.pop(tp, None)
        self._peers_given_up.discard(tp)

    def _waited_too_long(self, tp: TopicPartition, limit: int | None, now: float) -> bool:
        """Whether another member's partition, holding this one back at `limit`, has done so
        too long without its limit moving (it then stops, until it moves): `patience_s` for a
        limit its holder shared, as for a partition of this member's; `peer_patience_s` for a
        holder that shared none (a dead member, until its session expires)."""
        seen = self._peer_waits.get(tp)
        if seen is None or seen[0] != limit:
            self._peer_waits[tp] = (limit, now)
            self._peers_given_up.discard(tp)
            return False
        if tp in self._peers_given_up:
            return True
        patience = self.patience_s if limit is not None else self.peer_patience_s
        if now - seen[1] < patience:
            return False
        self._peers_given_up.add(tp)
        if limit is not None:
            return True
        metrics.MERGE_WAITS_ABANDONED.inc()
        log.warning(
            "a partition held by a group member that shares nothing held this worker's back "
            "too long; reading on without it",
            extra={"event": "peer_wait_abandoned", "partition": f"{tp.topic}[{tp.partition}]",
                   "waited_s": round(now - seen[1], 3)},
        )  # fmt: skip
        return True

    def _pending_for(self, tp: TopicPartition, now: float) -> bool:
        """Whether the group has records of `tp` (another member's) that it has not committed,
        or the broker cannot tell."""
        known = self._pending.get(tp)
        if known is not None and now - known[1] < _PENDING_TTL_S:
            return known[0]
        try:
            committed = self.consumer.committed(tp, timeout_ms=1000)
            end = self.consumer.end_offsets([tp], timeout_ms=1000)[tp]
            if committed is None:
                committed = self.consumer.beginning_offsets([tp], timeout_ms=1000)[tp]
        except KafkaError:
            pending = True
        else:
            pending = bool(committed < end)
        self._pending[tp] = (pending, now)
        return pending

    def _quiet_limit(self, tp: TopicPartition) -> int:
        """How far in event time the others may be read while `tp` has an empty buffer and
        nothing known on the broker: to its latest record's, or not at all before its first
        (LAST: no limit, for a topic without event times)."""
        if tp.topic not in self.timed_topics or tp in self._quiet_given_up:
            return LAST
        return self._frontier.get(tp, FIRST)

    def _wait_for_quiet(self, quiet: dict[TopicPartition, int], at: int) -> int:
        """Start or continue waiting for the quiet partitions that keep a record of event time
        `at` back; stop waiting for those that have been waited for `patience_s`. The horizon
        left."""
        now = time.monotonic()
        for tp, until in list(quiet.items()):
            if until < at and now - self._quiet_since.setdefault(tp, now) >= self.patience_s:
                self._quiet_given_up.add(tp)
                del quiet[tp]
        return min(quiet.values(), default=LAST)

    def _behind_and_waited_for(self, tp: TopicPartition) -> bool:
        """Whether a partition with an empty buffer may still have records on the broker
        earlier than the others' (and has not yet used up its patience)."""
        if tp in self._late:
            return False
        if not self._behind(tp):
            self._behind_since.pop(tp, None)
            return False
        now = time.monotonic()
        since = self._behind_since.setdefault(tp, now)
        if now - since < self.patience_s:
            return True
        self._late.add(tp)
        metrics.MERGE_WAITS_ABANDONED.inc()
        log.warning(
            "a partition's records did not arrive in time; reading on without it",
            extra={"event": "merge_wait_abandoned", "partition": f"{tp.topic}[{tp.partition}]",
                   "waited_s": round(now - since, 3)},
        )  # fmt: skip
        return False

    def _behind(self, tp: TopicPartition) -> bool:
        """Whether the broker has records of `tp` that the consumer has not handed out (or
        does not know yet whether it has)."""
        highwater = self.consumer.highwater(tp)
        if highwater is None:
            return True
        try:
            position = self.consumer.position(tp, timeout_ms=0)
        except KafkaError:
            return True
        return position is None or bool(position < highwater)
