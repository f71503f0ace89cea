"""Follow the money from one transfer: where it went, or where it came from."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from models.trace import Edge, follow, parse_window_ms
from models.watchlist import iso_ms, now_ms
from service.auth import Caller
from service.deps import AlertStoreDep, StateDep, require
from service.errors import KEYED, InvalidParameter, NotFound, error_responses
from service.investigation_schemas import TraceNodeOut, TraceOut, TraceTransferOut
from service.lists import WatchlistViewDep

router = APIRouter(prefix="/v1/trace", tags=["trace"], responses=KEYED)
Investigator = Annotated[Caller, Depends(require("investigator"))]
TRANSFER_ID = r"^[A-Za-z0-9._:-]{1,64}$"


def _money(minor: int) -> str:
    return f"{Decimal(minor) / 100:.2f}"


def _transfer(edge: Edge) -> TraceTransferOut:
    return TraceTransferOut(
        transfer_id=edge.transfer_id,
        from_=edge.src,
        to=edge.dst,
        amount=_money(edge.amount_minor),
        ts=iso_ms(edge.ts_ms) or "",
    )


@router.get("/{transfer_id}", summary="Follow the money from a transfer", response_model=TraceOut,
            responses=error_responses(404, e404="No such transfer in the trace days"))  # fmt: skip
def trace(
    request: Request,
    state: StateDep,
    alerts: AlertStoreDep,
    lists: WatchlistViewDep,
    _: Investigator,
    transfer_id: Annotated[str, Path(pattern=TRANSFER_ID)],
    direction: Literal["down", "up"] = "down",
    hops: Annotated[int, Query(ge=1, le=6, description="layers of transfers after the root")] = 3,
    window: Annotated[
        str, Query(max_length=12, description="time span from the root: 30m, 72h, 3d (≤ 30d)")
    ] = "72h",
) -> TraceOut:
    """The flow graph of the transfer within `hops` layers and `window` of its time, each
    account with its alert count, worst unresolved alert level and watchlist status."""
    try:
        window_ms = parse_window_ms(window)
    except ValueError as error:
        raise InvalidParameter("window", str(error)) from None
    root = state.trace_root(transfer_id, request.app.state.rates)
    if root is None:
        days = request.app.state.settings.trace_ttl_days
        raise NotFound(f"no transfer {transfer_id} in the last {days} days (the trace keeps)")
    max_edges = request.app.state.settings.trace_max_edges
    graph = follow(root, direction, hops, window_ms, max_edges, state.trace_layers(direction))
    accounts = (n.account for n in graph.nodes)
    flags = state.node_flags(alerts, lists.current(), accounts, now_ms())
    return TraceOut(
        root=_transfer(graph.root),
        nodes=[
            TraceNodeOut(
                account=node.account,
                depth=node.depth,
                amount_in=_money(node.amount_in_minor),
                amount_out=_money(node.amount_out_minor),
                risk_level=flags[node.account].risk_level,  # type: ignore[arg-type]
                alert_count=flags[node.account].alert_count,
                watchlisted=flags[node.account].watchlisted,
            )
            for node in graph.nodes
        ],
        edges=[_transfer(edge) for edge in graph.edges],
        truncated=graph.truncated,
    )
