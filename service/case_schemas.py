"""Request and response models of cases (OpenAPI)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from models.cases import CaseRecord
from models.watchlist import iso_ms
from service.schemas import AlertActionIn, AlertOut

Status = Literal["open", "escalated", "confirmed", "appealed", "dismissed"]
Severity = Literal["low", "medium", "high", "critical"]
# A case whose latest alerted transfer is this recent (by the API's clock) still has money
# moving: the queue puts it first anyway (its priority), this says so in words.
MOVING_MS = 2 * 3_600_000


def money(minor: int) -> str:
    """Minor units as a decimal string."""
    return f"{Decimal(minor) / 100:.2f}"


class AmountOut(BaseModel):
    """An amount in one currency."""

    currency: str = Field(examples=["CNY"])
    amount: str = Field(examples=["237600.00"])


class CaseOut(BaseModel):
    """A case: the alerts about one suspect account (or one ring of them) to decide together."""

    case_id: str = Field(examples=["cs_9b3e0f1c2d4a5b6c7d8e9f01"])
    status: Status = Field(
        description="Its alerts' least settled status: open while any alert is open, then "
        "escalated, appealed, confirmed, dismissed"
    )
    severity: Severity = Field(description="Its highest alert severity")
    priority: float = Field(
        description="The queue's order (higher first): the latest event time in hours since "
        "1970, moved ahead 6 hours per severity step and 2 hours per tenfold of the amount at "
        "risk, so money still moving comes first",
        examples=[492365.833],
    )
    money_moving: bool = Field(
        description="Its latest alerted transfer was less than 2 hours ago (by the clock)"
    )
    first_event_at: str | None = Field(examples=["2026-03-02T01:00:00.000Z"])
    last_event_at: str | None = Field(examples=["2026-03-02T01:47:00.000Z"])
    alert_count: int = Field(examples=[24])
    amount_at_risk: list[AmountOut] = Field(
        description="The sum of its alerted transfers, per currency"
    )
    suspects: list[str] = Field(
        description="The accounts its alerts suspect (more than one: a ring)",
        examples=[["6222020000000777"]],
    )
    alerts_by_status: dict[str, int] = Field(examples=[{"open": 23, "confirmed": 1}])

    @classmethod
    def of(cls, record: CaseRecord, now_ms: int) -> CaseOut:
        """From the stored summary."""
        return cls(
            case_id=record.case_id,
            status=record.status,  # type: ignore[arg-type]
            severity=record.severity,  # type: ignore[arg-type]
            priority=record.priority,
            money_moving=now_ms - record.last_ts_ms < MOVING_MS,
            first_event_at=iso_ms(record.first_ts_ms),
            last_event_at=iso_ms(record.last_ts_ms),
            alert_count=record.alerts,
            amount_at_risk=[
                AmountOut(currency=c, amount=money(m)) for c, m in sorted(record.amounts.items())
            ],
            suspects=record.suspects,
            alerts_by_status=dict(record.counts),
        )


class CasePage(BaseModel):
    """A page of the case queue, highest priority first."""

    items: list[CaseOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )


class CaseAccountOut(BaseModel):
    """An account in a case, and the money of the case's alerted transfers through it."""

    account_id: str = Field(examples=["6222020000000777"])
    role: Literal["suspect", "party"] = Field(
        description="`suspect`: an alert suspects it; `party`: the other side of an alert"
    )
    listed: bool = Field(description="On the account watchlist now")
    amount_in: str = Field(examples=["120000.00"])
    amount_out: str = Field(examples=["118800.00"])


class MoneyFlowOut(BaseModel):
    """One alerted transfer of the case: an edge of its money graph."""

    transfer_id: str
    from_account: str = Field(examples=["6222020000000777"])
    to_account: str = Field(examples=["6222020000000901"])
    amount: str = Field(examples=["9900.00"])
    currency: str = Field(examples=["CNY"])
    ts: str
    alert_id: str
    severity: Severity
    status: Status


class CaseDetailOut(CaseOut):
    """A case with its alerts, its accounts and the money graph of its alerted transfers."""

    alerts: list[AlertOut] = Field(description="Its alerts by event time (the first 500)")
    accounts: list[CaseAccountOut] = Field(description="Suspects first, then by money moved")
    flows: list[MoneyFlowOut] = Field(
        description="Its alerted transfers, by event time: the edges of the money graph whose "
        "nodes are `accounts` (follow any of them further with /v1/trace)"
    )


class CaseActionIn(AlertActionIn):
    """A decision on every alert of a case, with the reason for it."""


class MovedOut(BaseModel):
    """An alert the decision moved."""

    alert_id: str
    from_status: Status = Field(alias="from")
    to: Status

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class SkippedOut(BaseModel):
    """An alert the decision left as it was, and why."""

    alert_id: str
    reason: str = Field(examples=["cannot 'confirm_fraud' an alert that is 'dismissed'"])


class CaseConsequencesOut(BaseModel):
    """What the decision changed beyond the alerts."""

    listed: list[str] = Field(
        default_factory=list, description="Suspect accounts now on the account watchlist"
    )
    unlisted: list[str] = Field(
        default_factory=list, description="Suspect accounts taken off the watchlist"
    )
    suppressed: list[str] = Field(
        default_factory=list, description="Rules (and `model`) suppressed for the suspects"
    )
    retro_alerts: int = Field(0, description="Past transfers of newly listed accounts flagged")
    withdrawn_alerts: int = Field(
        0, description="`restore`: retro-hunt alerts of lifted listings, dismissed with them"
    )


class CaseActionOut(BaseModel):
    """The case after the decision, each alert moved (one history entry each), each alert
    left as it was, and the consequences."""

    case: CaseOut
    moved: list[MovedOut]
    skipped: list[SkippedOut]
    consequences: CaseConsequencesOut
