"""An account's recent transfers in or out, read from its windowed state (the `in` / `out`
sorted sets, members `tid|counterparty|amount_minor` scored by event time).

State keeps what the windows need (about 30 days, at most `window_cap` per direction), so
this is the recent activity the risk view is computed on, not a full statement."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from models.watchlist import iso_ms
from service.auth import Caller
from service.console_schemas import AccountTransferOut, AccountTransferPage
from service.deps import RedisDep, require
from service.params import cursor_offset, offset_cursor
from streams.state import keys
from streams.state.trace_graph import window_edge

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
Investigator = Annotated[Caller, Depends(require("investigator"))]


@router.get("/{account_id}/transfers", summary="Recent transfers of an account",
            response_model=AccountTransferPage)  # fmt: skip
def account_transfers(
    client: RedisDep,
    _: Investigator,
    account_id: Annotated[str, Path(min_length=1, max_length=64)],
    direction: Literal["in", "out"] = "out",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AccountTransferPage:
    """Transfers the account made (`out`, counterparty = payee) or received (`in`,
    counterparty = payer), newest event time first, paged by `cursor`."""
    start = cursor_offset(cursor)
    key = keys.account_keys(account_id)[direction]
    rows: list[tuple[bytes, float]] = client.zrevrange(  # type: ignore[assignment]
        key, start, start + limit, withscores=True
    )
    items = []
    for member, score in rows[:limit]:
        # Down: the account paid the counterparty; up: the counterparty paid the account.
        edge = window_edge(account_id, member, score, "down" if direction == "out" else "up")
        if edge is None:
            continue  # an entry of a shape this version does not write
        items.append(
            AccountTransferOut(
                transfer_id=edge.transfer_id,
                direction=direction,
                counterparty=edge.dst if direction == "out" else edge.src,
                amount=f"{Decimal(edge.amount_minor) / 100:.2f}",
                ts=iso_ms(edge.ts_ms) or "",
            )
        )
    next_cursor = offset_cursor(start + limit) if len(rows) > limit else None
    return AccountTransferPage(items=items, next_cursor=next_cursor)
