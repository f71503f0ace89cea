"""The input contract (CONTRACT.md §1 and §2): decode bytes into checked, normalised events.

Every rejection raises `InvalidEvent` with a short `code` (a bounded label for metrics) and a
sentence a person can act on. Money is kept as `Decimal` and as integer minor units.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

import msgspec

from models.currency import REFERENCE, ScoringRates

# `\Z`, not `$`: msgspec matches patterns with `re.search`, where `$` also matches before a
# trailing newline, and "tx-1\n" would pass as a transfer id the API could never look up.
TRANSFER_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}\Z"
MAX_AMOUNT = Decimal(10) ** 12
CHANNELS = ("mobile", "web", "atm", "counter", "pos", "api", "other")
# Event times outside these bounds are dead-lettered (`ts_out_of_range`): a far-future or
# prehistoric `ts` would otherwise become the "now" of its accounts' windows.
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_EVENT_AHEAD_HOURS = 24
# Accounts opened before this are not plausible (the bound for a profile's `opened_at`).
EARLIEST_OPENED_AT = datetime(1900, 1, 1, tzinfo=UTC)

AccountId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}\Z")]
Channel = Literal["mobile", "web", "atm", "counter", "pos", "api", "other"]


class InvalidEvent(ValueError):
    """An event that breaks the contract; `code` labels metrics, `reason` is for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def account_id_problem(account: str) -> str | None:
    """Why `account` (already without surrounding blanks) cannot name an account, or None:
    a blank or an unprintable character (a NUL, a line break, a zero-width space) names
    nobody and breaks the logs, CSV exports and console that show it."""
    if not account:
        return "is blank"
    if not account.isprintable():
        return "contains an unprintable character"
    return None


def _account_id(field: str, value: str) -> str:
    # Surrounding blanks are a padded export's, not the account's: the watchlists strip them
    # too, so a listed account matches whichever way the bank's systems pad it.
    account = value.strip()
    if (problem := account_id_problem(account)) is not None:
        raise InvalidEvent("invalid_field", f"`{field}` {problem}")
    return account


class _TransferWire(msgspec.Struct):
    transfer_id: Annotated[str, msgspec.Meta(pattern=TRANSFER_ID_PATTERN)]
    ts: str
    src_account: AccountId
    dst_account: AccountId
    # Read as its JSON text (see `_amount_of`): msgspec would take any string Python's
    # Decimal takes, such as "1_000", " 10 " or "1e3".
    amount: msgspec.Raw
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}\Z")]
    # null is absent, as for every other optional field (serialisers that write nulls send it)
    channel: Channel | None = None
    src_bank: str | None = None
    dst_bank: str | None = None
    device_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    ip: str | None = None
    phone: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    src_country: Country | None = None
    dst_country: Country | None = None
    memo: Annotated[str, msgspec.Meta(max_length=140)] | None = None


