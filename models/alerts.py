"""The alert (CONTRACT.md §3) and how a scored transfer becomes one. Pure: no I/O."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec

from models.events import Transfer

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


class ModelVerdict(msgspec.Struct):
    """The model's opinion of one transfer."""

    name: str
    version: str
    score: float


class Alert(msgspec.Struct):
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


def alert_id_for(transfer_id: str) -> str:
    """Deterministic from the transfer id, so every replay names the alert the same."""
    return "al_" + hashlib.sha256(transfer_id.encode()).hexdigest()[:24]


class StoredAlert(NamedTuple):
    """An alert as a store keeps it: the one just raised if it was `new`, else the one kept
    since its first raising (with an investigator's status, if any)."""

    new: bool
    alert: Alert


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


def build_alert(
    transfer: Transfer,
    score: float,
    severity: str,
    reasons: list[Reason],
    model: ModelVerdict | None,
    created_at: str,
) -> Alert:
    """The alert for a transfer that crossed the threshold (status starts `open`)."""
    return Alert(
        alert_id=alert_id_for(transfer.transfer_id),
        transfer_id=transfer.transfer_id,
        ts=transfer.ts,
        src_account=transfer.src_account,
        dst_account=transfer.dst_account,
        amount=f"{transfer.amount:.2f}",
        currency=transfer.currency,
        score=round(score, 4),
        severity=severity,
        reasons=reasons,
        model=model,
        status="open",
        created_at=created_at,
        ts_ms=transfer.ts_ms,
    )


alert_encoder = msgspec.json.Encoder()
alert_decoder = msgspec.json.Decoder(Alert)
