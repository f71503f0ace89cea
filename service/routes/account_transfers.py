"""An account's recent transfers in or out, read from its windowed state: the recent activity
the risk view is computed on (about 30 days, at most `window_cap` per direction), not a full
statement."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from models.watchlist import iso_ms
from service.auth import Caller
from service.console_schemas import AccountTransferOut, AccountTransferPage
from service.deps import StateDep, require
from service.errors import KEYED
from service.params import cursor_offset, offset_cursor

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], responses=KEYED)
Investigator = Annotated[Caller, Depends(require("investigator"))]


@router.get("/{account_id:path}/transfers", summary="Recent transfers of an account",
            response_model=AccountTransferPage)  # fmt: skip
def account_transfers(
    state: StateDep,
    _: Investigator,
    account_id: Annotated[str, Path(min_length=1, max_length=64)],
    direction: Literal["in", "out"] = "out",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AccountTransferPage:
    """Transfers the account made (`out`, counterparty = payee) or received (`in`,
    counterparty = payer), newest event time first, paged by `cursor`."""
    start = cursor_offset(cursor)
    edges, more = state.recent_transfers(account_id, direction, start, limit)
    items = [
        AccountTransferOut(
            transfer_id=edge.transfer_id,
            direction=direction,
            # Out: the account paid the counterparty; in: the counterparty paid the account.
            counterparty=edge.dst if direction == "out" else edge.src,
            amount=f"{Decimal(edge.amount_minor) / 100:.2f}",
            ts=iso_ms(edge.ts_ms) or "",
        )
        for edge in edges
    ]
    next_cursor = offset_cursor(start + limit) if more else None
    return AccountTransferPage(items=items, next_cursor=next_cursor)
