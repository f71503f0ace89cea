"""Import watchlist entries from CSV over HTTP: the same parser and store as
`fraudwatch watchlist import`, every bad row reported by line (admin only).

Its own router, included before `/v1/watchlists/{kind}` so that `import` is not read as a
list kind."""

from __future__ import annotations

import codecs
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from models.watchlist import NotAWatchlistFile, UnreadableCsv, now_ms, parse_csv
from service.audit import Disclosure
from service.auth import Caller
from service.console_schemas import ImportProblemOut, WatchlistImportOut
from service.deps import DisclosureDep, require
from service.errors import KEYED, ApiError, error_responses
from service.feedback import RetroHunt
from service.investigation_schemas import WatchlistKind
from service.lists import WatchlistViewDep
from streams.state.watchlists import WatchlistView

router = APIRouter(prefix="/v1/watchlists", tags=["watchlists"], responses=KEYED)
Admin = Annotated[Caller, Depends(require())]
CSV_BODY = {
    "required": True,
    "content": {
        "text/csv": {
            "schema": {"type": "string"},
            "example": "kind,value,source,reason,expires_at\n"
            "account,6222020000000777,police notice 2026-0311,collection account,\n",
        }
    },
}


class BadFile(ApiError):
    """The uploaded file is not UTF-8 text, or not CSV that can be read."""

    status = 422
    code = "invalid_request"


@router.post(
    "/import",
    summary="Import watchlist entries from CSV",
    response_model=WatchlistImportOut,
    openapi_extra={"requestBody": CSV_BODY},
    responses=error_responses(
        413, 422,
        e413="Larger than FRAUDWATCH_MAX_IMPORT_BYTES (5 MiB)",
        e422="Not UTF-8, not readable as CSV, or a header without the required columns",
    ),
)
async def import_csv(
    request: Request,
    lists: WatchlistViewDep,
    _: Admin,
    disclosure: DisclosureDep,
    kind: Annotated[
        WatchlistKind | None, Query(description="the kind of every row; then `kind` may be omitted")
    ] = None,
) -> WatchlistImportOut:
    """A `text/csv` body with a header row `kind,value,source,reason,expires_at`
    (`expires_at` RFC 3339 with an offset, or empty for never; with `?kind=` the `kind`
    column may be left out). Good rows are imported (an existing entry of the same kind and
    value is replaced), each bad row is reported by its line number and skipped: the same
    rules as `fraudwatch watchlist import`. A file larger than `FRAUDWATCH_MAX_IMPORT_BYTES`
    is refused (413) as its bytes arrive, before the rest is read; one the CSV reader cannot
    go on with (e.g. a field over 128 KiB) is 422 naming the line, and nothing of it is
    imported, nor of one whose header lacks a required column. The imported accounts' past
    transfers that state still holds are flagged as `watchlist_retro` alerts
    (`retro_alerts`)."""
    # The body limit in front of the app stops the stream at the import's cap; the text is
    # decoded as it arrives, so a bad byte is reported without waiting for the rest.
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    parts: list[str] = []
    offset = 0
    try:
        async for chunk in request.stream():
            parts.append(decoder.decode(chunk))
            offset += len(chunk)
        parts.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError as error:
        where = f"{error.reason} at byte {offset + error.start}"
        raise BadFile(f"the file is not UTF-8 text ({where})") from None
    # Parsing and the Redis write block: off the event loop.
    return await run_in_threadpool(_import, request, lists, disclosure, "".join(parts), kind)


def _import(
    request: Request,
    lists: WatchlistView,
    disclosure: Disclosure,
    text: str,
    kind: str | None,
) -> WatchlistImportOut:
    try:
        entries, problems = parse_csv(
            text.splitlines(keepends=True),
            now_ms=now_ms(),
            pseudonymise=request.app.state.hasher,
            kind=kind,
        )
    except NotAWatchlistFile as error:
        raise BadFile(str(error)) from None
    except UnreadableCsv as error:
        raise BadFile(f"not readable as CSV at line {error.line}: {error.reason}") from None
    new = lists.store.put(entries)
    retro = 0
    if entries:
        lists.current(force=True)
        kinds = sorted({e.kind for e in entries})
        disclosure.audit(f"watchlist import: {len(entries)} entries ({', '.join(kinds)})")
        hunt: RetroHunt = request.app.state.retro_hunt
        retro = hunt.hunt(entries)
    return WatchlistImportOut(
        imported=len(entries),
        new=sum(new),
        replaced=len(entries) - sum(new),
        errors=[ImportProblemOut(line=p.line, reason=p.reason) for p in problems],
        retro_alerts=retro,
    )
