"""Feature definitions shared by serving (worker, screen), replay (backtest) and training.

State stores return integer *facts* about the accounts and entities a transfer touches, as of
that transfer's event time; `derive_features` turns them into the named features that rules
and the model read. Keeping this the one path from facts to features is what makes replayed
history score exactly as live traffic does.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

from models.events import Transfer

MS_PER_MINUTE = 60_000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000

WINDOW_1H_MS = MS_PER_HOUR
WINDOW_24H_MS = 24 * MS_PER_HOUR
WINDOW_7D_MS = 7 * MS_PER_DAY
WINDOW_30D_MS = 30 * MS_PER_DAY
# The longest window any fact looks back over; older window entries may be dropped.
RETENTION_MS = WINDOW_30D_MS

# The two parties of a transfer; a rule declares which of them it suspects.
Party = Literal["payer", "payee"]
PARTIES: tuple[Party, ...] = ("payer", "payee")

UNKNOWN = -1  # integer facts use -1 for "not known" (no profile, no previous event, no entity)
MISSING = math.nan  # features use NaN for "not known"; rule conditions treat it as no match
# Everything is new when observation begins (a new installation, or one warmed up with little
# history): an account first seen in the first week of observation may be years old, and a
# payee not yet paid in that week may be paid every month. So how long fraudwatch has known an
# account is unknown for accounts first seen in that week, and whether a payee (or payer) is
# new is unknown while it lasts; a payee paid before is known as such from the start.
COLD_START_MS = 7 * MS_PER_DAY


class PayerFacts(NamedTuple):
    """What the payer's own windows say, as of the transfer (the transfer itself included)."""

    out_n_1h: int
    out_n_24h: int
    payees_1h: int
    payees_24h: int
    new_payees_24h: int
    first_time_payee: int
    out_amt_24h: int
    out_n_30d_prior: int
    out_amt_30d_prior: int
    in_n_24h: int
    in_amt_24h: int
    payers_24h: int
    last_in_ts: int
    first_seen_ts: int
    opened_at: int
    birth_year: int
    is_business: int
    devices_7d: int
    # Longer memory (low-and-slow: small sums spread over days), from the same windows.
    out_n_7d: int
    in_n_7d: int
    payers_7d: int


class PayeeFacts(NamedTuple):
    """What the payee's windows say, as of the transfer (the transfer itself included)."""

    in_n_1h: int
    in_n_24h: int
    payers_1h: int
    payers_24h: int
    new_payers_24h: int
    in_amt_24h: int
    out_amt_24h: int
    first_seen_ts: int
    opened_at: int
    birth_year: int
    is_business: int
    in_n_7d: int
    payers_7d: int
    new_payers_7d: int


class ListedParties(NamedTuple):
    """A transfer's parties on a watchlist at its event time: how many in all (payer, payee,
    device, phone, IP), and which."""

    parties: int = 0
    payee: bool = False
    payer: bool = False
    device: bool = False
    phone: bool = False
    ip: bool = False


NOT_LISTED = ListedParties()


class Taint(NamedTuple):
    """What the payer of a transfer received through transfers that alerted, in the 24 hours
    before it (`models.taint`): how much, from how many transfers, when the latest arrived."""

    amount_minor: int = 0
    transfers: int = 0
    last_ts: int = UNKNOWN


NO_TAINT = Taint()


class EntityFacts(NamedTuple):
    """Distinct payer accounts seen on the transfer's device, phone and IP over 7 days."""

    device_accounts_7d: int
    phone_accounts_7d: int
    ip_accounts_7d: int


# Memory for low-and-slow: the counts of the 6 days before the last 24 hours.
LONGER_COUNT_FEATURES: tuple[str, ...] = (
    "src_out_count_earlier_6d",
    "src_in_count_earlier_6d",
    "src_distinct_payers_earlier_6d",
    "dst_in_count_earlier_6d",
    "dst_distinct_payers_earlier_6d",
    "dst_new_payers_earlier_6d",
)

