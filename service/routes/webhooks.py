"""Signed export: webhooks a bank's systems subscribe to alert events with (admin only)."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from models.watchlist import iso_ms, now_ms
from models.webhooks import SIGNATURE_HEADER, webhook_secret
from service.audit import Disclosure
from service.auth import Caller
from service.deps import DisclosureDep, require
from service.errors import KEYED, InvalidParameter, NotFound, error_responses
from service.params import cursor_offset, offset_cursor
from service.webhook_targets import target_problem
from streams.state.webhooks import Webhook, WebhookStore

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=KEYED)
Admin = Annotated[Caller, Depends(require())]
WEBHOOK_ID = r"^wh_[0-9a-f]{16}$"
EventName = Literal["alert.created", "alert.updated"]


class WebhookIn(BaseModel):
    """Where to POST which alert events."""

    url: str = Field(max_length=2000, examples=["https://cases.bank.example/fraudwatch"])
    events: list[EventName] = Field(min_length=1, examples=[["alert.created", "alert.updated"]])


class WebhookOut(BaseModel):
    """A webhook subscription (its secret is never shown again after creation)."""

    webhook_id: str = Field(examples=["wh_4f2a9c0d1e3b5a6c"])
    url: str
    events: list[EventName]
    created_at: str | None
    delivered: int = Field(0, description="Deliveries the receiver accepted (2xx)")
    retried: int = Field(0, description="Failed attempts queued again")
    failed: int = Field(0, description="Deliveries given up after the retry period")


class NewWebhookOut(WebhookOut):
    """A webhook just created: `secret` is shown this once only."""

    secret: str = Field(
        description=f"Signs every delivery: `{SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex "
        'HMAC-SHA256(secret, "<t>.<raw body>")>`. Shown once; keep it in your secret store.',
        examples=["whsec_Q2hhbmdlIG1lIQ..."],
    )


class WebhookPage(BaseModel):
    """Webhooks, oldest first."""

    items: list[WebhookOut]
    next_cursor: str | None


class DeliveryOut(BaseModel):
    """One delivery attempt."""

    delivery_id: str = Field(examples=["dl_0d1e3b5a6c4f2a9c0d1e3b5a"])
    type: EventName
    alert_id: str
    attempt: int = Field(ge=1)
    at: str | None
    outcome: Literal["delivered", "retrying", "failed"]
    status_code: int | None = Field(description="The receiver's answer; null if none came")
    error: str | None = Field(description="Why no answer came (timeout, refused connection)")
    next_attempt_at: str | None = None


class DeliveryPage(BaseModel):
    """A webhook's delivery log, newest first (the latest 200 attempts)."""

    items: list[DeliveryOut]
    next_cursor: str | None


def _store(request: Request) -> WebhookStore:
    store: WebhookStore = request.app.state.webhooks
    return store


def _out(store: WebhookStore, hook: Webhook) -> WebhookOut:
    counts = store.counts(hook.webhook_id)
    return WebhookOut(
        webhook_id=hook.webhook_id, url=hook.url, events=list(hook.events),  # type: ignore[arg-type]
        created_at=iso_ms(hook.created_at_ms), delivered=counts.get("delivered", 0),
        retried=counts.get("retried", 0), failed=counts.get("failed", 0),
    )  # fmt: skip


def _audited(disclosure: Disclosure, what: str) -> None:
    disclosure.audit(f"webhooks: {what}")


@router.post("", summary="Subscribe a URL to alert events", response_model=NewWebhookOut,
             status_code=201)  # fmt: skip
