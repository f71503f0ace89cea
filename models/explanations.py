"""The model's reasons in words a person can use: each signal as its value and whether it
raised or lowered the score ("payee's account opened 2 days ago (raises)").

Only known values are ever shown: a missing profile, device or history is not evidence, so a
feature whose value is unknown never appears in a reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from models.currency import SCORING_CURRENCY

Phrase = Callable[[float], str]


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"


def _count(value: float, one: str, many: str) -> str:
    return f"{_number(value)} {one if value == 1 else many}"


def _money(minor: float) -> str:
    # Minor units (fen) of the scoring currency, which every amount feature is in, to major
    # units with two decimals and the currency (a transfer sent in another is counted at its
    # reference value, `models.currency`).
    whole, cents = divmod(round(minor), 100)
    return f"{SCORING_CURRENCY} {whole:,}.{cents:02d}"


def _days(value: float) -> str:
    if value < 1:
        hours = value * 24
        return "less than an hour" if hours < 1 else _count(round(hours), "hour", "hours")
    return _count(round(value), "day", "days")


def _minutes(value: float) -> str:
    if value < 120:
        return _count(round(value), "minute", "minutes")
    if value < 48 * 60:
        return _count(round(value / 60), "hour", "hours")
    return _count(round(value / 1440), "day", "days")


def _share(value: float) -> str:
    return f"{value:.0%}"


def _party(role: str) -> dict[str, Phrase]:
    """Phrases of the features the payer (`src`) and the payee (`dst`) share."""
    who = "payer" if role == "src" else "payee"
    return {
        f"{role}_account_age_days": lambda v: f"{who}'s account opened {_days(v)} ago",
        f"{role}_known_days": lambda v: f"{who}'s account first seen {_days(v)} ago",
        f"{role}_holder_age": lambda v: f"{who}'s account holder aged {_number(v)}",
        f"{role}_is_business": lambda v: f"{who} is {'a business' if v else 'a personal'} account",
    }


PHRASES: dict[str, Phrase] = {
    "amount_minor": lambda v: f"amount {_money(v)}",
    "hour_of_day": lambda v: f"sent at {int(v):02d}:00 local time",
    "is_first_time_payee": lambda v: (
        "first payment to this payee" if v else "the payer has paid this payee before"
    ),
    "amount_to_avg_30d": lambda v: f"{_number(v)}× the payer's average payment",
    "src_out_count_1h": lambda v: f"payer made {_count(v, 'transfer', 'transfers')} in 1 hour",
    "src_out_count_24h": lambda v: f"payer made {_count(v, 'transfer', 'transfers')} in 24 hours",
    "src_distinct_payees_1h": lambda v: f"payer paid {_count(v, 'payee', 'payees')} in 1 hour",
    "src_distinct_payees_24h": lambda v: f"payer paid {_count(v, 'payee', 'payees')} in 24 hours",
    "src_new_payees_24h": lambda v: (
        f"payer paid {_count(v, 'first-time payee', 'first-time payees')} in 24 hours"
    ),
    "src_new_payee_share_24h": lambda v: (
        f"{_share(v)} of the payer's payees in 24 hours were first-time"
    ),
    "src_out_amount_24h_minor": lambda v: f"payer sent {_money(v)} in 24 hours",
    "src_in_count_24h": lambda v: (
        f"payer received {_count(v, 'transfer', 'transfers')} in 24 hours"
    ),
    "src_in_amount_24h_minor": lambda v: f"payer received {_money(v)} in 24 hours",
    "src_distinct_payers_24h": lambda v: (
        f"payer was paid by {_count(v, 'account', 'accounts')} in 24 hours"
    ),
    "src_pass_through_24h": lambda v: f"payer sent on {_share(v)} of what it received in 24 hours",
    "src_dwell_minutes": lambda v: f"money last arrived in the payer's account {_minutes(v)} ago",
    "src_devices_7d": lambda v: f"payer used {_count(v, 'device', 'devices')} in 7 days",
    "dst_in_count_1h": lambda v: f"payee received {_count(v, 'transfer', 'transfers')} in 1 hour",
    "dst_in_count_24h": lambda v: (
        f"payee received {_count(v, 'transfer', 'transfers')} in 24 hours"
    ),
    "dst_distinct_payers_1h": lambda v: (
        f"payee was paid by {_count(v, 'account', 'accounts')} in 1 hour"
    ),
    "dst_distinct_payers_24h": lambda v: (
        f"payee was paid by {_count(v, 'account', 'accounts')} in 24 hours"
    ),
    "dst_new_payers_24h": lambda v: (
        f"{_count(v, 'account', 'accounts')} paid the payee for the first time in 24 hours"
    ),
    "dst_in_amount_24h_minor": lambda v: f"payee received {_money(v)} in 24 hours",
    "dst_out_amount_24h_minor": lambda v: f"payee sent on {_money(v)} in 24 hours",
    "dst_pass_through_24h": lambda v: f"payee sent on {_share(v)} of what it received in 24 hours",
    "device_accounts_7d": lambda v: (
        f"this device paid from {_count(v, 'account', 'accounts')} in 7 days"
    ),
    "phone_accounts_7d": lambda v: (
        f"this phone number paid from {_count(v, 'account', 'accounts')} in 7 days"
    ),
    "ip_accounts_7d": lambda v: (
        f"this IP address paid from {_count(v, 'account', 'accounts')} in 7 days"
    ),
    "watchlist_hits": lambda v: f"{_count(v, 'party', 'parties')} of the transfer on a watchlist",
    "dst_watchlisted": lambda v: "payee's account on the watchlist" if v else "payee not listed",
    "src_watchlisted": lambda v: "payer's account on the watchlist" if v else "payer not listed",
    "device_watchlisted": lambda v: "payer's device on the watchlist" if v else "device not listed",
    "phone_watchlisted": lambda v: "payer's phone on the watchlist" if v else "phone not listed",
    "ip_watchlisted": lambda v: "payer's IP address on the watchlist" if v else "IP not listed",
    "src_out_count_earlier_6d": lambda v: (
        f"payer made {_count(v, 'transfer', 'transfers')} in the 6 days before today"
    ),
    "src_in_count_earlier_6d": lambda v: (
        f"payer received {_count(v, 'transfer', 'transfers')} in the 6 days before today"
    ),
    "src_distinct_payers_earlier_6d": lambda v: (
        f"payer was paid by {_count(v, 'account', 'accounts')} in the 6 days before today"
    ),
    "dst_in_count_earlier_6d": lambda v: (
        f"payee received {_count(v, 'transfer', 'transfers')} in the 6 days before today"
    ),
    "dst_distinct_payers_earlier_6d": lambda v: (
        f"payee was paid by {_count(v, 'account', 'accounts')} in the 6 days before today"
    ),
    "dst_new_payers_earlier_6d": lambda v: (
        f"{_count(v, 'account', 'accounts')} first paid the payee in the 6 days before today"
    ),
    "src_tainted_in_amount_24h_minor": lambda v: (
        f"payer received {_money(v)} in 24 hours through transfers that alerted"
    ),
    "src_tainted_in_count_24h": lambda v: (
        f"payer was paid by {_count(v, 'transfer', 'transfers')} that alerted in 24 hours"
    ),
    "src_tainted_in_share_24h": lambda v: (
        f"{_share(v)} of what the payer received in 24 hours came through transfers that alerted"
    ),
    "src_minutes_since_tainted_in": lambda v: (
        f"money reached the payer through a transfer that alerted {_minutes(v)} ago"
    ),
    **_party("src"),
    **_party("dst"),
}


def describe(name: str, value: float) -> str | None:
    """The feature's value in words, or None when it is unknown (never shown as evidence)."""
    if not math.isfinite(value):
        return None
    return PHRASES[name](float(value))


def signal(name: str, value: float, log_odds_push: float) -> str | None:
    """`payee's account opened 2 days ago (raises)`: the value in words and which way it
    moved the model's score; None for an unknown value."""
    text = describe(name, value)
    if text is None:
        return None
    return f"{text} ({'raises' if log_odds_push > 0 else 'lowers'})"
