"""The alert queue: list with filters and cursor paging, and one alert by id."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from service.auth import Caller
from service.deps import AlertStoreDep, require
from service.errors import InvalidParameter, NotFound
from service.schemas import AlertOut, AlertPage
from streams.state.alert_store import AlertFilter, BadCursor

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
Reader = Annotated[Caller, Depends(require("investigator", "analyst"))]
ALERT_ID = r"^al_[0-9a-f]{24}$"


def _ms(value: datetime | None, name: str) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidParameter(name, f"`{name}` needs a UTC offset, e.g. 2026-03-01T00:00:00Z")
    return int(value.timestamp() * 1000)


@router.get("", summary="List alerts, newest first", response_model=AlertPage)
def list_alerts(
    store: AlertStoreDep,
    _: Reader,
    account: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    severity: Literal["low", "medium", "high", "critical"] | None = None,
    rule: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    status: Literal["open", "escalated", "confirmed", "appealed", "dismissed"] | None = None,
    since: Annotated[datetime | None, Query(description="event time, RFC 3339")] = None,
    until: Annotated[datetime | None, Query(description="event time, RFC 3339")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AlertPage:
    """Alerts matching every given filter, newest event time first, paged by `cursor`."""
    filters = AlertFilter(
        account=account,
        severity=severity,
        rule=rule,
        status=status,
        since_ms=_ms(since, "since"),
        until_ms=_ms(until, "until"),
    )
    try:
        items, next_cursor = store.list(filters, limit, cursor)
    except BadCursor as error:
        raise InvalidParameter("cursor", str(error)) from None
    return AlertPage(items=[AlertOut.of(a) for a in items], next_cursor=next_cursor)


@router.get("/{alert_id}", summary="One alert", response_model=AlertOut)
def get_alert(
    store: AlertStoreDep,
    _: Reader,
    alert_id: Annotated[str, Path(pattern=ALERT_ID)],
) -> AlertOut:
    """The alert with this id, or 404."""
    alert = store.get(alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    return AlertOut.of(alert)
