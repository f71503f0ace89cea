"""Watchlists from outside sources (police notices, the anti-fraud centre, other banks). Pure.

An entry lists one account, device, phone number or IP address. Devices, phones and IPs are
personal data: state only ever holds their keyed pseudonyms, so an entry is stored and matched
under its *key* (the account id itself, or the pseudonym of the raw value) and keeps the raw
value inside for the admins who manage lists.

Expiry is judged at a transfer's event time when matching (so a replay with the same lists
matches the same transfers) and at the wall clock when listing or viewing an account.
"""

from __future__ import annotations

import csv
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from models.events import account_id_problem
from models.features import ListedParties

Kind = Literal["account", "device", "phone", "ip"]
KINDS: tuple[Kind, ...] = ("account", "device", "phone", "ip")
CSV_COLUMNS = ("kind", "value", "source", "reason", "expires_at")
MAX_VALUE_LENGTH = {"account": 64, "device": 256, "phone": 32, "ip": 45}
MAX_TEXT_LENGTH = 200
# The shortest phone numbers (some national short forms) have this many digits.
MIN_PHONE_DIGITS = 5
_DIGITS = re.compile(r"[0-9]")
_PHONE_CHARACTERS = re.compile(r"[0-9+\-./() ]+")


class InvalidEntry(ValueError):
    """An entry that cannot be listed: `field` names the culprit, the message says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class WatchlistEntry:
    """One listed account, device, phone or IP; `key` is what state and matching use."""

    kind: Kind
    value: str
    key: str
    source: str
    reason: str
    added_at_ms: int
    expires_at_ms: int | None = None

    def active_at(self, at_ms: int) -> bool:
        """Whether the listing is in force at `at_ms` (its expiry not yet reached)."""
        return self.expires_at_ms is None or at_ms < self.expires_at_ms


Pseudonymise = Callable[[str, str], str]


def parse_expiry(text: str | None) -> int | None:
    """`expires_at` (RFC 3339 with an offset, or empty for never) → ms since the epoch."""
    if text is None or not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidEntry(
            "expires_at", f"`expires_at` is not an RFC 3339 timestamp: {text[:40]!r}"
        ) from None
    if moment.utcoffset() is None:
        raise InvalidEntry("expires_at", "`expires_at` needs a UTC offset, e.g. 2027-01-01T00:00Z")
    return int(moment.timestamp() * 1000)


def _check_value(kind: str, value: str) -> str:
    value = value.strip()
    if kind not in KINDS:
        raise InvalidEntry("kind", f"`kind` must be one of {', '.join(KINDS)}, got {kind[:20]!r}")
    if not value or len(value) > MAX_VALUE_LENGTH[kind]:
        raise InvalidEntry(
            "value", f"`value` must be 1–{MAX_VALUE_LENGTH[kind]} characters for a {kind}"
        )
    if kind == "account" and (problem := account_id_problem(value)) is not None:
        raise InvalidEntry("value", f"an account id that {problem} names no account")
    if kind == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise InvalidEntry("value", f"{value[:45]!r} is not an IPv4 or IPv6 address") from None
    # A phone with fewer digits than any number has can never match a transfer's; one with
    # words in it is a note, not a number (its digits alone would list another number).
    if kind == "phone" and len(_DIGITS.findall(value)) < MIN_PHONE_DIGITS:
        raise InvalidEntry("value", f"a phone number has at least {MIN_PHONE_DIGITS} digits")
    if kind == "phone" and not _PHONE_CHARACTERS.fullmatch(value):
        raise InvalidEntry(
            "value", "a phone number holds digits, spaces, `+`, `-`, `.`, `/` and brackets only"
        )
    return value


def check_value(kind: str, value: str) -> None:
    """Raise `InvalidEntry` unless `value` can be listed as a `kind`."""
    _check_value(kind, value)


def _check_text(field: str, text: str) -> str:
    text = text.strip()
    if not text or len(text) > MAX_TEXT_LENGTH:
        raise InvalidEntry(field, f"`{field}` must be 1–{MAX_TEXT_LENGTH} characters")
    return text


def make_entry(
    kind: str,
    value: str,
    source: str,
    reason: str,
    expires_at_ms: int | None,
    *,
    now_ms: int,
    pseudonymise: Pseudonymise,
) -> WatchlistEntry:
    """A checked entry added at `now_ms`; raises `InvalidEntry` naming the bad field."""
    value = _check_value(kind, value)
    source = _check_text("source", source)
    reason = _check_text("reason", reason)
    if expires_at_ms is not None and expires_at_ms <= now_ms:
        raise InvalidEntry("expires_at", "`expires_at` is already in the past")
    key = value if kind == "account" else pseudonymise(kind, value)
    return WatchlistEntry(kind, value, key, source, reason, now_ms, expires_at_ms)  # type: ignore[arg-type]


def entry_key(kind: str, value: str, pseudonymise: Pseudonymise) -> str:
    """The key an entry of this kind and raw value is stored under."""
    value = value.strip()
    return value if kind == "account" else pseudonymise(kind, value)


class UnreadableCsv(ValueError):
    """A file the CSV reader cannot go on with (e.g. a field over its size limit): nothing
    of it is imported; `line` says where reading stopped."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class NotAWatchlistFile(UnreadableCsv):
    """CSV whose header lacks a required column (an empty file has none): nothing of it is
    imported."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A CSV row that was not imported: its line number and why."""

    line: int
    reason: str


