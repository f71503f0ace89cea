"""Sending JSON Lines files to a topic, each line's bytes exactly as they are in the file.

The worker must see what the bank sent, malformed lines included (it routes those to the DLQ),
so lines are never parsed-and-reserialised; a line is parsed only to find its key.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson
from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError

from models.jsonl import read_lines
from streams.kafka_io import acked_producer


def key_of(line: bytes, key_field: str) -> bytes | None:
    """The UTF-8 key for a line: its `key_field` when the line is a JSON object with that string."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, dict):
        key = value.get(key_field)
        if isinstance(key, str):
            return key.encode()
    return None


class LinesTooLarge(ValueError):
    """Lines larger than the broker takes, left unsent while every other line was sent."""

    def __init__(self, sent: int, too_large: list[tuple[int, int]], limit: int) -> None:
        self.sent = sent
        self.too_large = too_large
        shown = ", ".join(f"line {n} ({size:,} bytes)" for n, size in too_large[:10])
        more = f" and {len(too_large) - 10} more" if len(too_large) > 10 else ""
        super().__init__(
            f"{len(too_large)} line(s) larger than a message may be ({limit:,} bytes) were not "
            f"sent: {shown}{more} (numbered among the file's non-blank lines); the other "
            f"{sent:,} were sent"
        )


def produce_lines(
    lines: Iterable[bytes],
    topic: str,
    *,
    key_field: str,
    producer: KafkaProducer,
) -> int:
    """Send each line as one message keyed by its `key_field`; flush and return the count.

    Raises the first delivery error, after the flush, if any send failed; then
    `LinesTooLarge` if lines too large for a message were left out (the others are sent: one
    oversized line in a bank's file must not hold back the rest).
    """
    failures: list[BaseException] = []
    too_large: list[tuple[int, int]] = []
    count = 0
    for number, line in enumerate(lines, start=1):
        try:
            future = producer.send(topic, value=line, key=key_of(line, key_field))
        except MessageSizeTooLargeError:
            too_large.append((number, len(line)))
            continue
        future.add_errback(failures.append)
        count += 1
    producer.flush()
    if failures:
        raise failures[0]
    if too_large:
        raise LinesTooLarge(count, too_large, producer.config["max_request_size"])
    return count


def produce_file(
    path: Path,
    bootstrap: str,
    topic: str,
    *,
    key_field: str = "src_account",
) -> int:
    """Send a JSON Lines file (plain or .gz) of transfers to `topic`; return how many were sent."""
    producer = acked_producer(bootstrap, client_id="fraudwatch-produce")
    try:
        return produce_lines(read_lines(path), topic, key_field=key_field, producer=producer)
    finally:
        producer.close()


def produce_accounts_file(path: Path, bootstrap: str, topic: str) -> int:
    """Send a JSON Lines file of account profiles to `topic`, keyed by `account_id`."""
    return produce_file(path, bootstrap, topic, key_field="account_id")