FEATURE_NAMES: tuple[str, ...] = (
    "amount_minor",
    "hour_of_day",
    "is_first_time_payee",
    "amount_to_avg_30d",
    "src_out_count_1h",
    "src_out_count_24h",
    "src_distinct_payees_1h",
    "src_distinct_payees_24h",
    "src_new_payees_24h",
    "src_new_payee_share_24h",
    "src_out_amount_24h_minor",
    "src_in_count_24h",
    "src_in_amount_24h_minor",
    "src_distinct_payers_24h",
    "src_pass_through_24h",
    "src_dwell_minutes",
    "src_account_age_days",
    "src_known_days",
    "src_holder_age",
    "src_is_business",
    "src_devices_7d",
    "dst_in_count_1h",
    "dst_in_count_24h",
    "dst_distinct_payers_1h",
    "dst_distinct_payers_24h",
    "dst_new_payers_24h",
    "dst_in_amount_24h_minor",
    "dst_out_amount_24h_minor",
    "dst_pass_through_24h",
    "dst_account_age_days",
    "dst_known_days",
    "dst_holder_age",
    "dst_is_business",
    "device_accounts_7d",
    "phone_accounts_7d",
    "ip_accounts_7d",
    "watchlist_hits",
    "dst_watchlisted",
    "src_watchlisted",
    "device_watchlisted",
    "phone_watchlisted",
    "ip_watchlisted",
    *LONGER_COUNT_FEATURES,
    "src_tainted_in_amount_24h_minor",
    "src_tainted_in_count_24h",
    "src_tainted_in_share_24h",
    "src_minutes_since_tainted_in",
)

