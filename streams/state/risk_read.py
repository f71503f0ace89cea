"""An account's early-warning risk, read from state: the one path for the account risk view
and for the payee's risk in pre-transfer screening."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.account_risk import AccountFacts, RiskReason, assess_account
from models.alerts import Alert
from models.features import MS_PER_DAY
from models.watchlist import WatchlistEntry, Watchlists, now_ms
from streams.state.account_view import AccountSnapshot, queue_sharing, queue_views, snapshots
from streams.state.alert_store import AlertStore
from streams.state.functions import Library
from streams.state.pipelines import AnyRedis, Pipeline
from streams.state.spec import BAND
from streams.state.watchlists import WatchlistStore
from streams.state.windows import members, queue_band


@dataclass(frozen=True, slots=True)
class AccountRisk:
    """The risk level, its reasons, and what they were weighed on."""

    snapshot: AccountSnapshot
    alerts: list[Alert]
    age_days: float | None
    level: str
    reasons: list[RiskReason]
    listing: WatchlistEntry | None = None  # its own account watchlist entry, when in force


RECENT_ALERTS = 100  # an account's alerts its risk weighs


@dataclass(frozen=True, slots=True)
class PendingRisks:
    """Risk reads for some accounts in two round trips: `queue` the first reads on a pipeline
    that may carry other reads too, hand their replies to `follow_up`, and `read` the rest."""

    account_ids: list[str]
    lists: Watchlists
    library: Library

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
        queue_views(pipe, self.account_ids, self.library)
        AlertStore.queue_recent_ids(pipe, self.account_ids, RECENT_ALERTS)
        if self._neighbours:
            for account_id in self.account_ids:
                queue_band(pipe, account_id, BAND["payees_first"])
                queue_band(pipe, account_id, BAND["payers_first"])

    def follow_up(self, replies: Sequence[Any]) -> RiskFollowUp:
        """The second round trip's reads, from the replies to `queue`."""
        n = len(self.account_ids)
        return RiskFollowUp(
            self,
            views=list(replies[:n]),
            alert_ids=[[m.decode() for m in ids] for ids in replies[n : 2 * n]],
            parties=list(replies[2 * n :]),
            now_ms=now_ms(),
        )


@dataclass(frozen=True, slots=True)
class RiskFollowUp:
    """The reads that depend on the first round trip: who shares each account's devices,
    its alerts, and the watchlist entries of the listed ones."""

    pending: PendingRisks
    views: list[Any]
    alert_ids: list[list[str]]
    parties: list[Any]
    now_ms: int

    @property
    def _wanted(self) -> list[str]:
        return sorted({i for ids in self.alert_ids for i in ids})

    @property
    def _listed(self) -> list[str]:
        lists, at = self.pending.lists, self.now_ms
        return [a for a in self.pending.account_ids if lists.listed("account", a, at)]

    def queue(self, pipe: Pipeline) -> int:
        """Queue the reads; returns how many (none: the caller need not send the pipeline)."""
        queued = queue_sharing(pipe, self.views)
        if self._wanted:
            AlertStore.queue_get(pipe, self._wanted)
            queued += AlertStore.GET_REPLIES
        for account_id in self._listed:
            WatchlistStore.queue_get(pipe, "account", account_id)
            queued += 1
        return queued

    def read(self, client: AnyRedis) -> list[AccountRisk]:
        """Send the reads (when there are any) and finish with their replies."""
        pipe = client.pipeline(transaction=False)
        return self.finish(pipe.execute() if self.queue(pipe) else [])

    def finish(self, replies: Sequence[Any]) -> list[AccountRisk]:
        """Each account's risk now, from the replies to `queue`."""
        alert_replies = AlertStore.GET_REPLIES if self._wanted else 0
        shared = len(replies) - alert_replies - len(self._listed)
        found = (
            AlertStore.decode_found(*replies[shared : shared + alert_replies])
            if self._wanted
            else {}
        )
        entries = zip(self._listed, replies[shared + alert_replies :], strict=True)
        listings = {a: WatchlistStore.decode("account", a, raw) for a, raw in entries}
        lists, now = self.pending.lists, self.now_ms
        risks = []
        for k, snap in enumerate(snapshots(self.pending.account_ids, self.views, replies[:shared])):
            listed: tuple[str, ...] = ()
            if self.parties:
                paid = members(self.parties[2 * k], BAND["payees_first"])
                paid_by = members(self.parties[2 * k + 1], BAND["payers_first"])
                both = {*paid, *paid_by}
                listed = tuple(lists.listed_accounts(both, now))
            recent = [found[i] for i in self.alert_ids[k] if i in found]
            risks.append(_risk(snap, recent, listed, listings, now))
        return risks


def _risk(
    snap: AccountSnapshot,
    recent: list[Alert],
    listed: tuple[str, ...],
    listings: dict[str, WatchlistEntry | None],
    now: int,
) -> AccountRisk:
    age_days = None
    if snap.opened_at_ms is not None and snap.as_of_ms is not None:
        age_days = max(0, snap.as_of_ms - snap.opened_at_ms) / MS_PER_DAY
    listing, entry = None, listings.get(snap.account_id)
    if snap.account_id in listings:
        listing = f"{entry.source}: {entry.reason}" if entry else "listed"
    level, reasons = assess_account(
        AccountFacts(
            distinct_payers_24h=snap.distinct_payers_24h,
            distinct_payees_1h=snap.distinct_payees_1h,
            pass_through_24h=snap.pass_through_24h,
            in_amount_24h_minor=snap.in_amount_24h_minor,
            accounts_sharing_devices_or_phones=len(snap.accounts_sharing_devices_or_phones),
            account_age_days=age_days,
            is_business=snap.is_business,
            watchlisted=listing,
            listed_counterparties=listed,
        ),
        recent,
    )
    return AccountRisk(snap, recent, age_days, level, reasons, entry)


def read_account_risks(
    client: AnyRedis,
    lists: Watchlists,
    account_ids: Sequence[str],
    library: Library,
) -> list[AccountRisk]:
    """Risk of each account now: its windows, its alerts, and its watchlist neighbourhood,
    in two round trips whatever the number of accounts."""
    pending = PendingRisks(list(account_ids), lists, library)

    def first() -> list[Any]:
        pipe = client.pipeline(transaction=False)
        pending.queue(pipe)
        return pipe.execute()

    return pending.follow_up(library.calling(client, first)).read(client)
