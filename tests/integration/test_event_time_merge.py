"""Reading partitions merged in event time, on the session's broker, and the kafka-python
behaviour the merge works around."""

from __future__ import annotations

import heapq
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial

import orjson
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client import REGISTRY

from models.events import InvalidEvent, parse_timestamp_ms
from service.embedded import EmbeddedServices
from streams.event_time_merge import FIRST, LIVE_SKEW_MS, EventTimeMerge
from streams.kafka_io import close_consumer, release_drained_records
from streams.state.partition_claims import RedisPartitionClaims
from tests.integration.conftest import TopicFactory

T0_MS = 1_772_323_200_000  # 2026-03-01T00:00:00Z
MINUTE_MS = 60_000


def _transfer(n: int, at_ms: int) -> bytes:
    ts = datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(timespec="milliseconds")
    return orjson.dumps({"transfer_id": f"t{n}", "ts": ts})


def _record_time(value: bytes | None) -> int | None:
    """A test record's event time (the records carry an id and a time); None without one."""
    try:
        return parse_timestamp_ms(orjson.loads(value or b"")["ts"])[0]
    except (orjson.JSONDecodeError, KeyError, TypeError, InvalidEvent):
        return None


def _event_time(value: bytes) -> int:
    at = _record_time(value)
    return FIRST if at is None else at