FEATURE_DESCRIPTIONS: dict[str, str] = {
    "amount_minor": "amount of this transfer, whatever currency it was sent in (CNY fen)",
    "hour_of_day": "hour of day in the payer's local time",
    "is_first_time_payee": (
        "1 if the payer has never paid this payee before (unknown in the first week of "
        "observation, unless it has)"
    ),
    "amount_to_avg_30d": "amount ÷ the payer's average retained outgoing transfer (≤ 30 days)",
    "src_out_count_1h": "payer's outgoing transfers in the last hour",
    "src_out_count_24h": "payer's outgoing transfers in the last 24 hours",
    "src_distinct_payees_1h": "distinct payees the payer last paid within the past hour",
    "src_distinct_payees_24h": "distinct payees the payer last paid within the past 24 hours",
    "src_new_payees_24h": (
        "first-time payees of the payer in the last 24 hours (unknown in the first week of "
        "observation)"
    ),
    "src_new_payee_share_24h": (
        "share of the payer's payees in 24 hours that were first-time (unknown in the first "
        "week of observation)"
    ),
    "src_out_amount_24h_minor": (
        "money the payer sent this clock hour and the 23 before (CNY fen)"
    ),
    "src_in_count_24h": "transfers the payer received in the last 24 hours",
    "src_in_amount_24h_minor": "money the payer received in the last 24 hours (CNY fen)",
    "src_distinct_payers_24h": "distinct accounts that paid the payer in the last 24 hours",
    "src_pass_through_24h": "money out ÷ money in for the payer over 24 hours",
    "src_dwell_minutes": "minutes since money last arrived in the payer's account",
    "src_account_age_days": "days since the payer's account was opened",
    "src_known_days": (
        "days since fraudwatch first saw the payer's account (unknown if that was in its first "
        "week of observation)"
    ),
    "src_holder_age": "age of the payer account's holder in years",
    "src_is_business": "1 if the payer's account is a business account",
    "src_devices_7d": (
        "distinct devices the payer used in 7 days (unknown when the transfer names no device)"
    ),
    "dst_in_count_1h": "transfers the payee received in the last hour",
    "dst_in_count_24h": "transfers the payee received in the last 24 hours",
    "dst_distinct_payers_1h": "distinct payers into the payee in the last hour",
    "dst_distinct_payers_24h": "distinct payers into the payee in the last 24 hours",
    "dst_new_payers_24h": (
        "payers that paid the payee for the first time in the last 24 hours (unknown in the "
        "first week of observation)"
    ),
    "dst_in_amount_24h_minor": "money the payee received in the last 24 hours (CNY fen)",
    "dst_out_amount_24h_minor": "money the payee sent on in the last 24 hours (CNY fen)",
    "dst_pass_through_24h": "money out ÷ money in for the payee over 24 hours",
    "dst_account_age_days": "days since the payee's account was opened",
    "dst_known_days": (
        "days since fraudwatch first saw the payee's account (unknown if that was in its first "
        "week of observation)"
    ),
    "dst_holder_age": "age of the payee account's holder in years",
    "dst_is_business": "1 if the payee's account is a business account",
    "device_accounts_7d": "distinct payer accounts on this transfer's device in 7 days",
    "phone_accounts_7d": "distinct payer accounts on this transfer's phone number in 7 days",
    "ip_accounts_7d": "distinct payer accounts on this transfer's IP address in 7 days",
    "watchlist_hits": "parties of this transfer (payer, payee, device, phone, IP) on a watchlist",
    "dst_watchlisted": "1 if the payee's account is on the account watchlist",
    "src_watchlisted": "1 if the payer's account is on the account watchlist",
    "device_watchlisted": "1 if the device the payer used is on the device watchlist",
    "phone_watchlisted": "1 if the payer's phone number is on the phone watchlist",
    "ip_watchlisted": "1 if the payer's IP address is on the IP watchlist",
    "src_out_count_earlier_6d": (
        "payer's outgoing transfers in the 6 days before the last 24 hours"
    ),
    "src_in_count_earlier_6d": (
        "transfers the payer received in the 6 days before the last 24 hours"
    ),
    "src_distinct_payers_earlier_6d": (
        "distinct accounts that paid the payer in the 7 days but not in the last 24 hours"
    ),
    "dst_in_count_earlier_6d": (
        "transfers the payee received in the 6 days before the last 24 hours"
    ),
    "dst_distinct_payers_earlier_6d": (
        "distinct accounts that paid the payee in the 7 days but not in the last 24 hours"
    ),
    "dst_new_payers_earlier_6d": (
        "payers that first paid the payee in the 6 days before the last 24 hours (unknown in "
        "the first week of observation)"
    ),
    "src_tainted_in_amount_24h_minor": (
        "money that reached the payer in the last 24 hours through transfers that alerted "
        "(CNY fen)"
    ),
    "src_tainted_in_count_24h": "transfers that alerted and paid the payer in the last 24 hours",
    "src_tainted_in_share_24h": (
        "share of the money the payer received in 24 hours that came through transfers that alerted"
    ),
    "src_minutes_since_tainted_in": (
        "minutes since money last reached the payer through a transfer that alerted (unknown "
        "if none did in 24 hours)"
    ),
}

Features = dict[str, float]

# How much the payer has paid out lately: what a mule's every payout adds to.
PAYER_OUTGOING_FEATURES: tuple[str, ...] = (
    "src_out_count_1h",
    "src_out_count_24h",
    "src_distinct_payees_1h",
    "src_distinct_payees_24h",
    "src_new_payees_24h",
    "src_out_amount_24h_minor",
)

# Features that measure how much of something there is (transfers, counterparties, accounts on
# a device, money): more is stronger evidence. Ratios, ages, times and flags are not volumes.
VOLUME_FEATURES: frozenset[str] = frozenset(
    {
        "amount_minor",
        *PAYER_OUTGOING_FEATURES,
        "src_in_count_24h",
        "src_in_amount_24h_minor",
        "src_distinct_payers_24h",
        "src_devices_7d",
        "dst_in_count_1h",
        "dst_in_count_24h",
        "dst_distinct_payers_1h",
        "dst_distinct_payers_24h",
        "dst_new_payers_24h",
        "dst_in_amount_24h_minor",
        "dst_out_amount_24h_minor",
        "device_accounts_7d",
        "phone_accounts_7d",
        "ip_accounts_7d",
        "watchlist_hits",
        *LONGER_COUNT_FEATURES,
        "src_tainted_in_amount_24h_minor",
        "src_tainted_in_count_24h",
    }
)


