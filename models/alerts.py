"""The alert (CONTRACT.md §3) and how a scored transfer becomes one. Pure: no I/O."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

import msgspec

from models.events import Transfer
from models.features import Party

STATUSES = ("open", "escalated", "confirmed", "appealed", "dismissed")
SEVERITIES = ("low", "medium", "high", "critical")


class Reason(msgspec.Struct, omit_defaults=True):
    """Why an alert was raised: one rule that fired, or the model's contribution."""

    rule: str
    title: str
    evidence: dict[str, Any]
    version: int | None = None
    score: float | None = None
    summary: str | None = None
    # The party the reason suspects: as the rule declares, or the one the model's raising
    # signals are about, summed (`models.model.suspected_party`).
    suspect: Party | None = None


class ModelVerdict(msgspec.Struct):
    """The model's opinion of one transfer."""

    name: str
    version: str
    score: float


class Alert(msgspec.Struct, omit_defaults=True):
    """One alert per flagged transfer, identical on Kafka, in Redis and in the API."""

    alert_id: str
    transfer_id: str
    ts: str
    src_account: str
    dst_account: str
    amount: str
    currency: str
    score: float
    severity: str
    reasons: list[Reason]
    model: ModelVerdict | None
    status: str
    created_at: str
    ts_ms: int
    # The account the alert suspects (None only on alerts stored before it was recorded, which
    # `with_suspect` completes on reading). After `created_at`: the workflow script rewrites
    # the status just before that field.
    suspect_account: str | None = None
    # The case it belongs to: kept beside the alert, not in its stored body (merging cases
    # moves alerts), and filled in wherever an alert is shown or published.
    case_id: str | None = None


def alert_id_for(transfer_id: str) -> str:
    """Deterministic from the transfer id, so every replay names the alert the same."""
    return "al_" + hashlib.sha256(transfer_id.encode()).hexdigest()[:24]


EventType = Literal["alert.created", "alert.updated"]
EVENT_TYPES: tuple[EventType, ...] = ("alert.created", "alert.updated")


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An entry of the alert event log: an alert was created (by the worker, or by the API's
    retro-hunt), or moved through the workflow (`action` from `from_status` to `to_status`
    by the key `by_key_id`)."""

    event_id: str
    type: EventType
    alert_id: str
    origin: str
    action: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    by_key_id: str | None = None
    move: int | None = None  # the move's number in the alert's history (1 for the first)


class StoredAlert(NamedTuple):
    """An alert as a store keeps it: the one just raised if it was `new`, else the one kept
    since its first raising (with an investigator's status, if any)."""

    new: bool
    alert: Alert


# Decimals of an alert's score: what people read, and what its severity is judged on.
SCORE_DIGITS = 4


@dataclass(frozen=True, slots=True)
class SeverityBands:
    """Score thresholds: alert at `alert_threshold`, then medium, high, critical."""

    alert_threshold: float = 0.5
    medium: float = 0.65
    high: float = 0.8
    critical: float = 0.92

    def severity(self, score: float) -> str | None:
        """The severity of a score, or None if it does not reach the alert threshold."""
        if score < self.alert_threshold:
            return None
        if score >= self.critical:
            return "critical"
        if score >= self.high:
            return "high"
        if score >= self.medium:
            return "medium"
        return "low"


def rfc3339_now(now: datetime | None = None) -> str:
    """Processing time as RFC 3339 in UTC with milliseconds."""
    moment = now or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def suspect_party(reasons: list[Reason]) -> Party:
    """The party an alert suspects: the one its strongest rule declares, or, when only the
    model alerted, the one the model's raising signals are about (the payee when neither
    says: the account the money went to)."""
    rules = [reason for reason in reasons if reason.rule != "model" and reason.suspect]
    for reason in rules or reasons:
        if reason.suspect is not None:
            return reason.suspect
    return "payee"


def suspect_account_of(src_account: str, dst_account: str, reasons: list[Reason]) -> str:
    """The account an alert with these reasons suspects (see `suspect_party`)."""
    return src_account if suspect_party(reasons) == "payer" else dst_account


def with_suspect(alert: Alert) -> Alert:
    """The alert with its suspect account: one stored by a release before suspects were
    recorded gets the one its reasons name, as it would have been raised now (the payee when
    none names one), so decisions on it list and suppress, and views show it."""
    if alert.suspect_account is not None:
        return alert
    suspect = suspect_account_of(alert.src_account, alert.dst_account, alert.reasons)
    return msgspec.structs.replace(alert, suspect_account=suspect)


def build_alert(
    transfer: Transfer,
    score: float,
    severity: str,
    reasons: list[Reason],
    model: ModelVerdict | None,
    created_at: str,
) -> Alert:
    """The alert for a transfer that crossed the threshold (status starts `open`); `score` as
    `models.scorer.final_score` gives it, to the digits shown."""
    return Alert(
        alert_id=alert_id_for(transfer.transfer_id),
        transfer_id=transfer.transfer_id,
        ts=transfer.ts,
        src_account=transfer.src_account,
        dst_account=transfer.dst_account,
        amount=f"{transfer.amount:.2f}",
        currency=transfer.currency,
        score=score,
        severity=severity,
        reasons=reasons,
        model=model,
        status="open",
        created_at=created_at,
        ts_ms=transfer.ts_ms,
        suspect_account=suspect_account_of(transfer.src_account, transfer.dst_account, reasons),
    )


alert_encoder = msgspec.json.Encoder()
alert_decoder = msgspec.json.Decoder(Alert)
