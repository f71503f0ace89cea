"""Amounts in the scoring currency: reference rates, a bank's own, and what stays as sent."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from models.currency import MAX_SCORING_MINOR, REFERENCE, ScoringRates, parse_rates
from models.events import parse_transfer
from service.settings import Settings


def _transfer(amount: str, currency: str) -> bytes:
    return orjson.dumps({"transfer_id": "t1", "ts": "2026-03-01T10:00:00+08:00",
                         "src_account": "a", "dst_account": "b", "amount": amount,
                         "currency": currency})  # fmt: skip


def test_a_transfer_is_scored_in_the_scoring_currency_and_read_as_sent() -> None:
    yen = parse_transfer(_transfer("1000000", "JPY"))
    assert yen.amount_minor == 4_800_000  # 48,000.00 CNY at the reference rate
    assert (yen.amount, yen.currency, yen.sent_minor) == (Decimal("1000000"), "JPY", 100_000_000)
    assert parse_transfer(_transfer("7000.00", "USD")).amount_minor == 5_040_000
    assert parse_transfer(_transfer("1250.50", "CNY")).amount_minor == 125_050


def test_a_banks_rates_replace_and_extend_the_reference_ones() -> None:
    rates = ScoringRates.with_overrides("USD=7.12, XAF=0.0118")
    assert parse_transfer(_transfer("100", "USD"), rates).amount_minor == 71_200
    assert parse_transfer(_transfer("100", "XAF"), rates).amount_minor == 118
    assert rates.priced("EUR") and not REFERENCE.priced("XAF")


def test_a_currency_without_a_rate_is_scored_at_face_value_and_never_below_a_cent() -> None:
    assert REFERENCE.scoring_minor(1234, "XAF") == 1234
    assert REFERENCE.scoring_minor(1, "VND") == 1
    assert REFERENCE.scoring_minor(99_999_999_999_999, "KWD") == MAX_SCORING_MINOR
    assert REFERENCE.scoring_minor(250, "USD") == 1800  # 2.50 USD: 18.00 CNY


@pytest.mark.parametrize(
    "text", ["USD", "usd=7", "USD=-1", "USD=0", "USD=7,EUR", "US=7", "CNY=2"]
)
def test_rates_that_do_not_read_are_refused_naming_the_entry(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rates(text)
    with pytest.raises(ValidationError, match="currency_rates"):
        Settings(currency_rates=text)
