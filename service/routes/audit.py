"""The audit log of access to personal data and of admin actions (admin only)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.audit import BadAuditCursor
from service.auth import Caller
from service.deps import AuditLogDep, SettingsDep, require
from service.errors import KEYED, InvalidParameter
from service.params import timestamp_ms
from service.schemas import AuditEntryOut, AuditPage

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=KEYED)
Admin = Annotated[Caller, Depends(require())]


@router.get("", summary="Who saw personal data, and when", response_model=AuditPage)
def read_audit(
    log: AuditLogDep,
    settings: SettingsDep,
    _: Admin,
    since: Annotated[datetime | None, Query(description="RFC 3339, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="RFC 3339, inclusive")] = None,
    key_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AuditPage:
    """Audit entries newest first: who (key id, name, role), what (method, path, resource),
    when. Entries never contain the personal data itself. A request examines at most
    `FRAUDWATCH_SCAN_BUDGET` entries: filtered by a rare key, a page may be short, even
    empty, with a `next_cursor` to go on; follow it until it is null."""
    try:
        items, next_cursor = log.query(
            timestamp_ms(since, "since"),
            timestamp_ms(until, "until"),
            key_id,
            limit,
            cursor,
            settings.scan_budget,
        )
    except BadAuditCursor as error:
        raise InvalidParameter("cursor", str(error)) from None
    return AuditPage(
        items=[AuditEntryOut(**asdict(entry)) for entry in items], next_cursor=next_cursor
    )
