"""The early-warning risk level of an account: its alerts and its mule-like facts. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.alerts import SEVERITIES, Alert

LEVELS = ("none", "low", "medium", "high", "critical")
OPEN_STATUSES = ("open", "escalated", "confirmed", "appealed")


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """The windowed facts the risk view weighs (from the state snapshot)."""

    distinct_payers_24h: int
    distinct_payees_1h: int
    pass_through_24h: float | None
    in_amount_24h_minor: int
    # (devices and phone numbers only: IPs are shared by whole networks)
    accounts_sharing_devices_or_phones: int
    account_age_days: float | None
    is_business: bool | None
    # Why the account itself is on a watchlist (None when it is not), and the listed
    # accounts it paid or was paid by within its windows.
    watchlisted: str | None = None
    listed_counterparties: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RiskReason:
    """One reason for the level, in words and with its figure."""

    code: str
    text: str
    level: str


def _max_level(levels: Sequence[str]) -> str:
    return max(levels, key=LEVELS.index, default="none")


def alerts_reason(alerts: Sequence[Alert]) -> RiskReason | None:
    """The reason unresolved alerts give (their worst severity; critical once one is
    confirmed as fraud), or None without any."""
    live = [a for a in alerts if a.status in OPEN_STATUSES]
    if not live:
        return None
    worst = max(live, key=lambda a: SEVERITIES.index(a.severity))
    confirmed = [a for a in live if a.status == "confirmed"]
    level = "critical" if confirmed else worst.severity
    text = f"{len(live)} alert(s) not dismissed, worst {worst.severity}"
    if confirmed:
        text += f"; {len(confirmed)} confirmed as fraud"
    return RiskReason("alerts", text, level)


def _watchlist_reasons(facts: AccountFacts) -> list[RiskReason]:
    reasons = []
    if facts.watchlisted is not None:
        reasons.append(
            RiskReason("watchlisted", f"on a watchlist: {facts.watchlisted}", "critical")
        )
    if facts.listed_counterparties:
        shown = ", ".join(facts.listed_counterparties[:5])
        more = len(facts.listed_counterparties) - 5
        reasons.append(
            RiskReason(
                "watchlist_neighbour",
                f"paid or was paid by watchlisted account(s) {shown}"
                + (f" and {more} more" if more > 0 else ""),
                "high",
            )
        )
    return reasons


def without_listing_text(reasons: Sequence[RiskReason], source: str | None) -> list[RiskReason]:
    """The reasons as a role without need of a listing's free text sees them (the bank's): the
    watchlist reason names the listing's source only, since its reason may quote a police
    report or a holder's details."""
    shown = f"on a watchlist ({source})" if source else "on a watchlist"
    return [RiskReason(r.code, shown, r.level) if r.code == "watchlisted" else r for r in reasons]


def assess_account(facts: AccountFacts, alerts: Sequence[Alert]) -> tuple[str, list[RiskReason]]:
    """Risk level (none…critical) and its reasons, strongest first."""
    reasons = _watchlist_reasons(facts)
    from_alerts = alerts_reason(alerts)
    if from_alerts is not None:
        reasons.append(from_alerts)
    business = facts.is_business is True
    young = facts.account_age_days is not None and facts.account_age_days < 90
    if facts.distinct_payers_24h >= 10 and not business:
        level = "high" if young or facts.distinct_payers_24h >= 20 else "medium"
        reasons.append(
            RiskReason("fan_in", f"{facts.distinct_payers_24h} distinct payers in 24 hours", level)
        )
    if facts.distinct_payees_1h >= 8 and not business:
        reasons.append(
            RiskReason("fan_out", f"{facts.distinct_payees_1h} distinct payees in 1 hour", "high")
        )
    if (
        facts.pass_through_24h is not None
        and facts.pass_through_24h >= 0.8
        and facts.in_amount_24h_minor >= 1_000_000
        and not business
    ):
        reasons.append(
            RiskReason(
                "pass_through",
                f"{facts.pass_through_24h:.0%} of money received in 24 hours already sent on",
                "high" if young else "medium",
            )
        )
    if facts.accounts_sharing_devices_or_phones >= 3:
        others = facts.accounts_sharing_devices_or_phones
        reasons.append(
            RiskReason(
                "shared_device",
                f"its devices or phone numbers are also used by {others} other accounts",
                "high",
            )
        )
    reasons.sort(key=lambda r: -LEVELS.index(r.level))
    return _max_level([r.level for r in reasons]), reasons
