"""Amounts in one currency for scoring. Pure: no I/O.

The model's thresholds and every rule's amounts are calibrated in one currency (the
simulator's and the fraud they describe: CNY), and every window sums amounts. A transfer in
another currency is scored at its value in that currency, at a reference rate: 1,000,000 JPY
must not count as a million yuan, nor 7,000 USD as seven thousand. What a person reads of a
transfer (its alert, its trace record) keeps the amount and currency it was sent in; what is
derived from state (window sums, a trace's edges) is in the scoring currency and says so.

The rates below are approximate reference rates, close enough for scoring, not for
accounting; `FRAUDWATCH_CURRENCY_RATES` sets a bank's own (`USD=7.12,EUR=7.74`, units of the
scoring currency per unit). A currency with no rate is scored at its face value, as if it
were the scoring currency, and counted (`fraudwatch_unpriced_transfers_total{currency}`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

SCORING_CURRENCY = "CNY"
# Amounts the contract accepts stay below 10^12 units; a converted one is kept below that too
# (sums of them stay exact in the state's doubles).
MAX_SCORING_MINOR = 10**14 - 1

# Approximate units of CNY per unit (reference values of 2025; scoring only).
REFERENCE_RATES: Mapping[str, str] = {
    "CNY": "1", "CNH": "1", "HKD": "0.92", "MOP": "0.89", "TWD": "0.22", "USD": "7.20",
    "EUR": "7.80", "GBP": "9.20", "CHF": "8.50", "JPY": "0.048", "KRW": "0.0052",
    "SGD": "5.40", "MYR": "1.60", "THB": "0.21", "VND": "0.00028", "PHP": "0.125",
    "IDR": "0.00044", "KHR": "0.0018", "MMK": "0.0034", "LAK": "0.00033", "INR": "0.085",
    "PKR": "0.026", "BDT": "0.060", "LKR": "0.024", "NPR": "0.053", "MNT": "0.0021",
    "KZT": "0.014", "RUB": "0.090", "AUD": "4.70", "NZD": "4.30", "CAD": "5.20",
    "SEK": "0.72", "NOK": "0.70", "DKK": "1.05", "PLN": "1.90", "CZK": "0.31",
    "HUF": "0.020", "RON": "1.55", "TRY": "0.18", "UAH": "0.17", "AED": "1.96",
    "SAR": "1.92", "QAR": "1.98", "KWD": "23.5", "BHD": "19.1", "OMR": "18.7",
    "ILS": "1.95", "EGP": "0.15", "NGN": "0.0047", "KES": "0.056", "ZAR": "0.40",
    "BRL": "1.30", "MXN": "0.38", "CLP": "0.0076", "COP": "0.0018", "PEN": "1.95",
}  # fmt: skip

_RATE = re.compile(r"([A-Z]{3})=([0-9]+(?:\.[0-9]+)?)")


def parse_rates(text: str) -> dict[str, Decimal]:
    """Rates written `USD=7.12,EUR=7.74` (units of the scoring currency per unit), checked:
    raises ValueError naming the first entry that is not a code and a rate above 0."""
    rates: dict[str, Decimal] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        match = _RATE.fullmatch(entry)
        if match is None:
            raise ValueError(f"{entry[:30]!r} is not CODE=RATE (e.g. USD=7.12)")
        try:
            rate = Decimal(match.group(2))
        except InvalidOperation:
            raise ValueError(f"{entry[:30]!r}: the rate is not a number") from None
        if rate <= 0:
            raise ValueError(f"{entry[:30]!r}: the rate must be above 0")
        if match.group(1) == SCORING_CURRENCY:
            raise ValueError(f"{entry[:30]!r}: {SCORING_CURRENCY} is the scoring currency itself")
        rates[match.group(1)] = rate
    return rates


@dataclass(frozen=True, slots=True)
class ScoringRates:
    """The rate of each currency to the scoring currency (the reference rates, overridden
    and extended by a bank's own)."""

    rates: Mapping[str, Decimal] = field(
        default_factory=lambda: {code: Decimal(rate) for code, rate in REFERENCE_RATES.items()}
    )

    @classmethod
    def with_overrides(cls, text: str) -> ScoringRates:
        """The reference rates with `text`'s (see `parse_rates`) replacing or adding to them."""
        return cls({**cls().rates, **parse_rates(text)})

    def priced(self, currency: str) -> bool:
        """Whether `currency` has a rate (else its amounts are scored at face value)."""
        return currency in self.rates

    def scoring_minor(self, minor: int, currency: str) -> int:
        """`minor` units of `currency` in minor units of the scoring currency, rounded half
        to even and at least one (face value for a currency without a rate)."""
        if currency == SCORING_CURRENCY or currency not in self.rates:
            return minor  # every transfer's hot path: no decimal arithmetic
        converted = (minor * self.rates[currency]).to_integral_value(ROUND_HALF_EVEN)
        return max(1, min(int(converted), MAX_SCORING_MINOR))


REFERENCE = ScoringRates()
