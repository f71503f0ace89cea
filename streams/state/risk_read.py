"""An account's early-warning risk, read from state: the one path for the account risk view
and for the payee's risk in pre-transfer screening."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from models.account_risk import AccountFacts, RiskReason, assess_account
from models.alerts import Alert
from models.features import MS_PER_DAY
from models.watchlist import Watchlists, now_ms
from streams.state import keys
from streams.state.account_view import AccountSnapshot, read_account
from streams.state.alert_store import AlertStore
from streams.state.watchlists import WatchlistStore


@dataclass(frozen=True, slots=True)
class AccountRisk:
    """The risk level, its reasons, and what they were weighed on."""

    snapshot: AccountSnapshot
    alerts: list[Alert]
    age_days: float | None
    level: str
    reasons: list[RiskReason]


def listed_counterparties(
    client: redis.Redis, lists: Watchlists, account_id: str, at_ms: int
) -> tuple[str, ...]:
    """Listed accounts the account paid or was paid by (its payees and payers)."""
    if not lists.expiries or not lists.expiries.get("account"):
        return ()
    k = keys.account_keys(account_id)
    pipe = client.pipeline(transaction=False)
    pipe.zrange(k["payees"], 0, -1)
    pipe.zrange(k["payers"], 0, -1)
    payees, payers = pipe.execute()
    parties = {m.decode() for m in payees} | {m.decode() for m in payers}
    return tuple(lists.listed_accounts(parties, at_ms))


def read_account_risk(
    client: redis.Redis,
    alerts: AlertStore,
    watchlists: WatchlistStore,
    lists: Watchlists,
    account_id: str,
) -> AccountRisk:
    """Risk of one account now: its windows, its alerts, and its watchlist neighbourhood."""
    snap = read_account(client, account_id)
    recent = alerts.for_account(account_id, limit=100)
    age_days = None
    if snap.opened_at_ms is not None and snap.as_of_ms is not None:
        age_days = max(0, snap.as_of_ms - snap.opened_at_ms) / MS_PER_DAY
    now = now_ms()
    listing = None
    if lists.listed("account", account_id, now):
        entry = watchlists.get("account", account_id)
        listing = f"{entry.source}: {entry.reason}" if entry else "listed"
    level, reasons = assess_account(
        AccountFacts(
            distinct_payers_24h=snap.distinct_payers_24h,
            distinct_payees_1h=snap.distinct_payees_1h,
            pass_through_24h=snap.pass_through_24h,
            in_amount_24h_minor=snap.in_amount_24h_minor,
            accounts_sharing_devices=len(snap.accounts_sharing_identifiers),
            account_age_days=age_days,
            is_business=snap.is_business,
            watchlisted=listing,
            listed_counterparties=listed_counterparties(client, lists, account_id, now),
        ),
        recent,
    )
    return AccountRisk(snap, recent, age_days, level, reasons)
