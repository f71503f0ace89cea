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

A worker restarted after a crash may first be given only some partitions: the dead member
keeps the rest until its session expires. So each member claims its partitions in every
generation of the group (`PartitionClaims`), and a partition of a timed topic that nobody
claimed in the current generation, while the group has records of it not committed, holds
back everything, live traffic too, for up to `member_patience_s`. The partition then comes to
this worker, which reads on merged as if it had never been interrupted. Members that all
claim theirs do not wait for one another: each merges its own partitions.

A member that dies keeps its claim for the rest of the generation, while live traffic goes on
arriving on its partitions. So each member also says, every _HEADS_EVERY_S, where each of its
partitions stands in event time: its earliest record handed out and not yet `settled` (its
state not yet written) or buffered, or caught up (`exchange_heads`). Live records later than
the earliest head another member said, by more than LIVE_SKEW_MS, wait, as do those later
than when a member last said anything new (a member silent for `member_silent_s` is taken to
have stopped; a head not seen to move yet, perhaps a dead member's last word, counts as
silent). Live members' heads move with the traffic and hold nothing back; a dead member's
stop, and the survivors wait for its partitions rather than score the payouts of money whose
arrival it holds. Once the group has given them to a member, that member's heads move from
where the dead one stopped, and the others read on as it catches up. A head that does not
move for `member_patience_s` holds nothing back until it moves. Members catching up on the
last minutes (after an outage) read in step the same way, as one member would; each second
of event time waits for a word from every member, which is why they speak every
_HEADS_EVERY_S, and a member held back asks again as often. A backlog's records (older than
REPLAY_LAG_MS) are not held back by the others' heads (see the README's "Catch up on a
backlog with one worker"): members reading history would wait on one another at every step.
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
# Live records of two members' partitions are read in event-time order to within this: about a
# batch, what a member's last word on its head may be behind.
LIVE_SKEW_MS = 1_000
# How often a member says where its partitions stand, and reads where the others' stand. Members
# catching up read in step, each at most LIVE_SKEW_MS past the others: every second of event
# time then waits for a word from each, so this bounds how fast they catch up.
_HEADS_EVERY_S = 0.02
# A member that has said nothing new of a partition for this long has stopped reading it: a
# live one says something every _HEADS_EVERY_S between batches, and a batch takes well under
# a second.
MEMBER_SILENT_S = 2.0
# How long what the broker said about an unclaimed partition (whether the group has committed
# all of its records) is trusted.
_PENDING_TTL_S = 0.5

EventTime = Callable[[Any], int | None]