class Transfer(msgspec.Struct, frozen=True):
    """A valid transfer, normalised: event time in ms since the epoch; `amount` and
    `currency` as sent, `amount_minor` its value in minor units of the scoring currency
    (`models.currency`), which every window, feature and rule uses."""

    transfer_id: str
    ts: str
    ts_ms: int
    utc_offset_min: int
    src_account: str
    dst_account: str
    amount: Decimal
    amount_minor: int
    currency: str
    channel: str = "other"
    src_bank: str | None = None
    dst_bank: str | None = None
    device_id: str | None = None
    ip: str | None = None
    phone: str | None = None
    src_country: str | None = None
    dst_country: str | None = None
    memo: str | None = None

    @property
    def sent_minor(self) -> int:
        """The amount as sent, in minor units of its own currency (what its record keeps)."""
        return int(self.amount * 100)

    @property
    def local_hour(self) -> int:
        """Hour of day on the payer's clock: the offset the event carries, or the configured
        zone's (`FRAUDWATCH_LOCAL_TIMEZONE`, for feeds that send every time in UTC)."""
        return ((self.ts_ms // 60000 + self.utc_offset_min) // 60) % 24


class _AccountWire(msgspec.Struct):
    account_id: AccountId
    opened_at: str | None = None
    holder_birth_year: Annotated[int, msgspec.Meta(ge=1880, le=2100)] | None = None
    kind: Literal["personal", "business"] | None = None
    customer_id: str | None = None
    phone: str | None = None


class AccountProfile(msgspec.Struct, frozen=True):
    """An account profile update; `None` fields leave what is known unchanged."""

    account_id: str
    opened_at_ms: int | None = None
    holder_birth_year: int | None = None
    kind: str | None = None
    customer_id: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class EventTimeBounds:
    """The event times a transfer may carry: from `earliest_ms` to `max_ahead_ms` past the
    clock of whoever checks it (the worker, screening, a backtest)."""

    earliest_ms: int = int(EARLIEST_EVENT_TIME.timestamp() * 1000)
    max_ahead_ms: int = MAX_EVENT_AHEAD_HOURS * 3_600_000

    def contains(self, ts_ms: int, now_ms: int) -> bool:
        """Whether `ts_ms` lies within the bounds (`check` says why not)."""
        return self.earliest_ms <= ts_ms <= now_ms + self.max_ahead_ms

    def check(self, ts_ms: int, now_ms: int, field: str = "ts") -> None:
        """Raise `InvalidEvent` (`ts_out_of_range`) unless `ts_ms` lies within the bounds."""
        _check_range(ts_ms, self.earliest_ms, now_ms + self.max_ahead_ms, field)

    def check_opened_at(self, opened_at_ms: int, now_ms: int) -> None:
        """Raise `InvalidEvent` unless an account's opening time is plausible: not before
        1900, not later than an event time may be."""
        latest = now_ms + self.max_ahead_ms
        _check_range(opened_at_ms, _EARLIEST_OPENED_AT_MS, latest, "opened_at")


_EARLIEST_OPENED_AT_MS = int(EARLIEST_OPENED_AT.timestamp() * 1000)


def _check_range(value_ms: int, earliest_ms: int, latest_ms: int, field: str) -> None:
    if earliest_ms <= value_ms <= latest_ms:
        return
    raise InvalidEvent(
        "ts_out_of_range",
        f"`{field}` is {'before' if value_ms < earliest_ms else 'after'} the accepted range "
        f"{format_ms(earliest_ms)} .. {format_ms(latest_ms)}",
    )


def format_ms(ts_ms: int) -> str:
    """An epoch-millisecond time as RFC 3339 UTC, or the bare number when it is outside the
    years a datetime can hold."""
    try:
        return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        return f"{ts_ms} ms since the epoch"


_transfer_decoder = msgspec.json.Decoder(_TransferWire)
_account_decoder = msgspec.json.Decoder(_AccountWire)


# RFC 3339's date-time (section 5.6). `datetime.fromisoformat` alone also takes ISO 8601's other
# forms (week dates, basic format, hours without minutes), which the contract does not allow.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


def parse_timestamp_ms(value: str, field: str = "ts") -> tuple[int, int]:
    """RFC 3339 with an offset → (ms since epoch, offset in minutes)."""
    shape = _RFC3339.fullmatch(value)
    try:
        if shape is None:
            raise ValueError(value)
        parsed = datetime.fromisoformat(value.upper())  # RFC 3339 allows "t" and "z"
        offset = parsed.utcoffset()
        ts_ms = int(parsed.timestamp() * 1000)
    except (ValueError, OverflowError):
        raise InvalidEvent(
            "bad_timestamp", f"`{field}` is not an RFC 3339 timestamp: {value[:40]!r}"
        ) from None
    if offset is None or shape is None or shape.group(2) is None:
        raise InvalidEvent(
            "bad_timestamp",
            f"`{field}` must be an RFC 3339 timestamp with a UTC offset, got {value[:40]!r}",
        )
    return ts_ms, int(offset.total_seconds() // 60)


def _shown(value: object, limit: int = 40) -> str:
    """A value for an error message, cut so that a hostile one cannot flood logs."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


# The contract's amount: a decimal string ("1250.00", a sign only to be refused as not above 0)
# or a JSON number (exact: read from its text, never through a float).
_DECIMAL_STRING = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_JSON_NUMBER = re.compile(rb"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def _amount_of(raw: msgspec.Raw) -> Decimal:
    """The amount a transfer's `amount` field holds, read exactly from its JSON text."""
    text = bytes(raw)
    if _JSON_NUMBER.fullmatch(text):
        return Decimal(text.decode())
    value = msgspec.json.decode(text) if text.startswith(b'"') else None
    if isinstance(value, str) and _DECIMAL_STRING.fullmatch(value):
        return Decimal(value)
    shown = _shown(text.decode(errors="replace"))
    raise InvalidEvent(
        "bad_amount",
        f'`amount` must be a decimal string like "1250.00" or a JSON number, got {shown}',
    )


def amount_to_minor(amount: Decimal) -> int:
    """Check an amount against the contract and return it in minor units (cents, fen)."""
    if not amount.is_finite() or amount <= 0:
        raise InvalidEvent("bad_amount", f"`amount` must be greater than 0, got {_shown(amount)}")
    if amount >= MAX_AMOUNT:
        raise InvalidEvent("bad_amount", f"`amount` must be below 10^12, got {_shown(amount)}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(Decimal("0.01")):
        raise InvalidEvent(
            "bad_amount", f"`amount` may have at most 2 decimal places, got {_shown(amount)}"
        )
    return int(amount * 100)


def _validation_code(message: str) -> str:
    if "missing required field" in message:
        return "missing_field"
    if "`$.amount`" in message:
        return "bad_amount"
    if "`$.ts`" in message:
        return "bad_timestamp"
    if message.startswith("Expected `object`"):
        return "not_an_object"
    return "invalid_field"


_Wire = TypeVar("_Wire")

# A `\uD800`-`\uDBFF` escape (not itself escaped) that something other than a `\u`
# escape follows (at the very end the message is truncated indeed).
_LONE_HIGH_SURROGATE = re.compile(
    rb"(?<!\\)(?:\\\\)*\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u)(?=[\s\S])"
)


def _decode_problem(raw: bytes, exc: msgspec.DecodeError) -> str:
    """The decoder's complaint, unless it calls a complete message with a lone high
    surrogate escape "truncated" (msgspec does): then what is wrong, and where."""
    message = str(exc)
    if "truncated" in message:
        lone = _LONE_HIGH_SURROGATE.search(raw)
        if lone is not None:
            at = lone.end() - 6
            escape = raw[at : lone.end()].decode()
            return (
                f"invalid utf-16 surrogate pair: {escape} without a low surrogate after it "
                f"(byte {at})"
            )
    return message


def _decode(decoder: msgspec.json.Decoder[_Wire], raw: bytes) -> _Wire:
    """Decode a message value; every way it can fail is an `InvalidEvent`."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        message = str(exc)
        raise InvalidEvent(_validation_code(message), message) from None
    except msgspec.DecodeError as exc:
        raise InvalidEvent(
            "malformed_json", f"not valid JSON: {_decode_problem(raw, exc)}"
        ) from None
    except RecursionError:
        raise InvalidEvent(
            "malformed_json", "not valid JSON for this contract: nested too deeply"
        ) from None


def zone_offset_min(ts_ms: int, zone: tzinfo) -> int:
    """The UTC offset in minutes of `zone`'s clock at `ts_ms` (daylight saving included)."""
    offset = datetime.fromtimestamp(ts_ms // 1000, tz=zone).utcoffset()
    return 0 if offset is None else int(offset.total_seconds()) // 60


def parse_transfer(
    raw: bytes, rates: ScoringRates = REFERENCE, local_zone: tzinfo | None = None
) -> Transfer:
    """Decode one `transfers` message value, its amount also in the scoring currency at
    `rates` and its hour of day on the clock of `local_zone` (None: the offset it carries);
    raise `InvalidEvent` if it breaks the contract."""
    wire = _decode(_transfer_decoder, raw)
    ts_ms, offset_min = parse_timestamp_ms(wire.ts)
    if local_zone is not None:
        offset_min = zone_offset_min(ts_ms, local_zone)
    amount = _amount_of(wire.amount)
    amount_minor = rates.scoring_minor(amount_to_minor(amount), wire.currency)
    src_account = _account_id("src_account", wire.src_account)
    dst_account = _account_id("dst_account", wire.dst_account)
    if src_account == dst_account:
        raise InvalidEvent("same_account", "`src_account` and `dst_account` must differ")
    if wire.ip is not None:
        try:
            ipaddress.ip_address(wire.ip)
        except ValueError:
            raise InvalidEvent("invalid_field", "`ip` is not an IPv4 or IPv6 address") from None
    return Transfer(
        transfer_id=wire.transfer_id,
        ts=wire.ts,
        ts_ms=ts_ms,
        utc_offset_min=offset_min,
        src_account=src_account,
        dst_account=dst_account,
        amount=amount,
        amount_minor=amount_minor,
        currency=wire.currency,
        channel=wire.channel or "other",
        src_bank=wire.src_bank,
        dst_bank=wire.dst_bank,
        device_id=wire.device_id,
        ip=wire.ip,
        phone=wire.phone,
        src_country=wire.src_country,
        dst_country=wire.dst_country,
        memo=wire.memo,
    )


def parse_account(raw: bytes) -> AccountProfile:
    """Decode one `accounts` message value; raise `InvalidEvent` if it breaks the contract."""
    wire = _decode(_account_decoder, raw)
    opened_at_ms = None
    if wire.opened_at is not None:
        opened_at_ms, _ = parse_timestamp_ms(wire.opened_at, "opened_at")
    return AccountProfile(
        account_id=_account_id("account_id", wire.account_id),
        opened_at_ms=opened_at_ms,
        holder_birth_year=wire.holder_birth_year,
        kind=wire.kind,
        customer_id=wire.customer_id,
        phone=wire.phone,
    )
