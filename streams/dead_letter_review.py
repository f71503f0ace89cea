"""Reading the dead-letter topic back, and sending rejected messages again once their cause
is fixed.

A dead letter carries its message's exact bytes (unless they were cut to fit), key and
headers, and where it came from. Sending one again produces those bytes to the topic it came
from, under its key and headers, so it is scored as if it had just arrived: a transfer that
was never scored counts once, and one that was (a redelivery) changes nothing. A message that
still breaks the contract is dead-lettered again.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams.produce import key_of

# Marks a message sent again from the dead-letter topic: the DLQ partition and offset it came
# from, so that its history can be followed.
RESENT_HEADER = "fraudwatch-resent-from"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of the dead-letter topic."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    envelope: dict[str, Any]

    @property
    def reason_code(self) -> str:
        """Why the message was rejected (`reason_code` of the envelope)."""
        return str(self.envelope.get("reason_code", "unreadable_dead_letter"))

    @property
    def source(self) -> str:
        """Where the message was read: topic, partition and offset."""
        e = self.envelope
        return f"{e.get('topic')}[{e.get('partition')}]@{e.get('offset')}"

    def original(self) -> bytes | None:
        """The message's bytes, or None when the envelope holds only their beginning."""
        encoded = self.envelope.get("original_base64")
        if self.envelope.get("original_truncated") or not isinstance(encoded, str):
            return None
        return base64.b64decode(encoded)


def read_dead_letters(
    bootstrap: str, topic: str, since_ms: int | None = None, timeout_ms: int = 10_000
) -> Iterator[DeadLetter]:
    """Every dead letter from `since_ms` on (broker time; None: from the start) up to the end
    the topic had when reading began. Reads without a consumer group: nothing is committed.

    The end of a partition is the high-water mark its first fetch reports, not the broker's
    answer to a list-offsets request: the embedded Tansu answers that with an offset inside
    the last batch written (5 records at 0-4 give 1), which hid the newest dead letters."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=timeout_ms)  # fmt: skip
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return
        consumer.assign(partitions)
        if since_ms is None:
            consumer.seek_to_beginning(*partitions)
            left = set(partitions)
        else:
            found = consumer.offsets_for_times({tp: since_ms for tp in partitions})
            left = {tp for tp in partitions if found[tp] is not None}
            for tp in left:
                consumer.seek(tp, found[tp].offset)
            consumer.pause(*(set(partitions) - left))
        ends: dict[TopicPartition, int] = {}
        while left:
            batch = consumer.poll(timeout_ms=timeout_ms)
            for tp in left:  # every fetch answered, even an empty one, tells the mark
                highwater = consumer.highwater(tp)
                if tp not in ends and highwater is not None:
                    ends[tp] = highwater
            for tp, records in batch.items():
                yield from (_dead_letter(r) for r in records if r.offset < ends[tp])
            done = {tp for tp in ends.keys() & left if consumer.position(tp) >= ends[tp]}
            if not batch and not done:
                raise TimeoutError(f"{topic}: no records within {timeout_ms} ms before its end")
            left -= done
            consumer.pause(*done)
    finally:
        consumer.close(autocommit=False)


def _dead_letter(record: Any) -> DeadLetter:
    try:
        envelope = orjson.loads(record.value)
    except orjson.JSONDecodeError:
        envelope = None
    return DeadLetter(record.partition, record.offset, record.timestamp, record.key,
                      tuple(record.headers or ()),
                      envelope if isinstance(envelope, dict) else {})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Resent:
    """What sending dead letters again did."""

    sent: int
    # Cut to fit the envelope: their full bytes are gone, so they cannot be sent again.
    truncated: int


def resend(
    letters: Iterable[DeadLetter], producer: KafkaProducer, key_fields: Mapping[str, str]
) -> Resent:
    """Send each dead letter's original to the topic it came from, under its key and headers
    (a dead letter written before they were kept: the key its producer would have given it,
    the message's field `key_fields[topic]`), and wait for the broker's acks."""
    sent = truncated = 0
    futures = []
    for letter in letters:
        original, topic = letter.original(), letter.envelope.get("topic")
        if original is None or not isinstance(topic, str):
            truncated += 1
            continue
        key = letter.key
        if key is None and topic in key_fields:
            key = key_of(original, key_fields[topic])
        marker = (RESENT_HEADER, f"{letter.partition}:{letter.offset}".encode())
        headers = [h for h in letter.headers if h[0] != RESENT_HEADER] + [marker]
        futures.append(producer.send(topic, value=original, key=key, headers=headers))
        sent += 1
    producer.flush()
    for future in futures:
        future.get(timeout=30)
    return Resent(sent, truncated)
