"""Retro-hunt alerts: a transfer from the past with an account that has just been listed. Pure.

When an account is put on the watchlist (by an admin, a CSV import, or an investigator's
confirmed case), the transfers it made or received that state still holds are flagged too:
the money it collected or passed on before anyone knew. Each such transfer raises one alert
with the rule `watchlist_retro`, named by its transfer id like every alert, so a transfer that
alerted already raises nothing new and listing the same account twice flags nothing twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from models.alerts import Alert, Reason, SeverityBands, alert_id_for
from models.features import Party

RULE = "watchlist_retro"
TITLE = "Past transfer of an account since put on a watchlist"
# As the live watchlist rules: a listing is confirmed knowledge, not a pattern.
SCORE = 0.85


def listing_words(source: str, reason: str) -> str:
    """A listing in words, as a retro-hunt alert names the one that raised it."""
    return f"{source}: {reason}"


def raised_by(alert: Alert, source: str) -> bool:
    """Whether `alert` is a retro-hunt alert that a listing from `source` raised."""
    if len(alert.reasons) != 1 or alert.reasons[0].rule != RULE:
        return False
    summary = alert.reasons[0].summary or ""
    return summary.endswith(")") and f"({listing_words(source, '')}" in summary


def _rfc3339(ts_ms: int) -> str:
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def retro_alert(
    transfer_id: str,
    src: str,
    dst: str,
    ts_ms: int,
    amount_minor: int,
    currency: str,
    listed: str,
    listing: str,
    bands: SeverityBands,
    created_at: str,
) -> Alert:
    """The alert for a past transfer of the account `listed` (its payer or payee), which was
    listed as `listing` (source and reason, in words)."""
    party: Party = "payer" if listed == src else "payee"
    score = max(SCORE, bands.alert_threshold)
    reason = Reason(
        rule=RULE,
        title=TITLE,
        evidence={"watchlist_hits": 1, "amount_minor": amount_minor},
        score=SCORE,
        summary=f"the {party} {listed} has since been listed ({listing})",
        suspect=party,
    )
    return Alert(
        alert_id=alert_id_for(transfer_id),
        transfer_id=transfer_id,
        ts=_rfc3339(ts_ms),
        src_account=src,
        dst_account=dst,
        amount=f"{Decimal(amount_minor) / 100:.2f}",
        currency=currency,
        score=score,
        severity=bands.severity(score) or "high",
        reasons=[reason],
        model=None,
        status="open",
        created_at=created_at,
        ts_ms=ts_ms,
        suspect_account=listed,
    )
