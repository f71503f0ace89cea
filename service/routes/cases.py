"""The case queue: cases by priority with filters and cursor paging, one case with its alerts,
accounts and money graph, and decisions taken on every alert of a case at once."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from models.alerts import rfc3339_now
from models.watchlist import now_ms
from models.workflow import MOVES, Actor
from service.auth import Caller
from service.case_schemas import (
    CaseAccountOut,
    CaseActionIn,
    CaseActionOut,
    CaseConsequencesOut,
    CaseDetailOut,
    CaseOut,
    CasePage,
    MoneyFlowOut,
    MovedOut,
    SkippedOut,
    money,
)
from service.deps import AlertStoreDep, DisclosureDep, RedisDep, SettingsDep, require
from service.errors import KEYED, Forbidden, InvalidParameter, NotFound, error_responses
from service.feedback import Feedback
from service.lists import WatchlistViewDep
from service.params import timestamp_ms
from service.schemas import AlertOut
from streams.state.alert_scan import BadCursor
from streams.state.case_store import CaseFilter, CaseReader

router = APIRouter(prefix="/v1/cases", tags=["cases"], responses=KEYED)
Reader = Annotated[Caller, Depends(require("investigator", "analyst"))]
Investigator = Annotated[Caller, Depends(require("investigator"))]
CASE_ID = r"^cs_[0-9a-f]{24}$"
DETAIL_ALERTS = 500
# The most alerts one decision on a case moves (a larger case is decided in parts, by alert).
ACTION_ALERTS = 10_000


def _reader(client: RedisDep) -> CaseReader:
    return CaseReader(client)


CaseReaderDep = Annotated[CaseReader, Depends(_reader)]


def _live(reader: CaseReader, case_id: str) -> str:
    live = reader.resolve(case_id)
    if live is None:
        raise NotFound(f"no case {case_id}")
    return live


@router.get("", summary="The case queue, highest priority first", response_model=CasePage)
def list_cases(
    reader: CaseReaderDep,
    settings: SettingsDep,
    _: Reader,
    status: Literal["open", "escalated", "confirmed", "appealed", "dismissed"] | None = None,
    severity: Literal["low", "medium", "high", "critical"] | None = None,
    account: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    since: Annotated[datetime | None, Query(description="events until at least, RFC 3339")] = None,
    until: Annotated[datetime | None, Query(description="events from at most, RFC 3339")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> CasePage:
    """Cases matching every given filter, highest priority first (money still moving first),
    paged by `cursor`. `account` lists the cases the account is in (as a suspect or the
    other party of an alert); `since` and `until` keep cases whose events overlap that range.
    Like the alert queue, a request examines at most `FRAUDWATCH_SCAN_BUDGET` index entries:
    a rare filter may answer a short page with a `next_cursor`; follow it until null. The
    order is the priority, which new activity raises: a case whose money moves again while
    you page jumps ahead of your cursor and shows on the first page again, not on later ones."""
    filters = CaseFilter(status, severity, account, timestamp_ms(since, "since"),
                         timestamp_ms(until, "until"))  # fmt: skip
    try:
        records, next_cursor = reader.queue(filters, limit, cursor, settings.scan_budget)
    except BadCursor as error:
        raise InvalidParameter("cursor", str(error)) from None
    at = now_ms()
    return CasePage(items=[CaseOut.of(r, at) for r in records], next_cursor=next_cursor)


@router.get("/{case_id}", summary="One case: alerts, accounts, money graph",
            response_model=CaseDetailOut,
            responses=error_responses(404, e404="No such case"))  # fmt: skip
def get_case(
    reader: CaseReaderDep,
    alerts: AlertStoreDep,
    lists: WatchlistViewDep,
    caller: Reader,
    case_id: Annotated[str, Path(pattern=CASE_ID)],
) -> CaseDetailOut:
    """The case, its alerts (by event time), its accounts (suspects first) with the money of
    its alerted transfers through each, and those transfers as the edges of its money graph.
    A case merged into a ring case answers as that ring case (its own `case_id`)."""
    live = _live(reader, case_id)
    (record,) = reader.records([live])
    _, ids = reader.alert_ids(live, DETAIL_ALERTS)
    found = alerts.get_many(ids)
    roles = reader.accounts(live)
    money_in: dict[str, int] = dict.fromkeys(roles, 0)
    money_out: dict[str, int] = dict.fromkeys(roles, 0)
    flows = []
    for alert in found:
        minor = int(Decimal(alert.amount) * 100)
        money_out[alert.src_account] = money_out.get(alert.src_account, 0) + minor
        money_in[alert.dst_account] = money_in.get(alert.dst_account, 0) + minor
        flows.append(MoneyFlowOut(
            transfer_id=alert.transfer_id, from_account=alert.src_account,
            to_account=alert.dst_account, amount=alert.amount, currency=alert.currency,
            ts=alert.ts, alert_id=alert.alert_id, severity=alert.severity,  # type: ignore[arg-type]
            status=alert.status,  # type: ignore[arg-type]
        ))  # fmt: skip
    at = now_ms()
    listed = lists.current()
    accounts = sorted(
        (CaseAccountOut(account_id=a, role="suspect" if roles.get(a) else "party",
                        listed=listed.listed("account", a, at), amount_in=money(money_in[a]),
                        amount_out=money(money_out[a]))
         for a in money_in),
        key=lambda c: (c.role != "suspect", -Decimal(c.amount_in) - Decimal(c.amount_out),
                       c.account_id),
    )  # fmt: skip
    summary = CaseOut.of(record, at)
    return CaseDetailOut(**summary.model_dump(), alerts=[AlertOut.of(a) for a in found],
                         accounts=accounts, flows=flows)  # fmt: skip


@router.post(
    "/{case_id}/actions",
    summary="Record a decision on every alert of a case",
    response_model=CaseActionOut,
    responses=error_responses(
        403, 404,
        e403="The key's role may not act, or the four-eyes rule forbids it every alert of it",
        e404="No such case",
    ),
)  # fmt: skip
def act_on_case(
    request: Request,
    reader: CaseReaderDep,
    alerts: AlertStoreDep,
    settings: SettingsDep,
    caller: Investigator,
    disclosure: DisclosureDep,
    case_id: Annotated[str, Path(pattern=CASE_ID)],
    body: CaseActionIn,
) -> CaseActionOut:
    """The move of `POST /v1/alerts/{alert_id}/actions` applied to each alert of the case
    that allows it, one history entry each; alerts whose status does not allow it (or that
    the four-eyes rule bars this key from) are left as they are and listed in `skipped`. Its
    consequences follow for each alert moved: `confirm_fraud` lists each suspect account once
    (and flags its past transfers), `restore` lifts those listings, `dismiss` suppresses the
    alerts' patterns for their suspects. A merged case's id acts on its ring case."""
    live = _live(reader, case_id)
    _, ids = reader.alert_ids(live, ACTION_ALERTS)
    actor = Actor(caller.key_id, caller.name, caller.role)
    results = alerts.apply_many(ids, body.action, actor, body.note, rfc3339_now(),
                                four_eyes=settings.four_eyes_rule)  # fmt: skip
    target = MOVES[body.action].target
    moved = [r for r in results if r.outcome == "applied"]
    if not moved and any(r.outcome == "refused" for r in results):
        raise Forbidden(next(r.detail for r in results if r.outcome == "refused"))
    feedback: Feedback = request.app.state.feedback
    listed: list[str] = []
    unlisted: list[str] = []
    suppressed: set[str] = set()
    retro = withdrawn = 0
    for result in moved:
        done = feedback.after_move(result.alert_id, body.action, target, result.move)
        for change in done.watchlist_changes(f"{body.action} on alert {result.alert_id}"):
            disclosure.audit(change)
        listed += [done.listed] if done.listed else []
        unlisted += [done.unlisted] if done.unlisted else []
        suppressed.update(done.suppressed)
        retro += done.retro_alerts
        withdrawn += done.withdrawn_alerts
    if listed or unlisted:
        request.app.state.watchlists.current(force=True)
    skipped = [
        SkippedOut(alert_id=r.alert_id, reason=r.detail if r.outcome == "refused"
                   else f"cannot '{body.action}' an alert that is '{r.detail}'"
                   if r.outcome == "not_allowed" else "no longer stored")
        for r in results if r.outcome != "applied"
    ]  # fmt: skip
    (record,) = reader.records([live])
    return CaseActionOut(
        case=CaseOut.of(record, now_ms()),
        moved=[MovedOut(alert_id=r.alert_id, from_status=r.detail, to=target)  # type: ignore[arg-type]
               for r in moved],
        skipped=skipped,
        consequences=CaseConsequencesOut(listed=listed, unlisted=unlisted,
                                         suppressed=sorted(suppressed), retro_alerts=retro,
                                         withdrawn_alerts=withdrawn),
    )  # fmt: skip
