"""API keys (admin only): create, list, revoke. A key is shown once, at creation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from models.alerts import rfc3339_now
from service.auth import Authenticator, Caller
from service.deps import AuditLogDep, KeyStoreDep, require
from service.errors import KEYED, NotFound, error_responses
from service.keys_store import KeyRecord
from service.params import cursor_offset, offset_cursor
from service.schemas import KeyIn, KeyOut, KeyPage, NewKeyOut

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=KEYED)
Admin = Annotated[Caller, Depends(require())]
KEY_ID = r"^key_[0-9a-f]{12}$"


def _out(record: KeyRecord) -> KeyOut:
    return KeyOut(id=record.key_id, name=record.name, role=record.role,
                  created_at=record.created_at, revoked_at=record.revoked_at)  # fmt: skip


@router.get("", summary="List API keys", response_model=KeyPage)
def list_keys(
    store: KeyStoreDep,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> KeyPage:
    """Every key made with `fraudwatch keys` or this route (no secrets), oldest first.
    The bootstrap keys of FRAUDWATCH_API_KEYS are configuration and not listed."""
    start = cursor_offset(cursor)
    records = store.list()
    page = records[start : start + limit]
    more = start + limit < len(records)
    return KeyPage(
        items=[_out(r) for r in page], next_cursor=offset_cursor(start + limit) if more else None
    )


@router.post("", summary="Create an API key", response_model=NewKeyOut, status_code=201)
def create_key(
    request: Request, store: KeyStoreDep, caller: Admin, audit: AuditLogDep, body: KeyIn
) -> NewKeyOut:
    """A new key with the given role. The response is the only time the key is shown: it is
    stored as a sha256 digest."""
    secret, record = store.create(body.role, body.name, rfc3339_now())
    audit.append(caller, request.method, request.url.path, f"key {record.key_id} created")
    return NewKeyOut(key=secret, **_out(record).model_dump())


@router.delete("/{key_id}", summary="Revoke an API key", response_model=KeyOut,
               responses=error_responses(404, e404="No such key"))  # fmt: skip
def revoke_key(
    request: Request,
    store: KeyStoreDep,
    caller: Admin,
    audit: AuditLogDep,
    key_id: Annotated[str, Path(pattern=KEY_ID)],
) -> KeyOut:
    """Revoke the key: refused at once by this API process, and by every replica within the
    key cache time (FRAUDWATCH_KEY_CACHE_SECONDS, default 5 s). Revoking twice is harmless."""
    record = store.revoke(key_id, rfc3339_now())
    if record is None:
        raise NotFound(f"no key {key_id}")
    authenticator: Authenticator = request.app.state.authenticator
    authenticator.cache.forget(key_id)
    audit.append(caller, request.method, request.url.path, f"key {key_id} revoked")
    return _out(record)
