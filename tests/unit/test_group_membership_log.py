"""What a worker's log says of its group membership: a worker that stops says it leaves, not
that it joins again, and one that gets no partition says why it stands by."""

from __future__ import annotations

import logging

import pytest
from kafka import TopicPartition

from streams.kafka_io import GroupMembershipLog

OWNED = [TopicPartition("transfers", 0)]


def _events(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(getattr(r, "event", ""), r.getMessage()) for r in caplog.records]


def test_a_rejoin_and_a_leave_are_told_apart(caplog: pytest.LogCaptureFixture) -> None:
    listener = GroupMembershipLog()
    with caplog.at_level(logging.INFO, logger="fraudwatch.worker"):
        listener.on_partitions_revoked(OWNED)
        listener.leaving = True  # as close_consumer sets it before closing
        listener.on_partitions_revoked(OWNED)
    assert _events(caplog) == [
        ("group_joining", "joining the consumer group"),
        ("group_leaving", "leaving the consumer group"),
    ]


def test_a_worker_given_no_partition_says_it_stands_by(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="fraudwatch.worker"):
        GroupMembershipLog().on_partitions_assigned([])
    (event, message), = _events(caplog)
    assert event == "group_joined" and "more workers than the topics have partitions" in message
    assert caplog.records[0].__dict__["assigned"] == []
