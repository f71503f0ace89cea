"""Watchlist entries, CSV import parsing (bad rows by line number) and matching with expiry."""

from __future__ import annotations

import io

import pytest

from models.account_risk import AccountFacts, assess_account
from models.features import ListedParties
from models.watchlist import (
    InvalidEntry,
    NotAWatchlistFile,
    UnreadableCsv,
    Watchlists,
    iso_ms,
    make_entry,
    parse_csv,
    parse_expiry,
)

NOW = 1_772_000_000_000  # 2026-02-25


def pseudo(kind: str, value: str) -> str:
    return f"h({kind}:{value})"


def test_entries_are_keyed_by_pseudonym_except_accounts() -> None:
    account = make_entry("account", " acct-1 ", "police", "mule", None, now_ms=NOW,
                         pseudonymise=pseudo)  # fmt: skip
    phone = make_entry("phone", "+8613800138000", "AFC", "scam calls", None, now_ms=NOW,
                       pseudonymise=pseudo)  # fmt: skip
    assert (account.key, account.value) == ("acct-1", "acct-1")
    assert (phone.key, phone.value) == ("h(phone:+8613800138000)", "+8613800138000")


@pytest.mark.parametrize(
    ("kind", "value", "source", "expires", "field"),
    [
        ("card", "x", "s", None, "kind"),
        ("account", "", "s", None, "value"),
        ("account", "acct\x001", "s", None, "value"),  # names no account, breaks exports
        ("ip", "999.1.1.1", "s", None, "value"),
        ("phone", "not a phone", "s", None, "value"),  # can never match a transfer's phone
        ("phone", "ext. 12", "s", None, "value"),
        ("phone", "not a phone +86 139 6666", "s", None, "value"),  # a note with digits in it
        ("account", "a", " ", None, "source"),
        ("account", "a", "s", NOW - 1, "expires_at"),
    ],
)
def test_bad_entries_name_the_field(
    kind: str, value: str, source: str, expires: int | None, field: str
) -> None:
    with pytest.raises(InvalidEntry) as bad:
        make_entry(kind, value, source, "why", expires, now_ms=NOW, pseudonymise=pseudo)
    assert bad.value.field == field


def test_expiry_needs_an_offset() -> None:
    assert parse_expiry("") is None
    assert parse_expiry("2026-03-01T00:00:00Z") == 1_772_323_200_000
    with pytest.raises(InvalidEntry):
        parse_expiry("2026-03-01T00:00:00")


CSV = """kind,value,source,reason,expires_at
account,acct-1,police notice 7,collection account,
phone,+8613800138000,anti-fraud centre,scam calls,2027-01-01T00:00:00+08:00
card,1234,bank B,unknown kind,
ip,not-an-ip,bank B,bad address,
account,acct-2,bank B,expired already,2020-01-01T00:00:00Z
device,dev-9,bank B,fine,
account,acct-3,,no source,
"""


def test_csv_keeps_good_rows_and_reports_bad_ones_by_line() -> None:
    entries, problems = parse_csv(io.StringIO(CSV), now_ms=NOW, pseudonymise=pseudo)
    assert [e.value for e in entries] == ["acct-1", "+8613800138000", "dev-9"]
    assert [p.line for p in problems] == [4, 5, 6, 8]
    assert "kind" in problems[0].reason and "past" in problems[2].reason


def test_csv_kind_option_and_header_check() -> None:
    entries, problems = parse_csv(
        io.StringIO("value,source,reason\nacct-1,police,mule\n"),
        now_ms=NOW, pseudonymise=pseudo, kind="account",
    )  # fmt: skip
    assert [e.kind for e in entries] == ["account"] and problems == []
    for text in ("value,source\nx,y\n", ""):  # an empty file has no header either
        with pytest.raises(NotAWatchlistFile, match=r"line 1: header lacks column.*kind"):
            parse_csv(io.StringIO(text), now_ms=NOW, pseudonymise=pseudo)
    # A header and no rows: nothing to import, nothing wrong.
    assert parse_csv(io.StringIO("kind,value,source,reason\n"), now_ms=NOW,
                     pseudonymise=pseudo) == ([], [])  # fmt: skip


def test_matching_honours_expiry_at_event_time() -> None:
    lists = Watchlists(3, {"account": {"mule": NOW + 1000, "forever": None}, "device": {"d": None}})
    # Which parties are listed, each: payee and device here.
    assert lists.hits(("payer", "mule"), ("d", None, None), NOW) == ListedParties(
        2, payee=True, device=True
    )
    assert lists.hits(("payer", "mule"), (None, None, None), NOW + 1000) == ListedParties()
    assert lists.hits(("forever", "x"), (None, None, None), NOW + 10**12) == ListedParties(
        1, payer=True
    )
    assert lists.listed_accounts(["a", "mule", "forever"], NOW) == ["forever", "mule"]
    assert Watchlists().hits(("a", "b"), ("d", "p", "i"), NOW) == ListedParties()


QUIET = AccountFacts(0, 0, None, 0, 0, None, None)


def test_listed_account_is_critical_and_its_neighbours_high() -> None:
    assert assess_account(QUIET, []) == ("none", [])
    level, reasons = assess_account(
        AccountFacts(0, 0, None, 0, 0, None, None, watchlisted="police: mule"), []
    )
    assert level == "critical" and reasons[0].code == "watchlisted"
    level, reasons = assess_account(
        AccountFacts(0, 0, None, 0, 0, None, None, listed_counterparties=("m1", "m2")), []
    )
    assert level == "high" and reasons[0].code == "watchlist_neighbour"
    assert "m1, m2" in reasons[0].text


def test_csv_the_reader_cannot_go_on_with_is_unreadable_naming_the_line() -> None:
    text = "kind,value,source,reason\naccount,a1,police,mule\naccount," + "x" * 200_000 + ",p,r\n"
    with pytest.raises(UnreadableCsv) as caught:
        parse_csv(io.StringIO(text), now_ms=NOW, pseudonymise=pseudo)
    assert caught.value.line == 3 and "field larger than field limit" in caught.value.reason


@pytest.mark.parametrize("ms", [253_402_304_399_000, -62_135_647_200_000, 10**30])
def test_times_rfc_3339_cannot_write_format_as_none(ms: int) -> None:
    assert iso_ms(ms) is None
