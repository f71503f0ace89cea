"""The transfer contract: what is accepted, and the reason given for what is not."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest

from models.events import (
    EventTimeBounds,
    InvalidEvent,
    parse_account,
    parse_transfer,
)

GOOD = {
    "transfer_id": "tx-1",
    "ts": "2026-03-01T22:15:03.120+08:00",
    "src_account": "A1",
    "dst_account": "B1",
    "amount": "1250.10",
    "currency": "CNY",
}


def encode(**changes: object) -> bytes:
    event = {**GOOD, **changes}
    return orjson.dumps({k: v for k, v in event.items() if v is not ...})


def test_valid_transfer_is_normalised() -> None:
    t = parse_transfer(encode(unknown_field="ignored"))
    assert t.amount == Decimal("1250.10")
    assert t.amount_minor == 125010
    assert t.ts_ms == 1772374503120
    assert t.utc_offset_min == 480
    assert t.local_hour == 22
    assert t.channel == "other"


def test_optional_fields_sent_as_null_are_absent() -> None:
    """Serialisers that write every field send null for what is not there."""
    nulls = {f: None for f in ("channel", "src_bank", "device_id", "ip", "phone", "memo")}
    t = parse_transfer(encode(**nulls))
    assert (t.channel, t.device_id, t.ip, t.phone) == ("other", None, None, None)
    assert parse_transfer(encode(channel="atm")).channel == "atm"


def test_json_number_amount_is_exact() -> None:
    raw = encode().replace(b'"1250.10"', b"1250.10")
    assert parse_transfer(raw).amount_minor == 125010


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        (b"not json", "malformed_json", "not valid JSON"),
        (b"[1, 2]", "not_an_object", "Expected `object`"),
        (encode(amount=...), "missing_field", "amount"),
        (encode(transfer_id=...), "missing_field", "transfer_id"),
        (encode(amount="-5"), "bad_amount", "greater than 0"),
        (encode(amount="0"), "bad_amount", "greater than 0"),
        (encode(amount="12.345"), "bad_amount", "2 decimal places"),
        (encode(amount="1000000000000"), "bad_amount", "below 10^12"),
        (encode(amount=True), "bad_amount", "amount"),
        (encode(ts="yesterday"), "bad_timestamp", "RFC 3339"),
        (encode(ts="2026-03-01T22:15:03"), "bad_timestamp", "UTC offset"),
        (encode(dst_account="A1"), "same_account", "must differ"),
        (encode(transfer_id="has space"), "invalid_field", "transfer_id"),
        (encode(currency="yuan"), "invalid_field", "currency"),
        (encode(channel="pigeon"), "invalid_field", "channel"),
        (encode(ip="999.1.1.1"), "invalid_field", "`ip`"),
        (encode(memo="x" * 141), "invalid_field", "memo"),
    ],
)
def test_invalid_transfer_has_code_and_reason(raw: bytes, code: str, fragment: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_transfer(raw)
    assert caught.value.code == code
    assert fragment in caught.value.reason


def test_trailing_zero_decimals_are_accepted() -> None:
    assert parse_transfer(encode(amount="12.300")).amount_minor == 1230


def test_account_profile() -> None:
    profile = parse_account(
        b'{"account_id":"A1","opened_at":"2026-01-01T00:00:00Z","holder_birth_year":1950,'
        b'"kind":"personal","phone":"+8613800000000"}'
    )
    assert profile.opened_at_ms == 1767225600000
    assert profile.holder_birth_year == 1950
    with pytest.raises(InvalidEvent) as caught:
        parse_account(b'{"account_id":"A1","kind":"alien"}')
    assert "kind" in caught.value.reason


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
        encode(memo=...)[:-1] + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["objects", "arrays", "inside-an-unknown-field"],
)
def test_deep_nesting_is_rejected_not_a_crash(raw: bytes) -> None:
    with pytest.raises(InvalidEvent) as rejected:
        parse_transfer(raw)
    assert rejected.value.code in {"malformed_json", "not_an_object"}


def test_a_400_digit_amount_is_rejected_with_a_short_reason() -> None:
    raw = encode().replace(b'"1250.10"', b"9" * 400)
    with pytest.raises(InvalidEvent) as rejected:
        parse_transfer(raw)
    assert rejected.value.code == "bad_amount"
    assert len(rejected.value.reason) < 120


NOW_MS = 1_772_374_503_120  # 2026-03-01T14:15:03.120Z


@pytest.mark.parametrize(
    ("ts", "accepted"),
    [
        ("2000-01-01T00:00:00Z", True),
        ("1999-12-31T23:59:59.999Z", False),
        ("0001-01-01T00:00:00+14:00", False),
        ("2026-03-02T14:15:03.120Z", True),  # exactly a day ahead
        ("2026-03-02T14:15:03.121Z", False),
        ("9999-12-31T23:59:59-01:00", False),
    ],
)
def test_event_time_bounds(ts: str, accepted: bool) -> None:
    transfer = parse_transfer(encode(ts=ts))
    bounds = EventTimeBounds()
    if accepted:
        bounds.check(transfer.ts_ms, NOW_MS)
        return
    with pytest.raises(InvalidEvent) as rejected:
        bounds.check(transfer.ts_ms, NOW_MS)
    assert rejected.value.code == "ts_out_of_range"
    assert (
        "accepted range 2000-01-01T00:00:00+00:00 .. 2026-03-02T14:15:03" in rejected.value.reason
    )


def test_an_account_opened_before_1900_or_in_the_future_is_out_of_range() -> None:
    bounds = EventTimeBounds()
    bounds.check_opened_at(
        parse_account(b'{"account_id": "a", "opened_at": "1950-05-01T00:00:00Z"}').opened_at_ms
        or 0,
        NOW_MS,
    )
    for opened in ("1899-12-31T00:00:00Z", "2027-01-01T00:00:00Z"):
        profile = parse_account(orjson.dumps({"account_id": "a", "opened_at": opened}))
        assert profile.opened_at_ms is not None
        with pytest.raises(InvalidEvent, match="opened_at"):
            bounds.check_opened_at(profile.opened_at_ms, NOW_MS)


def test_the_window_is_configurable() -> None:
    bounds = EventTimeBounds(earliest_ms=NOW_MS - 1000, max_ahead_ms=0)
    bounds.check(NOW_MS, NOW_MS)
    for ts_ms in (NOW_MS - 1001, NOW_MS + 1):
        with pytest.raises(InvalidEvent):
            bounds.check(ts_ms, NOW_MS)


@pytest.mark.parametrize("parse", [parse_transfer, parse_account])
def test_nesting_too_deep_for_the_decoder_is_malformed_json(
    parse: Callable[[bytes], object],
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    assert caught.value.code == "malformed_json" and "nested too deeply" in caught.value.reason


def test_account_ids_lose_padding_like_the_watchlists_and_must_name_someone() -> None:
    # A padded export's " WL-1 " is the account a watchlist lists as "WL-1".
    padded = parse_transfer(encode(src_account=" A1 ", dst_account="B1\t"))
    assert (padded.src_account, padded.dst_account) == ("A1", "B1")
    assert parse_account(b'{"account_id": "  X-9 "}').account_id == "X-9"
    for changes, reason in [
        ({"src_account": "   "}, "`src_account` is blank"),
        ({"dst_account": "B\x001"}, "`dst_account` contains an unprintable character"),
        ({"dst_account": " A1"}, "must differ"),
    ]:
        with pytest.raises(InvalidEvent) as refused:
            parse_transfer(encode(**changes))
        assert reason in refused.value.reason
    with pytest.raises(InvalidEvent, match="unprintable character"):
        parse_account(b'{"account_id": "X\\u00079"}')


def test_a_configured_zone_reads_the_hour_of_day_whatever_offset_the_event_carries() -> None:
    # One instant, 00:00:47 in Shanghai, written in three offsets: a UTC feed scores the same.
    written = ["2026-03-01T00:00:47.527+08:00", "2026-02-28T16:00:47.527Z",
               "2026-02-28T11:00:47.527-05:00"]  # fmt: skip
    shanghai = ZoneInfo("Asia/Shanghai")
    hours = {ts: parse_transfer(encode(ts=ts), local_zone=shanghai).local_hour for ts in written}
    assert set(hours.values()) == {0}
    assert [parse_transfer(encode(ts=ts)).local_hour for ts in written] == [0, 16, 11]
    # Daylight saving: New York is UTC-4 in July, UTC-5 in January.
    new_york = ZoneInfo("America/New_York")
    assert parse_transfer(encode(ts="2026-07-01T12:00:00Z"), local_zone=new_york).local_hour == 8
    assert parse_transfer(encode(ts="2026-01-01T12:00:00Z"), local_zone=new_york).local_hour == 7


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (rb'{"transfer_id": "a\ud800"}', "\\ud800 without a low surrogate after it (byte 18)"),
        (rb'{"transfer_id": "a\uDBFFx"}', "\\uDBFF without a low surrogate after it (byte 18)"),
        (rb'{"transfer_id": "a\ud800', "truncated"),
        (rb'{"transfer_id": "a', "truncated"),
    ],
)
def test_a_lone_high_surrogate_escape_is_named_not_called_truncated(
    raw: bytes, reason: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_transfer(raw)
    assert caught.value.code == "malformed_json" and reason in caught.value.reason


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"transfer_id": "tx-1\n"}, "invalid_field"),
        ({"currency": "CNY\n"}, "invalid_field"),
        ({"src_country": "CN\n"}, "invalid_field"),
        ({"amount": "1_000"}, "bad_amount"),
        ({"amount": " 10 "}, "bad_amount"),
        ({"amount": "1e3"}, "bad_amount"),
        ({"amount": "+10"}, "bad_amount"),
        ({"amount": "NaN"}, "bad_amount"),
        ({"amount": None}, "bad_amount"),
        ({"amount": [10]}, "bad_amount"),
        ({"ts": "2026-W09-7T22:15:03+08:00"}, "bad_timestamp"),
        ({"ts": "20260301T221503+0800"}, "bad_timestamp"),
        ({"ts": "2026-03-01T22+08:00"}, "bad_timestamp"),
        ({"ts": "2026-03-01 22:15:03+08:00"}, "bad_timestamp"),
    ],
)
def test_values_python_would_read_but_the_contract_does_not_allow(
    changes: dict[str, object], code: str
) -> None:
    """A trailing newline passes a `$` pattern under `re.search`; Decimal takes "1_000" and
    "1e3"; `fromisoformat` takes ISO 8601 forms that are not RFC 3339."""
    with pytest.raises(InvalidEvent) as rejected:
        parse_transfer(encode(**changes))
    assert rejected.value.code == code


@pytest.mark.parametrize(
    ("amount", "minor"), [(b"1e3", 100000), (b"12.5E1", 12500), (b"0.01", 1), (b'"0.01"', 1)]
)
def test_a_json_number_in_any_of_its_forms_is_read_exactly(amount: bytes, minor: int) -> None:
    raw = encode().replace(b'"1250.10"', amount)
    assert parse_transfer(raw).amount_minor == minor


def test_rfc_3339_lower_case_separators_and_z_are_accepted() -> None:
    t = parse_transfer(encode(ts="2026-03-01t14:15:03.120z"))
    assert (t.ts_ms, t.utc_offset_min) == (1772374503120, 0)
