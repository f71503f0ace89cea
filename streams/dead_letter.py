"""The dead-letter record: the rejected message's bytes, where it came from, and why.

The envelope is bounded whatever the message: the original is kept up to a configured size,
with its full length and sha256, so a dead letter always fits the broker's record limit (an
envelope that did not fit would stop the partition it came from).
"""

from __future__ import annotations

import base64
import hashlib

import orjson

DEFAULT_ORIGINAL_MAX_BYTES = 64 * 1024
# Under the producer's and Apache Kafka's default record limit (1 MiB) with room for headers.
_ENVELOPE_MAX_BYTES = 1_000_000


def dead_letter_value(
    original: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    code: str,
    reason: str,
    *,
    original_max_bytes: int = DEFAULT_ORIGINAL_MAX_BYTES,
) -> bytes:
    """A JSON envelope a person can read; `original_base64` keeps the exact bytes (the first
    `original_max_bytes` of them: `original_truncated` says whether that is all)."""
    raw = original or b""
    kept = raw[:original_max_bytes]
    envelope: dict[str, object] = {
        "reason": reason,
        "reason_code": code,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "original_length": len(raw),
        "original_sha256": hashlib.sha256(raw).hexdigest(),
        "original_truncated": len(kept) < len(raw),
        "original_base64": base64.b64encode(kept).decode(),
        "original_text": _text(raw, kept),
    }
    value = orjson.dumps(envelope)
    if len(value) > _ENVELOPE_MAX_BYTES:
        # Control characters escape to six bytes each in JSON text; the base64 copy suffices.
        envelope["original_text"] = None
        value = orjson.dumps(envelope)
    return value


def _text(raw: bytes, kept: bytes) -> str | None:
    """The kept bytes as text when the whole original is UTF-8 (a character cut in two at the
    end of the kept part is dropped); None for binary."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return kept.decode("utf-8", errors="ignore")