class PartitionClaims(Protocol):
    """Where the members of a consumer group claim their partitions in each generation."""

    def claim(self, generation: int, partitions: Sequence[TopicPartition]) -> bool:
        """Claim `partitions` for this member in `generation`; False if that failed."""
        ...

    def generations(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The generation each of `partitions` was last claimed in (those ever claimed)."""
        ...

    def exchange_heads(
        self, mine: Mapping[TopicPartition, int], others: Sequence[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, int]]:
        """Say where this member's partitions stand in event time (`mine`); what was last said
        of `others`: per partition, its head and when that was said."""
        ...


class _Waits:
    """Partitions waited for and since when; a wait that outlasts `patience_s` is given up
    (until `end`), and, with `abandoned` (an event and a message), logged and counted."""

    def __init__(self, patience_s: float, abandoned: tuple[str, str] | None = None) -> None:
        self.patience_s = patience_s
        self._abandoned = abandoned
        self._since: dict[TopicPartition, float] = {}
        self._given_up: set[TopicPartition] = set()

    def given_up(self, tp: TopicPartition) -> bool:
        """Whether the wait for `tp` was given up."""
        return tp in self._given_up

    def still_waiting(self, tp: TopicPartition, now: float) -> bool:
        """Start or go on waiting for `tp`; False once that has outlasted `patience_s`."""
        if tp in self._given_up:
            return False
        since = self._since.setdefault(tp, now)
        if now - since < self.patience_s:
            return True
        self._given_up.add(tp)
        if self._abandoned is not None:
            event, message = self._abandoned
            metrics.MERGE_WAITS_ABANDONED.inc()
            log.warning(message, extra={"event": event, "waited_s": round(now - since, 3),
                                        "partition": f"{tp.topic}[{tp.partition}]"})  # fmt: skip
        return False

    def end(self, tp: TopicPartition) -> None:
        """No longer wait for `tp` (a later wait starts afresh)."""
        self._since.pop(tp, None)
        self._given_up.discard(tp)

    def partitions(self) -> set[TopicPartition]:
        """The partitions waited for or given up."""
        return set(self._since)


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
        claims: PartitionClaims | None = None,
        member_patience_s: float = 0.0,
        member_silent_s: float = MEMBER_SILENT_S,
    ) -> None:
        self.consumer = consumer
        self.event_time = event_time
        self.buffer_records = buffer_records
        self.timed_topics = timed_topics
        self.claims = claims
        self.member_silent_s = member_silent_s
        self._buffers: dict[TopicPartition, deque[tuple[int, Any]]] = {}
        # The offset after the last record taken from the consumer, per partition.
        self._next_offset: dict[TopicPartition, int] = {}
        # The latest event time among the records fetched of each partition.
        self._frontier: dict[TopicPartition, int] = {}
        # Records handed out and not yet settled by the caller (`settled`), per partition and
        # merge: the offset after the last and the earliest event time. Until their state is
        # written, they hold the partition's head back: another member reading past them
        # would score transfers whose windows miss them.
        self._unsettled: dict[TopicPartition, deque[tuple[int, int]]] = {}
        # Partitions with records on the broker that hold the others back (given up: until
        # their next records come).
        self._behind_waits = _Waits(patience_s, (
            "merge_wait_abandoned",
            "a partition's records did not arrive in time; reading on without it",
        ))  # fmt: skip
        # Partitions waited for because they have been quiet (in a replay).
        self._quiet_waits = _Waits(patience_s)
        # The generation and the partitions last claimed.
        self._claimed: tuple[int, frozenset[TopicPartition]] | None = None
        # Partitions no member claimed that hold this one back (given up: until claimed).
        self._unclaimed_waits = _Waits(member_patience_s, (
            "member_wait_abandoned",
            "a partition no group member claimed held this worker's back too long; reading on "
            "without it",
        ))  # fmt: skip
        # Whether the group has records of an unclaimed partition not committed, and when the
        # broker said so.
        self._pending: dict[TopicPartition, tuple[bool, float]] = {}
        # The generation and the other members' partitions when all of them were seen claimed:
        # a claim holds for its generation, so they need not be read again until it changes.
        self._others_claimed: tuple[int, frozenset[TopicPartition]] | None = None
        # When the heads were last exchanged, and what the others last said of theirs: head,
        # when it was said, and when (here) that last changed.
        self._heads_exchanged = -float("inf")
        # Whether the last merge stopped at a record the others' heads held back.
        self._held_by_heads = False
        self._said: dict[TopicPartition, tuple[int, int, float]] = {}
        # How far the others' partitions let live records be read: the head said, or, once
        # its member fell silent, no later than when it last spoke.
        self._others_heads: dict[TopicPartition, int] = {}
        # Others' partitions that hold live records back (given up: until their head moves).
        self._head_waits = _Waits(member_patience_s, (
            "member_wait_abandoned",
            "another member's partition stood still behind this worker's live records too "
            "long; reading on without it",
        ))  # fmt: skip

    def poll(self, timeout_ms: int, max_records: int, fill_ms: int | None = None) -> list[Any]:
        """Up to `max_records` records in event-time order, waiting at most `timeout_ms` for
        them, and once the first is taken at most `fill_ms` more (None: the same deadline).
        A broker error is raised only when no record was taken: records taken from the
        buffers are never dropped."""
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
            self._claim()
            self._exchange_heads()
            merged = self._merge(max_records - len(taken))
            if merged and not taken and fill_ms is not None:
                deadline = min(deadline, time.monotonic() + fill_ms / 1000)
            taken += merged
            if merged:
                # A partition ran dry; the consumer may hold its next records already.
                wait_ms = 0
                continue
            wait_ms = int((deadline - time.monotonic()) * 1000)
            if wait_ms <= 0:
                break
            if self._held_by_heads:
                # The others' next word may free these records: ask again soon.
                wait_ms = min(wait_ms, int(_HEADS_EVERY_S * 1000))
        return taken

    def _fetch(self, wait_ms: int) -> None:
        """Poll the consumer for the partitions whose buffers have room."""
        assigned = self.consumer.assignment()
        self._forget((set(self._buffers) | set(self._unsettled)) - assigned)
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
        self._behind_waits.end(tp)
        self._quiet_waits.end(tp)

    def _forget(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            self._buffers.pop(tp, None)
            self._next_offset.pop(tp, None)
            self._frontier.pop(tp, None)
            self._unsettled.pop(tp, None)
            self._clear_waits(tp)

    def _merge(self, limit: int) -> list[Any]:
        """Take up to `limit` records, earliest head first, stopping where a partition that
        may hold earlier records has none buffered."""
        self._held_by_heads = False
        assigned = sorted(self.consumer.assignment())
        empty = [tp for tp in assigned if not self._buffers.get(tp)]
        if any(self._behind_and_waited_for(tp) for tp in empty):
            return []
        if len(empty) < len(assigned) and self._held_by_dead_members(set(assigned)):
            # Like a partition of its own that is behind: nothing goes until they come here.
            return []
        quiet = {tp: until for tp in empty if (until := self._quiet_limit(tp)) != LAST}
        horizon = min(quiet.values(), default=LAST)
        replayed = time.time_ns() // 1_000_000 - REPLAY_LAG_MS
        mine = set(assigned)
        live = self._live_limit(mine)
        heads = [
            (buffer[0][0], order, tp)
            for order, tp in enumerate(assigned)
            if (buffer := self._buffers.get(tp))
        ]
        heapq.heapify(heads)
        taken: list[Any] = []
        # Per partition, the earliest event time handed out.
        handed: dict[TopicPartition, int] = {}
        while heads and len(taken) < limit:
            at, order, tp = heads[0]
            if at > horizon and at < replayed and at > (horizon := self._wait_for_quiet(quiet, at)):
                break
            if at > live and at >= replayed and at > (live := self._live_limit(mine, at)):
                self._held_by_heads = True
                break
            buffer = self._buffers[tp]
            taken.append(buffer.popleft()[1])
            if at < handed.get(tp, LAST):
                handed[tp] = at
            if buffer:
                heapq.heapreplace(heads, (buffer[0][0], order, tp))
            elif self._behind_and_waited_for(tp):
                break
            else:
                heapq.heappop(heads)
                if (until := self._quiet_limit(tp)) != LAST:
                    quiet[tp] = until
                    horizon = min(horizon, until)
        for tp, earliest in handed.items():
            # The offset after the last taken: the next one buffered, or after the last fetched.
            buffer = self._buffers[tp]
            end = buffer[0][1].offset if buffer else self._next_offset[tp]
            self._unsettled.setdefault(tp, deque()).append((end, earliest))
        return taken

    def settled(self, ends: Mapping[TopicPartition, int]) -> None:
        """The records handed out before `ends` (per partition, the offset after the last)
        are applied: they no longer hold their partitions' heads back."""
        for tp, end in ends.items():
            unsettled = self._unsettled.get(tp)
            while unsettled and unsettled[0][0] <= end:
                unsettled.popleft()

    def _claim(self) -> None:
        """Claim this member's partitions of the timed topics, once per generation and
        assignment."""
        if self.claims is None or (generation := group_generation(self.consumer)) is None:
            return
        mine = frozenset(tp for tp in self.consumer.assignment() if tp.topic in self.timed_topics)
        if (generation, mine) != self._claimed and self.claims.claim(generation, sorted(mine)):
            self._claimed = (generation, mine)

    def _held_by_dead_members(self, assigned: set[TopicPartition]) -> bool:
        """Whether a partition of a timed topic that is not among `assigned` and that no
        member claimed in this generation has records the group has not committed (and has not
        yet held this member back for `member_patience_s`)."""
        if self.claims is None:
            return False
        others = self._others(assigned)
        for tp in self._unclaimed_waits.partitions() - set(others):
            self._unclaimed_waits.end(tp)
        if not others:
            return False
        if (generation := group_generation(self.consumer)) is None:
            # Rejoining the group: the partitions may be about to change hands, and asking the
            # coordinator for offsets now would hold the join up.
            return True
        if self._others_claimed == (generation, frozenset(others)):
            return False
        claimed = self.claims.generations(others)
        now = time.monotonic()
        held = False
        for tp in others:
            if claimed.get(tp) == generation or not self._pending_for(tp, now):
                self._unclaimed_waits.end(tp)
            elif self._unclaimed_waits.still_waiting(tp, now):
                held = True
        if all(claimed.get(tp) == generation for tp in others):
            self._others_claimed = (generation, frozenset(others))
        return held

    def _others(self, assigned: set[TopicPartition]) -> list[TopicPartition]:
        """The partitions of the timed topics that are not among `assigned`."""
        return [
            tp
            for topic in sorted(self.timed_topics)
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
            if (tp := TopicPartition(topic, p)) not in assigned
        ]

    def _exchange_heads(self) -> None:
        """Say where this member's partitions of the timed topics stand, and read where the
        others' stand, at most every _HEADS_EVERY_S."""
        now = time.monotonic()
        if self.claims is None or now - self._heads_exchanged < _HEADS_EVERY_S:
            return
        self._heads_exchanged = now
        assigned = self.consumer.assignment()
        mine = {tp: self._head(tp) for tp in assigned if tp.topic in self.timed_topics}
        said = self.claims.exchange_heads(mine, self._others(assigned))
        heads: dict[TopicPartition, int] = {}
        for tp, (at, when) in said.items():
            known = self._said.get(tp)
            if known is None:
                # Seen for the first time: it may be a dead member's last word (a member that
                # just joined must not read on past it), so it counts as silent until it moves.
                changed = -float("inf")
            else:
                changed = now if known[:2] != (at, when) else known[2]
            self._said[tp] = (at, when, changed)
            heads[tp] = at if now - changed <= self.member_silent_s else min(at, when)
        for tp in self._head_waits.partitions():
            if heads.get(tp) != self._others_heads.get(tp):
                self._head_waits.end(tp)
        self._others_heads = heads

    def _head(self, tp: TopicPartition) -> int:
        """Where `tp` stands in event time: its earliest record handed out and not settled,
        or its buffer's head; LAST when nothing is left on the broker; else no further than
        its latest record fetched (FIRST: none yet)."""
        unsettled = min((at for _, at in self._unsettled.get(tp, ())), default=LAST)
        if buffer := self._buffers.get(tp):
            return min(unsettled, buffer[0][0])
        if not self._behind(tp):
            return unsettled
        return min(unsettled, self._frontier.get(tp, FIRST))

    def _live_limit(self, assigned: set[TopicPartition], at: int | None = None) -> int:
        """How far in event time live records may be read: to within LIVE_SKEW_MS of the
        others' heads. With `at` (a record held back), start or go on waiting for the heads
        that hold it back, leaving out those waited for `member_patience_s`."""
        now = time.monotonic()
        limit = LAST
        for tp, head in self._others_heads.items():
            if tp in assigned or self._head_waits.given_up(tp):
                continue
            bound = head + LIVE_SKEW_MS
            if at is not None and bound < at and not self._head_waits.still_waiting(tp, now):
                continue
            limit = min(limit, bound)
        return limit

    def _pending_for(self, tp: TopicPartition, now: float) -> bool:
        """Whether the group has records of `tp` that it has not committed, or the broker
        cannot tell."""
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
        if tp.topic not in self.timed_topics or self._quiet_waits.given_up(tp):
            return LAST
        return self._frontier.get(tp, FIRST)

    def _wait_for_quiet(self, quiet: dict[TopicPartition, int], at: int) -> int:
        """Start or continue waiting for the quiet partitions that keep a record of event time
        `at` back; stop waiting for those that have been waited for `patience_s`. The horizon
        left."""
        now = time.monotonic()
        for tp, until in list(quiet.items()):
            if until < at and not self._quiet_waits.still_waiting(tp, now):
                del quiet[tp]
        return min(quiet.values(), default=LAST)

    def _behind_and_waited_for(self, tp: TopicPartition) -> bool:
        """Whether a partition with an empty buffer may still have records on the broker
        earlier than the others' (and has not yet used up its patience)."""
        if self._behind_waits.given_up(tp):
            return False
        if not self._behind(tp):
            self._behind_waits.end(tp)
            return False
        return self._behind_waits.still_waiting(tp, time.monotonic())

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
