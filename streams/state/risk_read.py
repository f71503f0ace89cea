"""An account's early-warning risk, read from state: the one path for the account risk view
and for the payee's risk in pre-transfer screening."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import Pipeline

from models.account_risk import AccountFacts, RiskReason, assess_account
from models.alerts import Alert
from models.features import MS_PER_DAY
from models.watchlist import Watchlists, now_ms
from streams.state import keys
from streams.state.account_view import (
    AccountSnapshot,
    load_view_script,
    queue_sharing,
    queue_views,
    snapshots,
)
from streams.state.alert_store import AlertStore
from streams.state.scripts import after_script_reload
from streams.state.watchlists import WatchlistStore


@dataclass(frozen=True, slots=True)
class AccountRisk:
    """The risk level, its reasons, and what they were weighed on."""

    snapshot: AccountSnapshot
    alerts: list[Alert]
    age_days: float | None
    level: str
    reasons: list[RiskReason]


RECENT_ALERTS = 100  # an account's alerts its risk weighs


@dataclass(frozen=True, slots=True)
class PendingRisks:
    """Risk reads for some accounts, queued on a pipeline that may carry other reads too;
    `finish` takes their replies and makes one more round trip for all of them."""

    account_ids: list[str]
    lists: Watchlists

    @property
    def _neighbours(self) -> bool:
        return bool(self.lists.expiries and self.lists.expiries.get("account"))

    @property
    def replies(self) -> int:
        """How many pipeline replies `queue` adds."""
        return len(self.account_ids) * (4 if self._neighbours else 2)

    def queue(self, pipe: Pipeline) -> None:
        """Queue each account's view, its recent alert ids and (with listed accounts) its
        counterparties."""
        queue_views(pipe, self.account_ids)
        AlertStore.queue_recent_ids(pipe, self.account_ids, RECENT_ALERTS)
        if self._neighbours:
            for account_id in self.account_ids:
                k = keys.account_keys(account_id)
                pipe.zrange(k["payees"], 0, -1)
                pipe.zrange(k["payers"], 0, -1)

    def finish(
        self, client: redis.Redis, watchlists: WatchlistStore, replies: Sequence[Any]
    ) -> list[AccountRisk]:
        """Each account's risk now, from the replies to `queue`."""
        n, now = len(self.account_ids), now_ms()
        views = list(replies[:n])
        alert_ids = [[m.decode() for m in ids] for ids in replies[n : 2 * n]]
        parties = replies[2 * n :]
        pipe = client.pipeline(transaction=False)
        shared = queue_sharing(pipe, views)
        wanted = sorted({i for ids in alert_ids for i in ids})
        if wanted:
            AlertStore.queue_get(pipe, wanted)
        second = pipe.execute() if len(pipe) else []
        found = AlertStore.decode_found(second[shared]) if wanted else {}
        risks = []
        for k, snap in enumerate(snapshots(self.account_ids, views, second[:shared])):
            listed: tuple[str, ...] = ()
            if parties:
                paid, paid_by = parties[2 * k], parties[2 * k + 1]
                both = {m.decode() for m in paid} | {m.decode() for m in paid_by}
                listed = tuple(self.lists.listed_accounts(both, now))
            recent = [found[i] for i in alert_ids[k] if i in found]
            risks.append(_risk(snap, recent, listed, self.lists, watchlists, now))
        return risks


def _risk(
    snap: AccountSnapshot,
    recent: list[Alert],
    listed: tuple[str, ...],
    lists: Watchlists,
    watchlists: WatchlistStore,
    now: int,
) -> AccountRisk:
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
        recent,
    )
    return AccountRisk(snap, recent, age_days, level, reasons)


def read_account_risks(
    client: redis.Redis, watchlists: WatchlistStore, lists: Watchlists, account_ids: Sequence[str]
) -> list[AccountRisk]:
    """Risk of each account now: its windows, its alerts, and its watchlist neighbourhood,
    in two round trips whatever the number of accounts."""
    pending = PendingRisks(list(account_ids), lists)

    def first() -> list[Any]:
        pipe = client.pipeline(transaction=False)
        pending.queue(pipe)
        return pipe.execute()

    replies = after_script_reload(first, lambda: load_view_script(client))
    return pending.finish(client, watchlists, replies)