def create_webhook(
    request: Request, _: Admin, disclosure: DisclosureDep, body: WebhookIn
) -> NewWebhookOut:
    """Every alert event of the kinds named (`alert.created`: a new alert; `alert.updated`:
    an alert moved through the workflow, with its status now) is POSTed to `url` as
    `{"type", "alert"}`, signed with the secret answered here once. A delivery the receiver
    does not answer with 2xx is retried with a doubling pause for 24 hours, then given up;
    each attempt is in the webhook's delivery log. Deliveries may arrive out of order and,
    after a crash, twice: `X-Fraudwatch-Delivery` names each one, and the alert's `status`
    is always its current one."""
    settings = request.app.state.settings
    problem = target_problem(body.url, settings.webhook_allow_loopback, settings.env == "prod")
    if problem is not None:
        raise InvalidParameter("url", problem)
    store = _store(request)
    webhook_id = "wh_" + secrets.token_hex(8)
    hook = Webhook(webhook_id, body.url, tuple(dict.fromkeys(body.events)),
                   secrets.token_urlsafe(24), now_ms(), disclosure.caller.key_id)  # fmt: skip
    store.add(hook)
    _audited(disclosure, f"{webhook_id} created")
    secret = webhook_secret(
        request.app.state.settings.pii_key.get_secret_value(), webhook_id, hook.nonce
    )
    return NewWebhookOut(**_out(store, hook).model_dump(), secret=secret)


@router.get("", summary="List webhooks", response_model=WebhookPage)
def list_webhooks(
    request: Request,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> WebhookPage:
    """Every subscription, oldest first, with its delivery counts (no secrets)."""
    store = _store(request)
    start = cursor_offset(cursor)
    hooks = store.all()
    page = hooks[start : start + limit]
    more = start + limit < len(hooks)
    return WebhookPage(items=[_out(store, h) for h in page],
                       next_cursor=offset_cursor(start + limit) if more else None)  # fmt: skip


@router.get("/{webhook_id}", summary="One webhook", response_model=WebhookOut,
            responses=error_responses(404, e404="No such webhook"))  # fmt: skip
def get_webhook(
    request: Request, _: Admin, webhook_id: Annotated[str, Path(pattern=WEBHOOK_ID)]
) -> WebhookOut:
    """The subscription and its delivery counts."""
    store = _store(request)
    hook = store.get(webhook_id)
    if hook is None:
        raise NotFound(f"no webhook {webhook_id}")
    return _out(store, hook)


@router.get("/{webhook_id}/deliveries", summary="A webhook's delivery log",
            response_model=DeliveryPage,
            responses=error_responses(404, e404="No such webhook"))  # fmt: skip
def webhook_deliveries(
    request: Request,
    _: Admin,
    webhook_id: Annotated[str, Path(pattern=WEBHOOK_ID)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DeliveryPage:
    """Delivery attempts, newest first: when, the receiver's status code or the error, and
    whether it was delivered, will be retried (and when), or was given up."""
    store = _store(request)
    if store.get(webhook_id) is None:
        raise NotFound(f"no webhook {webhook_id}")
    start = cursor_offset(cursor)
    rows = store.history(webhook_id, start, limit + 1)
    items = []
    for row in rows[:limit]:
        try:
            items.append(DeliveryOut(
                delivery_id=row["delivery_id"], type=row["type"], alert_id=row["alert_id"],
                attempt=row["attempt"], at=iso_ms(row.get("at_ms")), outcome=row["outcome"],
                status_code=row.get("status_code"), error=row.get("error"),
                next_attempt_at=iso_ms(row.get("next_attempt_ms")),
            ))  # fmt: skip
        except (KeyError, ValueError):
            continue  # an entry of another shape
    more = len(rows) > limit
    return DeliveryPage(items=items, next_cursor=offset_cursor(start + limit) if more else None)


@router.delete("/{webhook_id}", summary="Unsubscribe a webhook", status_code=204,
               responses=error_responses(404, e404="No such webhook"))  # fmt: skip
def delete_webhook(
    request: Request,
    _: Admin,
    disclosure: DisclosureDep,
    webhook_id: Annotated[str, Path(pattern=WEBHOOK_ID)],
) -> Response:
    """Stop deliveries to the webhook (those queued are dropped); 404 if there is none."""
    if not _store(request).remove(webhook_id):
        raise NotFound(f"no webhook {webhook_id}")
    _audited(disclosure, f"{webhook_id} deleted")
    return Response(status_code=204)