# What a payment looks like (its size, hour, a first-time payee, an old or young payer): on its
# own that is how a scam victim's payment looks, so the account it points at is the payee.
_PAYMENT_FEATURES = frozenset(
    {"amount_minor", "hour_of_day", "is_first_time_payee", "amount_to_avg_30d", "src_holder_age"}
)


def feature_party(name: str) -> Party:
    """The party a feature is evidence against: the payee for its `dst_` features and for
    what the payment itself looks like (a victim's payment points at where it goes), else the
    payer (its own windows, its account, the device it used: how a mule behaves)."""
    return "payee" if name.startswith("dst_") or name in _PAYMENT_FEATURES else "payer"


def _known(value: int) -> float:
    return MISSING if value == UNKNOWN else float(value)


def _ratio(numerator: int, denominator: int) -> float:
    return MISSING if denominator <= 0 else numerator / denominator


def _days_since(ts_ms: int, then_ms: int) -> float:
    """Days from an account's opening to the transfer; unknown without an opening date, or
    with one more than a day after the transfer (a wrong date must not make an old account
    look brand new; within a day it is a date's time of day or zone)."""
    if then_ms == UNKNOWN or then_ms - ts_ms > MS_PER_DAY:
        return MISSING
    return max(0, ts_ms - then_ms) / MS_PER_DAY


def _known_for(ts_ms: int, first_seen_ms: int, observed_since_ms: int) -> float:
    """Days fraudwatch has known an account; unknown when it was first seen so soon after
    observation began that it may simply have been there all along."""
    if first_seen_ms == UNKNOWN or first_seen_ms < observed_since_ms + COLD_START_MS:
        return MISSING
    return max(0, ts_ms - first_seen_ms) / MS_PER_DAY


def _age_years(ts_ms: int, birth_year: int) -> float:
    if birth_year == UNKNOWN:
        return MISSING
    # Calendar year of the event, from its UTC time; close enough for an age band.
    year = 1970 + ts_ms / (365.2425 * MS_PER_DAY)
    return float(int(year) - birth_year)