def parse_csv(
    lines: Iterable[str],
    *,
    now_ms: int,
    pseudonymise: Pseudonymise,
    kind: str | None = None,
) -> tuple[list[WatchlistEntry], list[RowProblem]]:
    """Entries from CSV text with a header row (columns `CSV_COLUMNS`; `kind` may be left out
    when `kind` is given). Every bad row is reported by its line number; good rows are kept.
    Raises `UnreadableCsv` when the text is not CSV the reader can go on with, and
    `NotAWatchlistFile` when its header lacks a required column."""
    reader = csv.DictReader(lines)
    try:
        header = [name.strip() for name in reader.fieldnames or []]
        reader.fieldnames = header
        required = [c for c in CSV_COLUMNS if c != "expires_at" and not (c == "kind" and kind)]
        missing = [c for c in required if c not in header]
        if missing:
            raise NotAWatchlistFile(1, f"header lacks column(s) {', '.join(missing)}")
        entries: list[WatchlistEntry] = []
        problems: list[RowProblem] = []
        for row in reader:
            line = reader.line_num
            try:
                entries.append(_row_entry(row, kind, now_ms, pseudonymise))
            except InvalidEntry as bad:
                problems.append(RowProblem(line, bad.reason))
    except csv.Error as error:
        raise UnreadableCsv(reader.line_num + 1, str(error)) from None  # the line being read
    return entries, problems


def _row_entry(
    row: Mapping[str, str | None], kind: str | None, now_ms: int, pseudonymise: Pseudonymise
) -> WatchlistEntry:
    if None in row:
        raise InvalidEntry("row", "more fields than the header has")
    row_kind = (row.get("kind") or "").strip() or kind or ""
    if kind and row_kind != kind:
        raise InvalidEntry("kind", f"kind {row_kind!r} differs from --kind {kind}")
    return make_entry(
        row_kind,
        row.get("value") or "",
        row.get("source") or "",
        row.get("reason") or "",
        parse_expiry(row.get("expires_at")),
        now_ms=now_ms,
        pseudonymise=pseudonymise,
    )


@dataclass(frozen=True, slots=True)
class Watchlists:
    """A snapshot of every list, keyed for matching: kind → key → expiry (ms) or None."""

    version: int = 0
    expiries: Mapping[str, Mapping[str, int | None]] | None = None

    def listed(self, kind: str, key: str | None, at_ms: int) -> bool:
        """Whether `key` is on the `kind` list and in force at `at_ms`."""
        if key is None or not self.expiries:
            return False
        kind_entries = self.expiries.get(kind)
        if not kind_entries or key not in kind_entries:
            return False
        expiry = kind_entries[key]
        return expiry is None or at_ms < expiry

    def hits(
        self,
        accounts: tuple[str, str],
        entities: tuple[str | None, str | None, str | None],
        at_ms: int,
    ) -> ListedParties:
        """Which of a transfer's parties (payer, payee, device, phone, IP) are listed."""
        payer, payee = (self.listed("account", account, at_ms) for account in accounts)
        kinds = zip(("device", "phone", "ip"), entities, strict=True)
        device, phone, ip = (self.listed(kind, key, at_ms) for kind, key in kinds)
        return ListedParties(payer + payee + device + phone + ip, payee, payer, device, phone, ip)

    def listed_accounts(self, candidates: Iterable[str], at_ms: int) -> list[str]:
        """Those of `candidates` that are listed accounts in force at `at_ms`, sorted."""
        return sorted({a for a in candidates if self.listed("account", a, at_ms)})


def now_ms() -> int:
    """Wall-clock time in ms since the epoch."""
    return int(datetime.now(UTC).timestamp() * 1000)


def iso_ms(ms: int | None) -> str | None:
    """ms since the epoch → RFC 3339 UTC with milliseconds; None for None and for a time
    RFC 3339 cannot write (outside years 1–9999: only damaged or legacy data holds one)."""
    if ms is None:
        return None
    try:
        moment = datetime.fromtimestamp(ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
