"""The dead-letter record: the rejected message's bytes, where it came from, and why."""

from __future__ import annotations

import base64

import orjson


def dead_letter_value(
    original: bytes | None, topic: str, partition: int, offset: int, code: str, reason: str
) -> bytes:
    """A JSON envelope a person can read; `original_base64` keeps the exact bytes."""
    raw = original or b""
    envelope: dict[str, object] = {
        "reason": reason,
        "reason_code": code,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "original_base64": base64.b64encode(raw).decode(),
    }
    try:
        envelope["original_text"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        envelope["original_text"] = None
    return orjson.dumps(envelope)