def derive_features(
    transfer: Transfer,
    payer: PayerFacts,
    payee: PayeeFacts,
    entities: EntityFacts,
    listed: ListedParties,
    observed_since_ms: int,
    taint: Taint = NO_TAINT,
) -> Features:
    """The named features of one transfer, from the facts its state store returned, its
    parties on a watchlist (lists are outside knowledge, not model input), when the state
    began observing (the first event time it applied) and the money that reached its payer
    through transfers that alerted."""
    ts = transfer.ts_ms
    avg_prior = _ratio(payer.out_amt_30d_prior, payer.out_n_30d_prior)
    warm = ts >= observed_since_ms + COLD_START_MS  # has watched long enough to call a party new
    return {
        "amount_minor": float(transfer.amount_minor),
        "hour_of_day": float(transfer.local_hour),
        "is_first_time_payee": float(payer.first_time_payee)
        if warm or not payer.first_time_payee
        else MISSING,
        "amount_to_avg_30d": MISSING
        if math.isnan(avg_prior)
        else transfer.amount_minor / avg_prior,
        "src_out_count_1h": float(payer.out_n_1h),
        "src_out_count_24h": float(payer.out_n_24h),
        "src_distinct_payees_1h": float(payer.payees_1h),
        "src_distinct_payees_24h": float(payer.payees_24h),
        "src_new_payees_24h": float(payer.new_payees_24h) if warm else MISSING,
        "src_new_payee_share_24h": _ratio(payer.new_payees_24h, payer.payees_24h)
        if warm
        else MISSING,
        "src_out_amount_24h_minor": float(payer.out_amt_24h),
        "src_in_count_24h": float(payer.in_n_24h),
        "src_in_amount_24h_minor": float(payer.in_amt_24h),
        "src_distinct_payers_24h": float(payer.payers_24h),
        "src_pass_through_24h": _ratio(payer.out_amt_24h, payer.in_amt_24h),
        "src_dwell_minutes": MISSING
        if payer.last_in_ts == UNKNOWN
        else max(0, ts - payer.last_in_ts) / MS_PER_MINUTE,
        "src_account_age_days": _days_since(ts, payer.opened_at),
        "src_known_days": _known_for(ts, payer.first_seen_ts, observed_since_ms),
        "src_holder_age": _age_years(ts, payer.birth_year),
        "src_is_business": _known(payer.is_business),
        # A bank that sends no device ids (an optional field) has no device count to give.
        "src_devices_7d": MISSING if transfer.device_id is None else float(payer.devices_7d),
        "dst_in_count_1h": float(payee.in_n_1h),
        "dst_in_count_24h": float(payee.in_n_24h),
        "dst_distinct_payers_1h": float(payee.payers_1h),
        "dst_distinct_payers_24h": float(payee.payers_24h),
        "dst_new_payers_24h": float(payee.new_payers_24h) if warm else MISSING,
        "dst_in_amount_24h_minor": float(payee.in_amt_24h),
        "dst_out_amount_24h_minor": float(payee.out_amt_24h),
        "dst_pass_through_24h": _ratio(payee.out_amt_24h, payee.in_amt_24h),
        "dst_account_age_days": _days_since(ts, payee.opened_at),
        "dst_known_days": _known_for(ts, payee.first_seen_ts, observed_since_ms),
        "dst_holder_age": _age_years(ts, payee.birth_year),
        "dst_is_business": _known(payee.is_business),
        "device_accounts_7d": _known(entities.device_accounts_7d),
        "phone_accounts_7d": _known(entities.phone_accounts_7d),
        "ip_accounts_7d": _known(entities.ip_accounts_7d),
        "watchlist_hits": float(listed.parties),
        "dst_watchlisted": float(listed.payee),
        "src_watchlisted": float(listed.payer),
        "device_watchlisted": float(listed.device),
        "phone_watchlisted": float(listed.phone),
        "ip_watchlisted": float(listed.ip),
        # What the account did before today, apart from today's burst: a mule paying twelve
        # new payees in an hour has not had a busy week (a model fed 7-day counts that
        # include the burst learnt that it had).
        "src_out_count_earlier_6d": float(payer.out_n_7d - payer.out_n_24h),
        "src_in_count_earlier_6d": float(payer.in_n_7d - payer.in_n_24h),
        "src_distinct_payers_earlier_6d": float(payer.payers_7d - payer.payers_24h),
        "dst_in_count_earlier_6d": float(payee.in_n_7d - payee.in_n_24h),
        "dst_distinct_payers_earlier_6d": float(payee.payers_7d - payee.payers_24h),
        "dst_new_payers_earlier_6d": float(payee.new_payers_7d - payee.new_payers_24h)
        if warm
        else MISSING,
        "src_tainted_in_amount_24h_minor": float(taint.amount_minor),
        "src_tainted_in_count_24h": float(taint.transfers),
        # (24-hour inflow sums whole clock hours, so it can hold a little less than the taint)
        "src_tainted_in_share_24h": MISSING
        if payer.in_amt_24h <= 0
        else min(1.0, taint.amount_minor / payer.in_amt_24h),
        "src_minutes_since_tainted_in": MISSING
        if taint.last_ts == UNKNOWN
        else max(0, ts - taint.last_ts) / MS_PER_MINUTE,
    }
