"""The input contract (CONTRACT.md §1 and §2): decode bytes into checked, normalised events.

Every rejection raises `InvalidEvent` with a short `code` (a bounded label for metrics) and a
sentence a person can act on. Money is kept as `Decimal` and as integer minor units.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

import msgspec

TRANSFER_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
MAX_AMOUNT = Decimal(10) ** 12
CHANNELS = ("mobile", "web", "atm", "counter", "pos", "api", "other")
# 2000-01-01T00:00:00Z: no bank streams older transfers as live traffic.
EARLIEST_EVENT_MS = 946_684_800_000
MS_PER_DAY = 86_400_000

AccountId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
Channel = Literal["mobile", "web", "atm", "counter", "pos", "api", "other"]


class InvalidEvent(ValueError):
    """An event that breaks the contract; `code` labels metrics, `reason` is for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _TransferWire(msgspec.Struct):
    transfer_id: Annotated[str, msgspec.Meta(pattern=TRANSFER_ID_PATTERN)]
    ts: str
    src_account: AccountId
    dst_account: AccountId
    amount: Decimal
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
    channel: Channel = "other"
    src_bank: str | None = None
    dst_bank: str | None = None
    device_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    ip: str | None = None
    phone: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None
    src_country: Country | None = None
    dst_country: Country | None = None
    memo: Annotated[str, msgspec.Meta(max_length=140)] | None = None


class Transfer(msgspec.Struct, frozen=True):
    """A valid transfer, normalised: event time in ms since the epoch, amount in minor units."""

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
    def local_hour(self) -> int:
        """Hour of day in the payer's own clock (the offset the event carries)."""
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


_transfer_decoder = msgspec.json.Decoder(_TransferWire)
_account_decoder = msgspec.json.Decoder(_AccountWire)
Wire = TypeVar("Wire", _TransferWire, _AccountWire)


def parse_timestamp_ms(value: str, field: str = "ts") -> tuple[int, int]:
    """RFC 3339 with an offset → (ms since epoch, offset in minutes)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent(
            "bad_timestamp", f"`{field}` is not an RFC 3339 timestamp: {value[:40]!r}"
        ) from None
    offset = parsed.utcoffset()
    if offset is None or "T" not in value.upper():
        raise InvalidEvent(
            "bad_timestamp",
            f"`{field}` must be an RFC 3339 timestamp with a UTC offset, got {value[:40]!r}",
        )
    return int(parsed.timestamp() * 1000), int(offset.total_seconds() // 60)


@dataclass(frozen=True, slots=True)
class EventTimeBounds:
    """The event times a receiver accepts: from `earliest_ms` up to `max_ahead_ms` past its
    own clock. Outside them a time is a typo or an attack, and would drag windows, trims and
    TTLs of every key it touches to a date that makes no sense."""

    earliest_ms: int = EARLIEST_EVENT_MS
    max_ahead_ms: int = MS_PER_DAY


def check_event_time(
    ts_ms: int, now_ms: int, bounds: EventTimeBounds, field: str = "ts"
) -> None:
    """Raise `InvalidEvent` (`ts_out_of_range`) unless `ts_ms` lies within `bounds` of a
    receiver whose clock reads `now_ms`: the one check the worker and screening share."""
    if ts_ms < bounds.earliest_ms:
        earliest = datetime.fromtimestamp(bounds.earliest_ms / 1000, UTC)
        raise InvalidEvent(
            "ts_out_of_range",
            f"`{field}` is before {earliest.isoformat().replace('+00:00', 'Z')}, "
            "the earliest event time accepted",
        )
    if ts_ms > now_ms + bounds.max_ahead_ms:
        ahead_h = (ts_ms - now_ms) / 3_600_000
        limit_h = bounds.max_ahead_ms / 3_600_000
        raise InvalidEvent(
            "ts_out_of_range",
            f"`{field}` is {ahead_h:,.1f} h ahead of the receiver's clock; "
            f"at most {limit_h:g} h ahead is accepted",
        )


def amount_to_minor(amount: Decimal) -> int:
    """Check an amount against the contract and return it in minor units (cents, fen)."""
    if not amount.is_finite() or amount <= 0:
        raise InvalidEvent("bad_amount", f"`amount` must be greater than 0, got {amount}")
    if amount >= MAX_AMOUNT:
        raise InvalidEvent("bad_amount", f"`amount` must be below 10^12, got {amount}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(Decimal("0.01")):
        raise InvalidEvent(
            "bad_amount", f"`amount` may have at most 2 decimal places, got {amount}"
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


def _decode(decoder: msgspec.json.Decoder[Wire], raw: bytes) -> Wire:
    """The wire struct, or `InvalidEvent` for anything else (also for nesting so deep that
    the decoder gives up: a hostile message must not escape as another exception)."""
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as exc:
        message = str(exc)
        if isinstance(exc, msgspec.ValidationError):
            raise InvalidEvent(_validation_code(message), message) from None
        raise InvalidEvent("malformed_json", f"not valid JSON: {message}") from None
    except RecursionError:
        raise InvalidEvent("malformed_json", "not valid JSON: nested too deeply") from None


def parse_transfer(raw: bytes) -> Transfer:
    """Decode one `transfers` message value; raise `InvalidEvent` if it breaks the contract."""
    wire = _decode(_transfer_decoder, raw)
    ts_ms, offset_min = parse_timestamp_ms(wire.ts)
    amount_minor = amount_to_minor(wire.amount)
    if wire.src_account == wire.dst_account:
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
        src_account=wire.src_account,
        dst_account=wire.dst_account,
        amount=wire.amount,
        amount_minor=amount_minor,
        currency=wire.currency,
        channel=wire.channel,
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
        account_id=wire.account_id,
        opened_at_ms=opened_at_ms,
        holder_birth_year=wire.holder_birth_year,
        kind=wire.kind,
        customer_id=wire.customer_id,
        phone=wire.phone,
    )
