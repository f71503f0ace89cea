"""The dead-letter envelope: readable, exact about the original, and bounded in size."""

from __future__ import annotations

import base64
import hashlib

import orjson

from streams.dead_letter import dead_letter_value


def _letter(original: bytes | None, **options: int) -> dict[str, object]:
    value = dead_letter_value(original, "transfers", 2, 41, "bad_amount", "why", **options)
    envelope: dict[str, object] = orjson.loads(value)
    return envelope


def test_a_small_message_is_kept_whole_as_bytes_and_text() -> None:
    letter = _letter(b'{"amount": -1}')
    assert letter["original_base64"] == base64.b64encode(b'{"amount": -1}').decode()
    assert letter["original_text"] == '{"amount": -1}'
    assert letter["original_truncated"] is False
    assert letter["original_length"] == 14
    assert letter["original_sha256"] == hashlib.sha256(b'{"amount": -1}').hexdigest()
    assert (letter["topic"], letter["partition"], letter["offset"]) == ("transfers", 2, 41)
    assert (letter["reason_code"], letter["reason"]) == ("bad_amount", "why")


def test_a_large_message_is_cut_with_its_length_and_digest() -> None:
    original = b'{"memo": "' + "é".encode() * 400_000 + b'"}'
    letter = _letter(original, original_max_bytes=1001)
    kept = base64.b64decode(str(letter["original_base64"]))
    assert kept == original[:1001]
    assert letter["original_truncated"] is True
    assert letter["original_length"] == len(original)
    assert letter["original_sha256"] == hashlib.sha256(original).hexdigest()
    # The é cut in two at the end is dropped from the text, not turned into garbage.
    assert letter["original_text"] == original[:1000].decode()


def test_binary_has_no_text_and_an_empty_message_is_recorded() -> None:
    assert _letter(bytes(range(256)))["original_text"] is None
    empty = _letter(None)
    assert (empty["original_length"], empty["original_text"]) == (0, "")


def test_the_envelope_fits_a_1_mib_record_whatever_the_message() -> None:
    # Control characters escape to six bytes each in JSON text: the worst case for the size.
    for original in (b"\x01" * 5_000_000, bytes(range(256)) * 20_000, b"x" * 5_000_000):
        value = dead_letter_value(original, "t", 0, 0, "c", "r", original_max_bytes=256 * 1024)
        assert len(value) < 1_000_000