def _produce(bootstrap: str, topic: str, partitions: list[list[bytes]]) -> None:
    """One partition's values after another's: a backlog, skewed as far as it can be."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for partition, values in enumerate(partitions):
            for value in values:
                producer.send(topic, value=value, partition=partition)
        producer.flush()
    finally:
        producer.close()


@pytest.fixture
def consumer(services: EmbeddedServices) -> Iterator[KafkaConsumer]:
    """A consumer outside any group: the merge does not care how partitions were assigned."""
    client = KafkaConsumer(
        bootstrap_servers=services.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    yield client
    client.close()


def test_a_backlog_is_read_earliest_head_first_and_each_partition_in_offset_order(
    services: EmbeddedServices, make_topics: TopicFactory, consumer: KafkaConsumer
) -> None:
    topic = make_topics(partitions=3).transfers
    # Partition p holds minutes p, p+3, p+6, ...: read one partition after another, the
    # first would run 45 hours of event time ahead of the others.
    partitions = [[_transfer(3 * i + p, T0_MS + (3 * i + p) * MINUTE_MS) for i in range(900)]
                  for p in range(3)]  # fmt: skip
    # A transfer arriving 30 minutes late, and a value with no event time.
    partitions[1][400] = _transfer(10_000, T0_MS + 1000 * MINUTE_MS)
    partitions[2][600] = b"not json"
    _produce(services.kafka_bootstrap, topic, partitions)
    consumer.assign([TopicPartition(topic, p) for p in range(3)])
    merge = EventTimeMerge(consumer, lambda r: _record_time(r.value),
                           buffer_records=200,
                           timed_topics=frozenset({topic}), patience_s=2.0)  # fmt: skip

    read: list[ConsumerRecord] = []
    deadline = time.monotonic() + 60
    while len(read) < 2700 and time.monotonic() < deadline:
        read += merge.poll(timeout_ms=50, max_records=150)

    # A partition's records stay in offset order; across partitions the earliest head goes
    # first (ties to the lower partition): exactly a merge of the partitions by their heads.
    expected = list(heapq.merge(*partitions, key=_event_time))
    assert [r.value for r in read] == expected
    for p in range(3):
        assert [r.offset for r in read if r.partition == p] == list(range(900))
    assert merge.poll(timeout_ms=200, max_records=150) == []  # nothing held back


def test_kafka_python_still_parks_a_resumed_partitions_records_behind_a_drained_batch(
    services: EmbeddedServices, make_topics: TopicFactory, consumer: KafkaConsumer
) -> None:
    """kafka-python 3.0.12 keeps the records a partition fetched while it was paused, but
    gives them back after `resume` only when no drained batch sits in its in-line slot; and
    it does not fetch that partition again meanwhile. `release_drained_records` clears the
    slot. When this test fails, kafka-python gives parked records back by itself: drop the
    workaround (streams/kafka_io.py)."""
    topic = make_topics(partitions=2).transfers
    _produce(services.kafka_bootstrap, topic, [[b"a%d" % i for i in range(10)],
                                                [b"b%d" % i for i in range(10)]])  # fmt: skip
    first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)
    consumer.assign([first, second])
    # One fetch answers for both partitions (one broker); take five records of one of them.
    taken = consumer.poll(timeout_ms=5000, max_records=5)
    (in_line,) = taken
    other = second if in_line == first else first
    # Paused: its five left are parked; the other partition's ten are drained in full.
    consumer.pause(in_line)
    assert [r.value[:1] for r in consumer.poll(timeout_ms=1000, max_records=100)[other]] == [
        b"b" if other == second else b"a"
    ] * 10
    consumer.resume(in_line)
    stuck = [consumer.poll(timeout_ms=100, max_records=100) for _ in range(10)]
    assert stuck == [{}] * 10

    release_drained_records(consumer)
    back = consumer.poll(timeout_ms=1000, max_records=100)
    assert [r.offset for r in back[in_line]] == [5, 6, 7, 8, 9]


class _WithheldPartition(KafkaConsumer):  # type: ignore[misc]
    """A real consumer that keeps one partition paused while `withheld` is set, as a broker
    that does not serve that partition would."""

    withheld: TopicPartition | None = None

    def resume(self, *partitions: TopicPartition) -> None:
        super().resume(*(tp for tp in partitions if tp != self.withheld))


def test_a_partition_whose_records_do_not_arrive_holds_the_others_back_only_for_a_while(
    services: EmbeddedServices, make_topics: TopicFactory, caplog: pytest.LogCaptureFixture
) -> None:
    topic = make_topics(partitions=2).transfers
    _produce(services.kafka_bootstrap, topic,
             [[_transfer(2 * i + p, T0_MS + (2 * i + p) * MINUTE_MS) for i in range(50)]
              for p in range(2)])  # fmt: skip
    consumer = _WithheldPartition(bootstrap_servers=services.kafka_bootstrap,
                                  enable_auto_commit=False, auto_offset_reset="earliest",
                                  fetch_max_wait_ms=20)  # fmt: skip
    first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)
    try:
        consumer.assign([first, second])
        consumer.withheld = second
        consumer.pause(second)
        merge = EventTimeMerge(consumer, lambda r: _record_time(r.value),
                               buffer_records=100,
                               timed_topics=frozenset({topic}), patience_s=1.0)  # fmt: skip
        abandoned = REGISTRY.get_sample_value("fraudwatch_merge_waits_abandoned_total") or 0.0
        started = time.monotonic()
        read: list[ConsumerRecord] = []
        # The other partition's records are not known to be on the broker until it has been
        # fetched once; until then, and for patience_s after, nothing is read.
        while not read and time.monotonic() - started < 30:
            read = merge.poll(timeout_ms=50, max_records=100)
        waited = time.monotonic() - started
        assert waited >= 1.0
        assert {r.partition for r in read} == {0} and len(read) == 50
        assert REGISTRY.get_sample_value("fraudwatch_merge_waits_abandoned_total") == abandoned + 1
        assert "reading on without it" in caplog.text

        consumer.withheld = None
        while len(read) < 100 and time.monotonic() - started < 30:
            read += merge.poll(timeout_ms=50, max_records=100)
        assert [r.offset for r in read if r.partition == 1] == list(range(50))
    finally:
        consumer.close()


def _group_member(bootstrap: str, group: str, topic: str) -> KafkaConsumer:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=20, session_timeout_ms=6000,
        heartbeat_interval_ms=1000, max_poll_interval_ms=3000,
    )  # fmt: skip
    consumer.subscribe([topic])
    return consumer


def _minutes_by_partition(partitions: int, per_partition: int) -> list[list[bytes]]:
    """Partition p holds minutes p, p+partitions, ...: history, each partition in time order."""
    return [
        [_transfer(partitions * i + p, T0_MS + (partitions * i + p) * MINUTE_MS)
         for i in range(per_partition)]
        for p in range(partitions)
    ]  # fmt: skip


def _beside_a_silent_member(
    bootstrap: str, redis_client: redis.Redis, topic: str, member_patience_s: float
) -> tuple[KafkaConsumer, KafkaConsumer, EventTimeMerge, list[ConsumerRecord]]:
    """In a new group, a member that never claims its partitions and a merge over another
    member's, once the group has given each some partitions; with what the merge read
    meanwhile."""
    group = f"fw-merge-{uuid.uuid4().hex[:10]}"
    silent = _group_member(bootstrap, group, topic)
    worker = _group_member(bootstrap, group, topic)
    merge = EventTimeMerge(worker, lambda r: _record_time(r.value),
                           buffer_records=100, timed_topics=frozenset({topic}), patience_s=1.0,
                           claims=RedisPartitionClaims(redis_client, group),
                           member_patience_s=member_patience_s)  # fmt: skip
    read: list[ConsumerRecord] = []
    deadline = time.monotonic() + 60
    while not (silent.assignment() and worker.assignment()):
        assert time.monotonic() < deadline, "the two members did not share the partitions"
        silent.poll(timeout_ms=50)
        read += merge.poll(timeout_ms=50, max_records=100)
    return silent, worker, merge, read


def test_nothing_is_read_while_a_member_that_claims_nothing_holds_partitions_with_records(
    services: EmbeddedServices, make_topics: TopicFactory, redis_client: redis.Redis
) -> None:
    """A member that claims no partition (one that died, until its session expires) holds
    partitions with records the group has not committed: the merge reads none of its own
    meanwhile, and once those partitions come to it, reads everything as one merge."""
    topic = make_topics(partitions=3).transfers
    partitions = _minutes_by_partition(3, 300)
    _produce(services.kafka_bootstrap, topic, partitions)
    silent, worker, merge, read = _beside_a_silent_member(
        services.kafka_bootstrap, redis_client, topic, member_patience_s=60.0
    )
    try:
        held = time.monotonic() + 3
        while time.monotonic() < held:
            silent.poll(timeout_ms=50)
            read += merge.poll(timeout_ms=50, max_records=100)
        assert read == [], "read ahead of the silent member's partitions"
    finally:
        close_consumer(silent)
    try:
        deadline = time.monotonic() + 60
        while len(read) < 900 and time.monotonic() < deadline:
            read += merge.poll(timeout_ms=50, max_records=100)
    finally:
        worker.close()
    assert [r.value for r in read] == list(heapq.merge(*partitions, key=_event_time))


def test_a_partition_no_member_claims_holds_the_others_back_only_for_a_while(
    services: EmbeddedServices, make_topics: TopicFactory, redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """A member that never claims (an older fraudwatch in a rolling upgrade) holds the merge
    back for `member_patience_s` per partition; then it reads on, logged and counted."""
    topic = make_topics(partitions=3).transfers
    _produce(services.kafka_bootstrap, topic, _minutes_by_partition(3, 50))
    abandoned = REGISTRY.get_sample_value("fraudwatch_merge_waits_abandoned_total") or 0.0
    silent, worker, merge, read = _beside_a_silent_member(
        services.kafka_bootstrap, redis_client, topic, member_patience_s=1.0
    )
    try:
        deadline = time.monotonic() + 30
        while not read and time.monotonic() < deadline:
            silent.poll(timeout_ms=50)
            read = merge.poll(timeout_ms=50, max_records=100)
        unclaimed = 3 - len(worker.assignment())
        assert {r.partition for r in read} == {tp.partition for tp in worker.assignment()}
        assert REGISTRY.get_sample_value("fraudwatch_merge_waits_abandoned_total") == (
            abandoned + unclaimed
        )
        assert "no group member claimed" in caplog.text
    finally:
        close_consumer(silent)
        worker.close()


class _CountedClaims(RedisPartitionClaims):
    """Claims that count how often the others' are read."""

    reads = 0

    def generations(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        self.reads += 1
        return super().generations(partitions)


def test_members_that_claimed_their_partitions_do_not_wait_for_one_another(
    services: EmbeddedServices, make_topics: TopicFactory, redis_client: redis.Redis
) -> None:
    """Each of two live members merges its own partitions of a backlog at once, reading the
    others' claims once per generation rather than on every poll."""
    topic = make_topics(partitions=3).transfers
    partitions = _minutes_by_partition(3, 300)
    group = f"fw-merge-{uuid.uuid4().hex[:10]}"
    claims = _CountedClaims(redis_client, group)
    members = [_group_member(services.kafka_bootstrap, group, topic) for _ in range(2)]
    merges = [EventTimeMerge(m, lambda r: _record_time(r.value), buffer_records=100,
                             timed_topics=frozenset({topic}), patience_s=1.0, claims=claims,
                             member_patience_s=60.0) for m in members]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not all(m.assignment() for m in members):
            assert time.monotonic() < deadline, "the two members did not share the partitions"
            for merge in merges:
                assert merge.poll(timeout_ms=50, max_records=100) == []
        owned = [{tp.partition for tp in m.assignment()} for m in members]
        assert owned[0] | owned[1] == {0, 1, 2} and not owned[0] & owned[1]
        _produce(services.kafka_bootstrap, topic, partitions)
        read: list[list[ConsumerRecord]] = [[], []]
        reads_before, polls = claims.reads, 0
        deadline = time.monotonic() + 20
        while sum(map(len, read)) < 900 and time.monotonic() < deadline:
            for me, merge in enumerate(merges):
                read[me] += merge.poll(timeout_ms=50, max_records=100)
                polls += 1
        # Once a member has seen the other's partitions claimed in this generation, it does not
        # ask again (at most twice each: once more if the other had not claimed yet).
        assert claims.reads - reads_before <= 2 * len(members) < polls
    finally:
        for member in members:
            member.close()
    for me in range(2):
        mine = [partitions[p] for p in sorted(owned[me])]
        assert [r.value for r in read[me]] == list(heapq.merge(*mine, key=_event_time))


def _two_members_said(
    bootstrap: str, redis_client: redis.Redis, topic: str
) -> tuple[list[KafkaConsumer], list[EventTimeMerge]]:
    """Two members of a new group sharing `topic`'s partitions, with a merge each that has
    said for a second that its partitions are caught up, and read what the other said."""
    group = f"fw-merge-{uuid.uuid4().hex[:10]}"
    members = [_group_member(bootstrap, group, topic) for _ in range(2)]
    merges = [_merge_said_to(redis_client, group, m, topic) for m in members]
    deadline = time.monotonic() + 60
    while not all(m.assignment() for m in members):
        assert time.monotonic() < deadline, "the two members did not share the partitions"
        for merge in merges:
            assert merge.poll(timeout_ms=50, max_records=100) == []
    said = time.monotonic() + 1.0
    while time.monotonic() < said:
        for merge in merges:
            assert merge.poll(timeout_ms=50, max_records=100) == []
    return members, merges


def _merge_said_to(
    redis_client: redis.Redis, group: str, member: KafkaConsumer, topic: str
) -> EventTimeMerge:
    """A merge over `member` that says its heads in `group`'s claims hash."""
    return EventTimeMerge(member, lambda r: _record_time(r.value), buffer_records=100,
                          timed_topics=frozenset({topic}), patience_s=1.0,
                          claims=RedisPartitionClaims(redis_client, group),
                          member_patience_s=60.0, member_silent_s=0.5)  # fmt: skip


def _live_on(member: KafkaConsumer, n: int, later_ms: int) -> list[list[bytes]]:
    """`n` live transfers `later_ms` from now on `member`'s first partition of two."""
    now_ms = time.time_ns() // 1_000_000
    partitions: list[list[bytes]] = [[], []]
    partitions[min(tp.partition for tp in member.assignment())] = [
        _transfer(later_ms + i, now_ms + later_ms + i) for i in range(n)
    ]
    return partitions


def _poll_settled(merge: EventTimeMerge, max_records: int) -> list[ConsumerRecord]:
    """A poll whose records are applied at once, as the worker settles a finished batch."""
    records = merge.poll(timeout_ms=50, max_records=max_records)
    merge.settled({TopicPartition(r.topic, r.partition): r.offset + 1 for r in records})
    return records


def _read_for(
    merge: EventTimeMerge, seconds: float, beside: Callable[[], object]
) -> list[ConsumerRecord]:
    """What `merge` reads in `seconds`, calling `beside` (another member's poll) between."""
    read: list[ConsumerRecord] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        read += merge.poll(timeout_ms=50, max_records=100)
        beside()
    return read


def test_records_handed_out_hold_their_partition_back_until_settled(
    services: EmbeddedServices, make_topics: TopicFactory, redis_client: redis.Redis
) -> None:
    """A member says where its partitions stand from the records it handed out and has not
    settled (their state is not written yet), not from its buffers alone: the other member's
    later live records wait for that, or they would be scored without those."""
    topic = make_topics(partitions=2).transfers
    (first_member, second_member), (first, second) = _two_members_said(
        services.kafka_bootstrap, redis_client, topic
    )
    try:
        earlier = _live_on(first_member, 3, 2_000)
        later = _live_on(second_member, 3, 4_000)
        _produce(services.kafka_bootstrap, topic,
                 [a + b for a, b in zip(earlier, later, strict=True)])  # fmt: skip
        handed: list[ConsumerRecord] = []
        deadline = time.monotonic() + 10
        while len(handed) < 3:
            assert time.monotonic() < deadline, "the first member's records did not come"
            handed += first.poll(timeout_ms=50, max_records=100)
        saying = partial(first.poll, timeout_ms=50, max_records=100)  # and reading nothing
        assert _read_for(first, 0.5, lambda: None) == []  # says where it stands meanwhile
        held = _read_for(second, 1.0, saying)
        first.settled({TopicPartition(topic, handed[-1].partition): handed[-1].offset + 1})
        read = _read_for(second, 3.0, saying)
    finally:
        for member in (first_member, second_member):
            member.close()
    assert held == []
    assert [r.value for r in read] == next(values for values in later if values)


def test_a_member_new_to_the_group_does_not_take_a_silent_member_at_its_last_word(
    services: EmbeddedServices, make_topics: TopicFactory, redis_client: redis.Redis
) -> None:
    """A worker that starts after another stopped (a replacement) first reads the stopped
    one's last word: its partitions were caught up. Taken at its word, the new worker would
    read its own live records past what arrived on those partitions since; it waits until
    that member says something new."""
    topic = make_topics(partitions=2).transfers
    (stopped, member), _ = _two_members_said(services.kafka_bootstrap, redis_client, topic)
    group = member.config["group_id"]
    try:
        time.sleep(0.7)  # the stopped member's merge is silent from here on
        merge = _merge_said_to(redis_client, group, member, topic)  # the new worker's
        live = _live_on(member, 3, 2_000)
        _produce(services.kafka_bootstrap, topic, live)
        held = _read_for(merge, 1.0, partial(stopped.poll, timeout_ms=0))  # a member, silent
        woken = _merge_said_to(redis_client, group, stopped, topic)
        read = _read_for(merge, 3.0, partial(woken.poll, timeout_ms=0, max_records=100))
    finally:
        for consumer in (stopped, member):
            consumer.close()
    assert held == []
    assert [r.value for r in read] == next(values for values in live if values)


def test_a_member_that_stops_reading_holds_the_others_live_records_back(
    services: EmbeddedServices, make_topics: TopicFactory, redis_client: redis.Redis
) -> None:
    """A member that stops reading (killed: the group keeps it, and its claim, until its
    session expires) holds the other member's live records back from when it fell silent;
    once its partitions come to that member, it reads everything merged in event time, as one
    member would have. Without that, the survivor would score a mule's payouts on its own
    partitions before the arrivals on the dead member's."""
    topic = make_topics(partitions=3).transfers
    (dying, survivor), merges = _two_members_said(services.kafka_bootstrap, redis_client, topic)
    try:
        silent = time.monotonic() + 1.0  # the dying member falls silent; the other reads on
        while time.monotonic() < silent:
            assert merges[1].poll(timeout_ms=50, max_records=100) == []
        now_ms = time.time_ns() // 1_000_000
        partitions = [
            [_transfer(3 * i + p, now_ms + 2_000 + (3 * i + p) * 100) for i in range(20)]
            for p in range(3)
        ]
        _produce(services.kafka_bootstrap, topic, partitions)
        read: list[ConsumerRecord] = []
        deadline = time.monotonic() + 60
        while len(read) < 60 and time.monotonic() < deadline:
            read += merges[1].poll(timeout_ms=50, max_records=100)
    finally:
        close_consumer(dying)
        survivor.close()
    assert [r.value for r in read] == list(heapq.merge(*partitions, key=_event_time))


def test_heads_are_said_and_read_in_one_round_trip_and_a_foreign_one_is_skipped(
    redis_client: redis.Redis,
) -> None:
    """What a member reads of the others' heads: those said, with when; a value this release
    does not write (by hand, another release) holds nothing back rather than stop the worker."""
    claims = RedisPartitionClaims(redis_client, "heads")
    mine, said, foreign, unsaid = (TopicPartition("t", p) for p in range(4))
    assert claims.exchange_heads({said: 1_000}, []) == {}
    redis_client.hset("fw:{claims:heads}", "h:t:2", "soon")
    heads = claims.exchange_heads({mine: 2_000}, [said, foreign, unsaid])
    assert list(heads) == [said] and heads[said][0] == 1_000
    assert heads[said][1] == pytest.approx(time.time() * 1000, abs=60_000)


def test_members_catching_up_on_the_last_minutes_read_in_step(
    services: EmbeddedServices, make_topics: TopicFactory, redis_client: redis.Redis
) -> None:
    """Members catching up on minutes-old traffic (after an outage) read in step, as one
    member would: none reads further than LIVE_SKEW_MS past where another's partitions stand,
    however slowly that one reads."""
    topic = make_topics(partitions=3).transfers
    members, (fast, slow) = _two_members_said(services.kafka_bootstrap, redis_client, topic)
    try:
        start_ms = time.time_ns() // 1_000_000 - 10 * MINUTE_MS  # the last 10 minutes
        partitions = [
            [_transfer(3 * i + p, start_ms + (3 * i + p) * 1_000) for i in range(150)]
            for p in range(3)
        ]
        _produce(services.kafka_bootstrap, topic, partitions)
        read_fast: list[ConsumerRecord] = []
        read_slow: list[ConsumerRecord] = []
        deadline = time.monotonic() + 10
        while not read_slow:  # the slow one has fetched its records
            assert time.monotonic() < deadline, "the slow member's records did not come"
            read_slow += _poll_settled(slow, 1)
        time.sleep(0.05)
        read_slow += _poll_settled(slow, 1)  # and says where it stands
        until = time.monotonic() + 3.0
        while time.monotonic() < until:
            read_fast += _poll_settled(fast, 100)
            read_slow += _poll_settled(slow, 1)
            time.sleep(0.05)
        slow_own = [v for p in sorted(tp.partition for tp in members[1].assignment())
                    for v in partitions[p]]  # fmt: skip
    finally:
        for member in members:
            member.close()
    unread = set(slow_own) - {r.value for r in read_slow}
    assert read_fast and read_slow
    assert max(map(_event_time, (r.value for r in read_fast))) <= (
        min(map(_event_time, unread)) + LIVE_SKEW_MS
    )
