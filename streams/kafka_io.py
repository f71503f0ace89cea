"""Kafka clients configured for the worker: manual commits, bounded polls, acked produces,
and a group membership that is logged and never left half-joined."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import MemberState

from streams import metrics

log = logging.getLogger("fraudwatch.worker")


def _partition_names(partitions: Sequence[TopicPartition]) -> list[str]:
    return sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions)


class GroupMembershipLog(ConsumerRebalanceListener):  # type: ignore[misc]
    """Logs every rebalance and assignment, and drops the lag gauge of partitions this worker
    gave up, so no stale value lingers."""

    # Set by `close_consumer`: the partitions are then given up to leave, not to join again.
    leaving = False

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        """Called by the consumer as a (re)join of the group begins, and as it closes."""
        if self.leaving:
            log.info(
                "leaving the consumer group",
                extra={"event": "group_leaving", "revoked": _partition_names(revoked)},
            )
        else:
            log.info(
                "joining the consumer group",
                extra={"event": "group_joining", "revoked": _partition_names(revoked)},
            )
        _forget_lag(revoked)

    def on_partitions_lost(self, lost: Sequence[TopicPartition]) -> None:
        """Called when the membership ended without a handover (expired, or dropped at close
        while half-made)."""
        log.info(
            "left the consumer group", extra={"event": "group_left", "lost": _partition_names(lost)}
        )
        _forget_lag(lost)

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        """Called by the consumer once the join completed with this worker's partitions."""
        metrics.GROUP_REBALANCES.inc()
        log.info(
            "joined the consumer group" if assigned else
            "joined the consumer group with no partition: the group has more workers than the "
            "topics have partitions, and this one stands by until another leaves",
            extra={"event": "group_joined", "assigned": _partition_names(assigned)},
        )  # fmt: skip


def _forget_lag(partitions: Iterable[TopicPartition]) -> None:
    for tp in partitions:
        metrics.forget_partition_lag(tp.topic, tp.partition)


def report_partition_lag(consumer: KafkaConsumer, committed: dict[TopicPartition, int]) -> int:
    """Set each assigned partition's lag gauge and return their sum. Lag is counted from what
    is committed (`committed`, whose entries of partitions no longer assigned are dropped), not
    from the consumer's position: records fetched and held are work not done.

    The rebalance listener forgets a revoked partition's gauge on kafka-python's I/O thread,
    maybe just before this sets it from the assignment it read: what is no longer assigned
    afterwards is forgotten again, so no stale lag lingers."""
    assignment = consumer.assignment()
    for tp in committed.keys() - assignment:
        del committed[tp]
    lag = 0
    reported = set()
    for tp in assignment:
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        position = consumer.position(tp)
        behind = max(0, highwater - min(committed.get(tp, position), position))
        metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(behind)
        reported.add(tp)
        lag += behind
    _forget_lag(reported - consumer.assignment())
    return lag


def group_member_stable(consumer: KafkaConsumer) -> bool:
    """Whether the consumer is a settled member of its group (joined and synced, no join in
    flight). kafka-python keeps this in its coordinator's state, which it does not publish;
    the pinned version range and tests/integration/test_faults.py hold us to it."""
    return bool(consumer._coordinator.state is MemberState.STABLE)


def group_coordinator_reachable(consumer: KafkaConsumer) -> bool:
    """Whether the consumer knows its group's coordinator and is connected to it. While the
    broker is away (and until the client has found it again) this is false, and nothing is
    fetched or committed; the lag the client reports is then stale. Same private state as
    `group_member_stable`."""
    return not consumer._coordinator.coordinator_unknown()


def group_generation(consumer: KafkaConsumer) -> int | None:
    """The consumer's group generation while it is a settled member (None otherwise)."""
    generation = consumer._coordinator.generation_if_stable()
    return None if generation is None else int(generation.generation_id)


def release_drained_records(consumer: KafkaConsumer) -> None:
    """Let records that partitions fetched while paused come back once they are resumed.

    kafka-python 3.0.12 parks such records and gives them back only while its in-line slot
    is empty (None). A drained batch stays in that slot (falsy, not None) until a fetch
    response replaces it, and a partition with parked records is not fetched again, so a
    resumed partition can wait forever (deploy/upstream/kafka-python-resumed-records.md).
    Emptying the slot of a drained batch is what the fetcher does itself before it takes the
    next response. tests/integration/test_event_time_merge.py holds us to it.
    """
    fetcher = consumer._fetcher
    in_line = fetcher._next_partition_records
    if in_line is not None and not in_line:
        fetcher._next_partition_records = None


def close_consumer(consumer: KafkaConsumer, timeout_ms: int = 10_000) -> None:
    """Close without committing; leave the group only as a settled member that is not its
    leader.

    On Tansu 0.6 a LeaveGroup from the group's leader while the group is forming (our own
    JoinGroup still being answered, or another member's join under way, as in a rolling
    restart) leaves the departed member as leader forever, and nobody gets a partition again
    (deploy/upstream/tansu-leave-during-join.md). Forgetting the membership instead makes the
    broker expire it after the session timeout, as if the worker had died, and the group
    heals. A settled follower's leave is safe and hands its partitions over at once.
    """
    listener = consumer._subscription.rebalance_listener
    if isinstance(listener, GroupMembershipLog):
        listener.leaving = True
    coordinator = consumer._coordinator
    with coordinator._lock:
        # Read before close(): it clears the leader flag before it leaves.
        if coordinator.state is not MemberState.STABLE or coordinator._is_leader:
            # No member id, no LeaveGroup; a late JoinGroup answer is then ignored.
            coordinator.reset_generation()
    consumer.close(autocommit=False, timeout_ms=timeout_ms)


# kafka-python backs off up to 30 s between reconnects (the Java client: 1 s): after a broker
# outage of half a minute, scoring stood still for another ~25 s once the broker was back.
RECONNECT_BACKOFF_MAX_MS = 1000


def worker_consumer(
    bootstrap: str,
    topics: Sequence[str],
    group: str,
    *,
    batch_size: int,
    max_poll_interval_ms: int,
    session_timeout_ms: int,
) -> KafkaConsumer:
    """A group consumer that never commits on its own; the worker commits after each batch."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=f"{group}-worker",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch_size,
        max_poll_interval_ms=max_poll_interval_ms,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(100, session_timeout_ms // 3),
        # A short broker-side wait keeps latency low when traffic is light.
        fetch_max_wait_ms=20,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
    )
    consumer.subscribe(list(topics), listener=GroupMembershipLog())
    return consumer


def acked_producer(
    bootstrap: str, client_id: str = "fraudwatch", *, max_request_bytes: int = 1024 * 1024
) -> KafkaProducer:
    """A producer whose sends are acknowledged by all in-sync replicas before `flush` returns;
    a record over `max_request_bytes` is refused at `send`.

    Not idempotent (kafka-python's default since 2.1): a producer id outlives no broker
    restart that loses it, and the producer then failed every later send with an
    InitProducerId error, for good. Publishing is at-least-once by design anyway: a
    redelivered batch publishes its alerts again, under the same alert ids."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=False,
        acks="all",
        linger_ms=5,
        batch_size=256 * 1024,
        retries=5,
        max_request_size=max_request_bytes,
        reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
    )
