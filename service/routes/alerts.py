"""The alert queue: list with filters and cursor paging, one alert by id, and the workflow
(actions and their history)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import ValidationError

from models.alerts import rfc3339_now
from models.workflow import MOVES, Actor, FourEyesRefused, MoveRefused
from service.auth import Caller
from service.deps import AlertStoreDep, DisclosureDep, SettingsDep, require
from service.errors import KEYED, Conflict, Forbidden, InvalidParameter, NotFound, error_responses
from service.feedback import Feedback
from service.params import cursor_offset, offset_cursor, timestamp_ms
from service.schemas import (
    ActorOut,
    AlertActionIn,
    AlertActionOut,
    AlertOut,
    AlertPage,
    ConsequencesOut,
    HistoryEntryOut,
    HistoryPage,
)
from streams.state.alert_scan import BadCursor
from streams.state.alert_store import AlertFilter, AlertMissing

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=KEYED)
Reader = Annotated[Caller, Depends(require("investigator", "analyst"))]
Investigator = Annotated[Caller, Depends(require("investigator"))]
ALERT_ID = r"^al_[0-9a-f]{24}$"


@router.get("", summary="List alerts, newest first", response_model=AlertPage)
def list_alerts(
    store: AlertStoreDep,
    settings: SettingsDep,
    _: Reader,
    account: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    severity: Literal["low", "medium", "high", "critical"] | None = None,
    rule: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    status: Literal["open", "escalated", "confirmed", "appealed", "dismissed"] | None = None,
    since: Annotated[datetime | None, Query(description="event time, RFC 3339")] = None,
    until: Annotated[datetime | None, Query(description="event time, RFC 3339")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AlertPage:
    """Alerts matching every given filter, newest event time first, paged by `cursor`.

    One request examines at most `FRAUDWATCH_SCAN_BUDGET` index entries: with a rare
    combination of filters a page may hold fewer than `limit` alerts, even none, and still
    carry a `next_cursor`; follow it until it is null."""
    filters = AlertFilter(
        account=account,
        severity=severity,
        rule=rule,
        status=status,
        since_ms=timestamp_ms(since, "since"),
        until_ms=timestamp_ms(until, "until"),
    )
    try:
        items, next_cursor = store.list(filters, limit, cursor, settings.scan_budget)
    except BadCursor as error:
        raise InvalidParameter("cursor", str(error)) from None
    return AlertPage(items=[AlertOut.of(a) for a in items], next_cursor=next_cursor)


@router.get("/{alert_id}", summary="One alert", response_model=AlertOut,
            responses=error_responses(404, e404="No such alert"))  # fmt: skip
def get_alert(
    store: AlertStoreDep,
    _: Reader,
    alert_id: Annotated[str, Path(pattern=ALERT_ID)],
) -> AlertOut:
    """The alert with this id, or 404 (also for one stored in a shape this version cannot
    show, which the API log reports)."""
    alert = store.get(alert_id)
    if alert is None:
        raise NotFound(f"no readable alert {alert_id}")
    return AlertOut.of(alert)


@router.post(
    "/{alert_id}/actions",
    summary="Record a decision on an alert",
    response_model=AlertActionOut,
    responses=error_responses(
        403, 404, 409,
        e403="The key's role may not act, or the four-eyes rule forbids it this action",
        e404="No such alert", e409="The action is not allowed in the alert's status",
    ),
)  # fmt: skip
def act_on_alert(
    request: Request,
    store: AlertStoreDep,
    settings: SettingsDep,
    caller: Investigator,
    disclosure: DisclosureDep,
    alert_id: Annotated[str, Path(pattern=ALERT_ID)],
    body: AlertActionIn,
) -> AlertActionOut:
    """Move the alert through the workflow: `escalate` (open → escalated), `confirm_fraud`
    (open | escalated | appealed → confirmed), `dismiss` (open | escalated → dismissed),
    `appeal` (confirmed → appealed), `restore` (appealed → dismissed). Anything else is 409
    with the reason and the allowed actions. Who, when and the note go into the history.
    Under the four-eyes rule (`FRAUDWATCH_FOUR_EYES`, on in prod) the key that confirmed or
    appealed the alert may not restore it: 403 naming the rule.

    What the decision changes next is in `consequences`: `confirm_fraud` puts the suspect
    account on the account watchlist (and flags its past transfers), `restore` takes that
    listing off (and dismisses the undecided alerts its retro-hunt raised), `dismiss`
    suppresses the alert's pattern for the suspect account (never a watchlist's)."""
    actor = Actor(caller.key_id, caller.name, caller.role)
    at = rfc3339_now()
    if store.get(alert_id) is None:
        raise NotFound(f"no readable alert {alert_id}")
    try:
        moved = store.apply(
            alert_id, body.action, actor, body.note, at, four_eyes=settings.four_eyes_rule
        )
    except AlertMissing:
        raise NotFound(f"no alert {alert_id}") from None
    except MoveRefused as refused:
        raise Conflict(str(refused)) from None
    except FourEyesRefused as refused:
        raise Forbidden(str(refused)) from None
    feedback: Feedback = request.app.state.feedback
    target = MOVES[body.action].target
    done = feedback.after_move(alert_id, body.action, target, moved.number)
    for change in done.watchlist_changes(f"{body.action} on alert {alert_id}"):
        disclosure.audit(change)
    if done.listed or done.unlisted:
        # This process screens by the new list at once; the others within a refresh.
        request.app.state.watchlists.current(force=True)
    alert = store.get(alert_id)
    if alert is None:
        raise NotFound(f"no readable alert {alert_id}")
    entry = HistoryEntryOut(
        action=body.action,
        from_status=moved.source,
        to=MOVES[body.action].target,
        by=ActorOut(key_id=actor.key_id, name=actor.name, role=actor.role),
        at=at,
        note=body.note,
    )
    consequences = ConsequencesOut(
        listed=done.listed, unlisted=done.unlisted, suppressed=list(done.suppressed),
        retro_alerts=done.retro_alerts, withdrawn_alerts=done.withdrawn_alerts,
    )  # fmt: skip
    return AlertActionOut(alert=AlertOut.of(alert), entry=entry, consequences=consequences)


@router.get("/{alert_id}/history", summary="The decisions taken on an alert",
            response_model=HistoryPage,
            responses=error_responses(404, e404="No such alert"))  # fmt: skip
def alert_history(
    store: AlertStoreDep,
    _: Reader,
    alert_id: Annotated[str, Path(pattern=ALERT_ID)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HistoryPage:
    """Every action taken on the alert, oldest first: action, from, to, by, at, note."""
    if store.get(alert_id) is None:
        raise NotFound(f"no alert {alert_id}")
    start = cursor_offset(cursor)
    rows = store.history(alert_id, start, limit + 1)
    more = len(rows) > limit
    return HistoryPage(
        items=[entry for row in rows[:limit] if (entry := _history_entry(row)) is not None],
        next_cursor=offset_cursor(start + limit) if more else None,
    )


def _history_entry(row: dict[str, object]) -> HistoryEntryOut | None:
    """A stored workflow entry as the API shows it; one of another shape is left out."""
    try:
        return HistoryEntryOut.model_validate(row)
    except ValidationError:
        return None
