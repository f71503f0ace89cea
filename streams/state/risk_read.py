"""An account's early-warning risk, read from state: the one path for the account risk view
and for the payee's risk in pre-transfer screening."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from models.account_risk import AccountFacts, RiskReason, assess_account
from models.alerts import Alert
from models.features import MS_PER_DAY
from models.watchlist import Watchlists, now_ms
from streams.state import keys
from streams.state.account_view import AccountSnapshot, read_accounts
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
    client: redis.Redis, lists: Watchlists, account_ids: Sequence[str], at_ms: int
) -> list[tuple[str, ...]]:
    """For each account, the listed accounts it paid or was paid by (payees and payers)."""
    if not lists.expiries or not lists.expiries.get("account"):
        return [() for _ in account_ids]
    pipe = client.pipeline(transaction=False)
    for account_id in account_ids:
        k = keys.account_keys(account_id)
        pipe.zrange(k["payees"], 0, -1)
        pipe.zrange(k["payers"], 0, -1)
    replies = pipe.execute()
    listed = []
    for n in range(len(account_ids)):
        payees, payers = replies[2 * n], replies[2 * n + 1]
        parties = {m.decode() for m in payees} | {m.decode() for m in payers}
        listed.append(tuple(lists.listed_accounts(parties, at_ms)))
    return listed


def read_account_risks(
    client: redis.Redis,
    alerts: AlertStore,
    watchlists: WatchlistStore,
    lists: Watchlists,
    account_ids: Sequence[str],
) -> list[AccountRisk]:
    """Risk of each account now: its windows, its alerts, and its watchlist neighbourhood.

    A handful of round trips whatever the number of accounts (screening reads a batch)."""
    now = now_ms()
    snapshots = read_accounts(client, account_ids)
    recent = alerts.for_accounts(account_ids, limit=100)
    neighbours = listed_counterparties(client, lists, account_ids, now)
    risks = []
    for snap, account_alerts, listed in zip(snapshots, recent, neighbours, strict=True):
        age_days = None
        if snap.opened_at_ms is not None and snap.as_of_ms is not None:
            age_days = max(0, snap.as_of_ms - snap.opened_at_ms) / MS_PER_DAY
        listing = None
        if lists.listed("account", snap.account_id, now):
            entry = watchlists.get("account", snap.account_id)
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
                listed_counterparties=listed,
            ),
            account_alerts,
        )
        risks.append(AccountRisk(snap, account_alerts, age_days, level, reasons))
    return risks
