"""One phone or IP written two ways is one identifier: canonical forms, then one pseudonym."""

from __future__ import annotations

import pytest

from models.identifiers import canonical_identifier, canonical_ip, canonical_phone
from models.watchlist import Watchlists, make_entry
from streams.state.base import EntityHasher

NOW = 1_772_000_000_000


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:0db8:0000::0001", "2001:db8::1"),
        (" 2001:db8::1 ", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("::FFFF:C000:0201", "192.0.2.1"),
        ("192.0.2.1", "192.0.2.1"),
        ("not an address", "not an address"),
    ],
)
def test_ip_addresses_take_their_canonical_text(written: str, canonical: str) -> None:
    assert canonical_ip(written) == canonical


@pytest.mark.parametrize(
    "written",
    [
        "+86 138 0013 8000",
        "+8613800138000",
        "13800138000",
        "138-0013-8000",
        "0086 138 0013 8000",
        "008613800138000",
        "(+86) 138 0013 8000",
        " +86 138 0013 8000 ",
    ],
)
def test_a_chinese_mobile_written_any_usual_way_is_one_number(written: str) -> None:
    assert canonical_phone(written, "CN") == "+8613800138000"


@pytest.mark.parametrize("region", ["CN", "HK", "JP", "US", "GB"])
def test_00_is_the_international_prefix_in_every_region(region: str) -> None:
    assert canonical_phone("0086 139 1234 5678", region) == "+8613912345678"
    assert canonical_phone("+86 139 1234 5678", region) == "+8613912345678"


def test_national_numbers_are_read_in_the_configured_region() -> None:
    assert canonical_phone("010-6552 9988", "CN") == "+861065529988"  # trunk 0 dropped
    assert canonical_phone("06 6988 1234", "IT") == "+390669881234"  # Italy keeps its 0
    assert canonical_phone("(415) 555-0100", "US") == "+14155550100"
    assert canonical_phone("+1 415 555 0100", "CN") == "+14155550100"  # international wins


def test_what_is_not_a_phone_number_keeps_its_digits_or_its_text() -> None:
    assert canonical_phone("+999 1234", "CN") == "+9991234"
    assert canonical_phone("unknown", "CN") == "unknown"
    assert canonical_identifier("device", "  dev-8c1e9f ") == "dev-8c1e9f"


def test_the_hasher_gives_one_pseudonym_per_identifier_however_written() -> None:
    hasher = EntityHasher("key")
    assert hasher("phone", "+86 138 0013 8000") == hasher("phone", "13800138000")
    assert hasher("phone", "0086 138 0013 8000") == hasher("phone", "+8613800138000")
    assert hasher("ip", "2001:DB8::1") == hasher("ip", "2001:db8::1")
    assert hasher("ip", "::ffff:203.0.113.9") == hasher("ip", "203.0.113.9")
    assert hasher("phone", "13800138000") != hasher("phone", "13800138001")
    assert hasher("phone", "13800138000") != hasher("ip", "13800138000")
    assert EntityHasher("key", "US")("phone", "4155550100") == hasher("phone", "+14155550100")


def test_a_watchlisted_phone_matches_the_same_phone_written_otherwise() -> None:
    hasher = EntityHasher("key")
    entry = make_entry("phone", "+86 138 0013 8000", "police", "scam SIM", None,
                       now_ms=NOW, pseudonymise=hasher)  # fmt: skip
    lists = Watchlists(1, {"phone": {entry.key: None}})
    assert lists.listed("phone", hasher("phone", "13800138000"), NOW)
