"""How many alerts are in each status: the queue's header. Its own router, included before
`/v1/alerts/{alert_id}` so that `counts` is not read as an alert id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.auth import Caller
from service.console_schemas import AlertCountsOut
from service.deps import AlertStoreDep, require
from service.errors import KEYED

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=KEYED)
Reader = Annotated[Caller, Depends(require("investigator", "analyst"))]


@router.get("/counts", summary="Alerts per status", response_model=AlertCountsOut)
def alert_counts(alerts: AlertStoreDep, _: Reader) -> AlertCountsOut:
    """The number of alerts in each workflow status (one round trip, O(1) per status)."""
    counts = alerts.status_counts()
    return AlertCountsOut(counts=counts, total=sum(counts.values()))  # type: ignore[arg-type]
