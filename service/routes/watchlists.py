"""Watchlists from outside sources: list, add or replace, remove (admin only)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from models.watchlist import (
    InvalidEntry,
    WatchlistEntry,
    check_value,
    entry_key,
    iso_ms,
    make_entry,
    now_ms,
    parse_expiry,
)
from service.auth import Caller
from service.deps import DisclosureDep, require
from service.errors import KEYED, InvalidParameter, NotFound, error_responses
from service.feedback import RetroHunt
from service.investigation_schemas import (
    WatchlistEntryIn,
    WatchlistEntryOut,
    WatchlistKind,
    WatchlistPage,
    WatchlistPutOut,
)
from service.lists import WatchlistViewDep
from streams.state.watchlists import BadCursor

router = APIRouter(prefix="/v1/watchlists", tags=["watchlists"], responses=KEYED)
Admin = Annotated[Caller, Depends(require())]
# Devices, phones and IPs are personal data: every response that carries them is audited.
# Every change to any list is audited too: a listing decides whether payments are blocked.
PERSONAL_KINDS = ("device", "phone", "ip")


def _out(entry: WatchlistEntry, at_ms: int) -> WatchlistEntryOut:
    return WatchlistEntryOut(
        kind=entry.kind,
        value=entry.value,
        source=entry.source,
        reason=entry.reason,
        added_at=iso_ms(entry.added_at_ms) or "",
        expires_at=iso_ms(entry.expires_at_ms),
        active=entry.active_at(at_ms),
    )


@router.get("/{kind}", summary="List one watchlist", response_model=WatchlistPage)
def list_entries(
    lists: WatchlistViewDep,
    _: Admin,
    disclosure: DisclosureDep,
    kind: WatchlistKind,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> WatchlistPage:
    """Entries of the list in value-key order (expired ones included, `active` false)."""
    try:
        items, next_cursor = lists.store.page(kind, limit, cursor)
    except BadCursor as error:
        raise InvalidParameter("cursor", str(error)) from None
    at = now_ms()
    if items and kind in PERSONAL_KINDS:
        disclosure.audit(f"watchlist {kind}: {len(items)} entries")
    return WatchlistPage(items=[_out(e, at) for e in items], next_cursor=next_cursor)


@router.post(
    "/{kind}",
    summary="Add or replace a watchlist entry",
    response_model=WatchlistPutOut,
    status_code=201,
    responses={200: {"model": WatchlistPutOut, "description": "an entry was replaced"}},
)
def put_entry(
    request: Request,
    response: Response,
    lists: WatchlistViewDep,
    _: Admin,
    disclosure: DisclosureDep,
    kind: WatchlistKind,
    body: WatchlistEntryIn,
) -> WatchlistPutOut:
    """List the value (201), or replace its entry (200); workers see it within a second.
    A listed account's past transfers that state still holds are flagged at once as
    `watchlist_retro` alerts (`retro_alerts` says how many were new)."""
    at = now_ms()
    try:
        entry = make_entry(
            kind,
            body.value,
            body.source,
            body.reason,
            parse_expiry(body.expires_at),
            now_ms=at,
            pseudonymise=request.app.state.hasher,
        )
    except InvalidEntry as bad:
        raise InvalidParameter(bad.field, bad.reason) from None
    (new,) = lists.store.put([entry])
    lists.current(force=True)
    if not new:
        response.status_code = 200
    # Which account (phones, devices and IPs are personal data: never in the audit log).
    which = f" ({entry.value})" if kind == "account" else ""
    disclosure.audit(f"watchlist {kind}: entry {'added' if new else 'replaced'}{which}")
    hunt: RetroHunt = request.app.state.retro_hunt
    retro = hunt.hunt([entry])
    return WatchlistPutOut(**_out(entry, at).model_dump(), retro_alerts=retro)


@router.delete("/{kind}/{value:path}", summary="Remove a watchlist entry", status_code=204,
               responses=error_responses(404, e404="The value is not on the list"))  # fmt: skip
def delete_entry(
    request: Request,
    lists: WatchlistViewDep,
    _: Admin,
    disclosure: DisclosureDep,
    kind: WatchlistKind,
    value: Annotated[str, Path(min_length=1, max_length=256)],
) -> Response:
    """Remove the value from the list (404 if it is not on it); audited like every change.
    A phone or IP matches however it is written (`+86 138 0013 8000`, `13800138000`); a
    value that could not be listed (not an IP, not a phone number) is 422."""
    try:
        check_value(kind, value)
    except InvalidEntry as bad:
        raise InvalidParameter(bad.field, bad.reason) from None
    if not lists.store.delete(kind, entry_key(kind, value, request.app.state.hasher)):
        shown = value if kind not in PERSONAL_KINDS else "the value"
        raise NotFound(f"{shown[:64]!r} is not on the {kind} list")
    lists.current(force=True)
    if kind in PERSONAL_KINDS:  # the path holds the value itself: not in the audit log
        disclosure = replace(disclosure, path=f"/v1/watchlists/{kind}/{{value}}")
    disclosure.audit(f"watchlist {kind}: entry removed" + (f" ({value})" if kind == "account"
                                                          else ""))  # fmt: skip
    return Response(status_code=204)
