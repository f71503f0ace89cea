"""Raw read rate: the worker's own consumer factory, decoding every message, scoring none."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from loadtest.environment import LoadtestError
from loadtest.kafka_tools import Produced
from models.events import InvalidEvent, parse_transfer
from service.settings import Settings
from streams.kafka_io import worker_consumer


@dataclass(frozen=True)
class RawReadResult:
    """How fast this machine's broker and client deliver and decode the input."""

    messages: int
    invalid: int
    tps: float  # from the first poll that returned records to the last record
    cold_tps: float  # consumer creation (group join included) to last record
    join_s: float  # consumer creation to first record


def run_raw_read(settings: Settings, produced: Produced, timeout_s: float) -> RawReadResult:
    """Consume and `parse_transfer` every produced message with the worker's fetch settings."""
    assert settings.kafka_bootstrap is not None
    started = time.monotonic()
    consumer = worker_consumer(
        settings.kafka_bootstrap,
        [produced.topic],
        f"fraudwatch-loadtest-raw-{uuid.uuid4().hex[:8]}",
        batch_size=settings.batch_size,
        max_poll_interval_ms=settings.max_poll_interval_ms,
        session_timeout_ms=settings.session_timeout_ms,
    )
    total, invalid, first, first_count = 0, 0, None, 0
    try:
        while total < produced.total:
            if time.monotonic() - started > timeout_s:
                raise LoadtestError(
                    f"raw read: {total} of {produced.total} messages after {timeout_s:.0f} s"
                )
            for records in consumer.poll(timeout_ms=200).values():
                if first is None:
                    first, first_count = time.monotonic(), len(records)
                for record in records:
                    try:
                        parse_transfer(record.value)
                    except InvalidEvent:
                        invalid += 1
                total += len(records)
        ended = time.monotonic()
    finally:
        consumer.close(autocommit=False)
    assert first is not None
    return RawReadResult(
        messages=total,
        invalid=invalid,
        tps=(total - first_count) / max(ended - first, 1e-9),
        cold_tps=total / (ended - started),
        join_s=first - started,
    )
