"""Pre-transfer screening: would this transfer alert, and how risky is its payee? Read-only."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from models.account_risk import without_listing_text
from models.events import InvalidEvent, Transfer, parse_transfer
from models.watchlist import now_ms
from service.auth import Caller
from service.batcher import Overloaded, RequestBatcher
from service.deps import require
from service.errors import KEYED, InvalidParameter, Unavailable, error_responses
from service.investigation_schemas import PayeeRiskOut, ScreenOut, ScreenRequest, WarningOut
from service.schemas import ModelOut, ReasonOut, RiskReasonOut
from service.screening import Screened
from streams.batch import DUPLICATE_TRANSFER_ID, duplicate_reason

router = APIRouter(prefix="/v1", tags=["screening"], responses=KEYED)
Screener = Annotated[Caller, Depends(require("bank", "investigator"))]
_FIELD = re.compile(r"`\$\.([A-Za-z_]+)`|field `([A-Za-z_]+)`|^`([A-Za-z_]+)`")

_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": ScreenRequest.model_json_schema(),
            "example": {
                "transfer_id": "pay-20260302-000123",
                "ts": "2026-03-02T09:41:07.120+08:00",
                "src_account": "6222020000000001",
                "dst_account": "6222020000000777",
                "amount": "49900.00",
                "currency": "CNY",
                "channel": "mobile",
                "device_id": "d-7f3a9c",
            },
        }
    },
}


_PAYEE: dict[str, Any] = {"account_id": "6222020000000777", "risk_level": "none", "reasons": []}
_ALLOW: dict[str, Any] = {
    "transfer_id": "pay-20260302-000124", "decision": "allow", "warning": None,
    "would_alert": False, "score": 0.0123, "severity": None, "reasons": [],
    "model": {"name": "fraudwatch-gbt", "version": "7-3b9f0c2a", "score": 0.0154},
    "payee_risk": _PAYEE, "already_processed": False,
}  # fmt: skip
_BLOCK: dict[str, Any] = {
    "transfer_id": "pay-20260302-000123", "decision": "block",
    "warning": {"code": "payee_reported",
                "text": "The account you are paying has been reported for fraud. Do not pay it. "
                        "If someone asked you to, it is a scam: call the 96110 anti-fraud line "
                        "if you need help."},
    "would_alert": True, "score": 0.85, "severity": "high",
    "reasons": [{"rule": "watchlist_hit", "title": "Payee on a watchlist",
                 "evidence": {"watchlist_hits": 1, "is_first_time_payee": 1,
                              "amount_minor": 4990000},
                 "version": 3, "score": 0.85, "suspect": "payee",
                 "summary": "the payee is on a watchlist (1 of this transfer's parties are "
                            "listed)"}],
    "model": {"name": "fraudwatch-gbt", "version": "7-3b9f0c2a", "score": 0.2211},
    "payee_risk": {"account_id": "6222020000000777", "risk_level": "critical",
                   "reasons": [{"code": "watchlisted", "level": "critical",
                                "text": "on a watchlist: investigation: confirmed fraud in "
                                        "alert al_3f1c9a0b7d2e4f5a6b7c8d9e"}]},
    "already_processed": False,
}  # fmt: skip
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "application/json": {
                "examples": {
                    "allow": {"summary": "An ordinary payment", "value": _ALLOW},
                    "block": {"summary": "A payment to a confirmed mule", "value": _BLOCK},
                }
            }
        }
    },
    **error_responses(422, e422="A field breaks the transfer contract (it names the field)"),
}


def _field_of(invalid: InvalidEvent) -> str:
    match = _FIELD.search(invalid.reason)
    return next((g for g in match.groups() if g), "body") if match else "body"


@router.post(
    "/screen",
    summary="Screen a prospective transfer before it is made",
    response_model=ScreenOut,
    openapi_extra={"requestBody": _BODY},
    responses=_RESPONSES,
)
async def screen(request: Request, caller: Screener) -> ScreenOut:
    """Score the transfer on the state as it stands, as the worker would, without storing
    anything; answer what the bank should do (`decision`: allow, warn, hold or block, by the
    screening policy) and what to tell the customer (`warning`), with the payee's risk. A
    transfer already processed gets its stored verdict.

    Concurrent requests are screened together (one dry run, one model call per batch).
    A transfer the worker would dead-letter is 422 with the worker's `reason_code`, e.g.
    `ts_out_of_range` for a time before 2000 or more than a day ahead (configurable)."""
    try:
        app_state = request.app.state
        transfer = parse_transfer(await request.body(), app_state.rates, app_state.local_zone)
        app_state.settings.event_time_bounds().check(transfer.ts_ms, now_ms())
    except InvalidEvent as invalid:
        raise InvalidParameter(
            _field_of(invalid), invalid.reason, reason_code=invalid.code
        ) from None
    batcher: RequestBatcher[Transfer, Screened] = request.app.state.screening
    try:
        screened = await batcher.submit(transfer)
    except Overloaded as overloaded:
        raise Unavailable(
            f"screening is behind ({overloaded}; FRAUDWATCH_SCREEN_MAX_WAITING): retry in a "
            "second, or decide by your own fallback", headers={"Retry-After": "1"},
        ) from None
    if screened.reused_id:
        raise InvalidParameter("transfer_id", duplicate_reason(transfer.transfer_id),
                               reason_code=DUPLICATE_TRANSFER_ID)  # fmt: skip
    verdict, payee, outcome = screened.verdict, screened.payee, screened.outcome
    payee_reasons = payee.reasons
    if caller.role == "bank":  # a listing's free text is not the bank's to see
        source = payee.listing.source if payee.listing else None
        payee_reasons = without_listing_text(payee_reasons, source)
    warning = outcome.warning
    return ScreenOut(
        transfer_id=transfer.transfer_id,
        decision=outcome.decision,
        warning=None if warning is None else WarningOut(code=warning.code, text=warning.text),
        would_alert=verdict.severity is not None,
        score=verdict.score,
        severity=verdict.severity,  # type: ignore[arg-type]
        reasons=[ReasonOut.model_validate(r, from_attributes=True) for r in verdict.reasons],
        model=None
        if verdict.model is None
        else ModelOut(
            name=verdict.model.name, version=verdict.model.version, score=verdict.model.score
        ),
        payee_risk=PayeeRiskOut(
            account_id=transfer.dst_account,
            risk_level=payee.level,  # type: ignore[arg-type]
            reasons=[RiskReasonOut(code=r.code, text=r.text, level=r.level) for r in payee_reasons],
        ),
        already_processed=screened.already_processed,
    )
