"""A worker's consumer-lag gauge: counted from what is committed, and never left standing for
a partition handed over while it was being reported."""

from __future__ import annotations

from kafka import TopicPartition
from prometheus_client import REGISTRY

from streams.kafka_io import report_partition_lag

KEPT, HANDED_OVER = TopicPartition("transfers-lag", 0), TopicPartition("transfers-lag", 1)


class RevokedMidReport:
    """A consumer whose rebalance takes partition 1 away after the worker read its assignment
    (kafka-python runs the listener on its I/O thread, concurrently with the worker)."""

    def __init__(self) -> None:
        self._assignments = [{KEPT, HANDED_OVER}, {KEPT}]

    def assignment(self) -> set[TopicPartition]:
        return self._assignments.pop(0) if len(self._assignments) > 1 else self._assignments[0]

    def highwater(self, tp: TopicPartition) -> int:
        return 100

    def position(self, tp: TopicPartition) -> int:
        return 90


def _lag(tp: TopicPartition) -> float | None:
    return REGISTRY.get_sample_value(
        "fraudwatch_consumer_lag", {"topic": tp.topic, "partition": str(tp.partition)}
    )


def test_lag_counts_from_the_committed_offset_and_drops_a_partition_revoked_meanwhile() -> None:
    committed = {KEPT: 60, TopicPartition("transfers-lag", 7): 5}  # 7: assigned no more

    lag = report_partition_lag(RevokedMidReport(), committed)  # type: ignore[arg-type]

    assert lag == 40 + 10  # partition 0 from its commit, partition 1 from its position
    assert _lag(KEPT) == 40
    assert _lag(HANDED_OVER) in (None, 0)  # not 10: that worker no longer reads it
    assert committed == {KEPT: 60}
