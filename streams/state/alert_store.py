"""Alerts in Redis: bodies plus sorted-set indexes (by event time) for the API's filters.

Every alert key carries the `{al}` hash tag: alerts are few next to transfers, and one slot
lets an alert and its indexes change atomically even on Redis Cluster. Alert keys have no
TTL: closed alerts past retention are purged (`purge_closed`), the rest kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from redis.typing import EncodableT

from models.alerts import (
    SEVERITIES,
    STATUSES,
    Alert,
    StoredAlert,
    alert_decoder,
    alert_encoder,
    with_suspect,
)
from models.cases import STATUS_ORDER
from models.workflow import MOVES, Action, Actor, FourEyesRefused, MoveRefused, four_eyes_refusal
from streams.state.alert_events import DEFAULT_MAX_EVENTS, EVENTS_KEY
from streams.state.alert_scan import Scan, decode_cursor, encode_cursor, scan_alerts
from streams.state.case_store import ALERT_CASES
from streams.state.functions import alert_library
from streams.state.pipelines import AnyRedis, Pipeline
from streams.state.transport import is_missing_function

log = logging.getLogger(__name__)

PREFIX = "fw:{al}"
# Dispositions that end an alert's work; past retention these are purged, the rest kept.
CLOSED_STATUSES = ("confirmed", "dismissed")
_CLOSED = " ".join(CLOSED_STATUSES)
_ORDER = " ".join(STATUS_ORDER)  # a case's status: its alerts' least settled
ALL_INDEX = f"{PREFIX}:ix:all"


def alert_key(alert_id: str) -> str:
    """Where an alert's JSON body lives."""
    return f"{PREFIX}:a:{alert_id}"


def features_key(alert_id: str) -> str:
    """The feature vector the alert was scored on (JSON, NaN as null): a training row."""
    return f"{PREFIX}:f:{alert_id}"


def history_key(alert_id: str) -> str:
    """The list of workflow actions taken on an alert, oldest first (JSON entries)."""
    return f"{PREFIX}:h:{alert_id}"


def index_key(dimension: str, value: str) -> str:
    """The sorted set of alert ids (scored by event time) for one filter value."""
    return f"{PREFIX}:ix:{dimension}:{value}"


def indexes_of(alert: Alert) -> list[str]:
    """Every index an alert belongs to, as raised (status `open`)."""
    names = [
        ALL_INDEX,
        index_key("account", alert.src_account),
        index_key("account", alert.dst_account),
        index_key("severity", alert.severity),
        index_key("status", alert.status),
    ]
    names += [index_key("rule", reason.rule) for reason in alert.reasons]
    return names


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """The API's alert filters; None means any."""

    account: str | None = None
    severity: str | None = None
    rule: str | None = None
    status: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def indexes(self) -> list[str]:
        """The index of each filter given (every alert's index when none is)."""
        named = [
            index_key(dimension, value)
            for dimension, value in (
                ("account", self.account),
                ("rule", self.rule),
                ("status", self.status),
                ("severity", self.severity),
            )
            if value is not None
        ]
        return named or [ALL_INDEX]

    def matches(self, alert: Alert) -> bool:
        """Whether an alert passes the filters (its body checked, after its indexes were)."""
        return (
            (self.account is None or self.account in (alert.src_account, alert.dst_account))
            and (self.severity is None or alert.severity == self.severity)
            and (self.status is None or alert.status == self.status)
            and (self.rule is None or any(r.rule == self.rule for r in alert.reasons))
        )


def decode_stored(raw: bytes | str) -> Alert | None:
    """A stored alert body, or None (logged) when it is damaged, of a shape this version
    cannot read, or holds values outside the contract: views skip it rather than fail. One
    stored before suspects were recorded gets its suspect (`with_suspect`)."""
    try:
        alert = alert_decoder.decode(raw)
    except msgspec.DecodeError as error:
        log.warning("stored alert unreadable", extra={"error": str(error)[:200]})
        return None
    valid = alert.severity in SEVERITIES and alert.status in STATUSES and 0 <= alert.score <= 1
    if not valid:
        log.warning("stored alert outside the contract", extra={"alert_id": alert.alert_id})
        return None
    return with_suspect(alert)


def _entries(alert_id: str, rows: Iterable[bytes | str]) -> list[dict[str, Any]]:
    """Stored workflow entries, decoded; one this version cannot read is skipped (logged)."""
    entries = []
    for row in rows:
        try:
            entry = msgspec.json.decode(row)
        except msgspec.DecodeError:
            log.warning("stored alert history entry unreadable", extra={"alert_id": alert_id})
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


class AlertMissing(LookupError):
    """No alert has this id."""


@dataclass(frozen=True, slots=True)
class Moved:
    """A move taken: the status it left, and its number in the alert's history."""

    source: str
    number: int


@dataclass(frozen=True, slots=True)
class MoveResult:
    """What a move did to one alert of many: `applied` (`detail`: the status it left, `move`:
    its number), `not_allowed` (`detail`: the status that does not allow it), `refused` by
    the four-eyes rule (`detail`: why), or `missing`."""

    alert_id: str
    outcome: str
    detail: str
    move: int = 0


def _moved(alert_id: str, action: Action, reply: Any) -> Moved:
    """The move the workflow function took; raises what it refused."""
    if reply[0] == -1:
        raise AlertMissing(alert_id)
    if reply[0] == 0:
        raise MoveRefused(action, reply[1].decode())
    return Moved(reply[1].decode(), int(reply[2]))


_LIBRARY = alert_library()


class AlertStore:
    """Writes alerts idempotently, reads them back by id or by filters, and moves them
    through the workflow."""

    def __init__(
        self, client: AnyRedis, origin: str = "worker", max_events: int = DEFAULT_MAX_EVENTS
    ) -> None:
        self._redis = client
        # Who stores alerts through this store (`worker`, or `api` for the retro-hunt's):
        # the event log says so, since the worker publishes its own on the alerts topic.
        self._origin = origin
        self._max_events = str(max_events)

    def _call(self, function: str, keys: Sequence[str], args: Sequence[EncodableT]) -> Any:
        name = _LIBRARY.name(function)
        return _LIBRARY.calling(
            self._redis, lambda: self._redis.fcall(name, len(keys), *keys, *args)
        )

    def put_alerts(
        self, alerts: Sequence[Alert], features: Sequence[Mapping[str, float]] | None = None
    ) -> list[StoredAlert]:
        """Store the alerts (and, when given, the feature vector each was scored on, aligned
        with `alerts`) in one round trip; for each, whether it was new and the version kept.

        Both writes keep the first version, so a replay changes neither status nor features.
        """
        if not alerts:
            return []
        # A Redis that lost its functions (restart, flush) gets them again; the writes are
        # idempotent, so the retry changes nothing that went through.
        return _LIBRARY.calling(self._redis, lambda: self._put_all(alerts, features))

    def _put_all(
        self, alerts: Sequence[Alert], features: Sequence[Mapping[str, float]] | None
    ) -> list[StoredAlert]:
        pipe = self._redis.pipeline(transaction=False)
        put = _LIBRARY.name("alert_put")
        for alert in alerts:
            keys = [alert_key(alert.alert_id), EVENTS_KEY, *indexes_of(alert)]
            body = alert_encoder.encode(alert)
            pipe.execute_command("FCALL", put, len(keys), *keys, alert.alert_id, alert.ts_ms,
                                 body, self._origin, self._max_events)  # fmt: skip
        if features is not None:
            for alert, vector in zip(alerts, features, strict=True):
                pipe.set(features_key(alert.alert_id), msgspec.json.encode(vector), nx=True)
        replies = pipe.execute()[: len(alerts)]
        # A kept body this version cannot read (logged) is answered with the one just raised.
        return [
            StoredAlert(True, alert)
            if reply == 1
            else StoredAlert(False, decode_stored(reply) or alert)
            for alert, reply in zip(alerts, replies, strict=True)
        ]

    def _move(
        self, alert_id: str, action: Action, actor: Actor, note: str, at: str
    ) -> tuple[list[str], list[str]]:
        """The workflow script's keys, and its arguments but the history length judged on."""
        move = MOVES[action]
        keys = [alert_key(alert_id), history_key(alert_id)]
        keys += [index_key("status", status) for status in STATUSES]
        keys += [EVENTS_KEY, ALERT_CASES]
        args = [alert_id, action, move.target, " ".join(move.sources),
                actor.key_id, actor.name, actor.role, at, " ".join(STATUSES), note]  # fmt: skip
        return keys, args

    def _tail(self, seen: str) -> list[str]:
        return [seen, self._max_events, PREFIX, _ORDER]

    def apply(
        self,
        alert_id: str,
        action: Action,
        actor: Actor,
        note: str,
        at: str,
        *,
        four_eyes: bool = False,
    ) -> Moved:
        """Take a workflow action atomically; returns the status it moved from and the move's
        number in the alert's history.

        Raises `AlertMissing`, `MoveRefused` when the current status does not allow it, or
        `FourEyesRefused` when the four-eyes rule is on and forbids it to this actor. The rule
        is judged on the history as read, and the script applies the move only if the history
        is still that long (else the check runs again on the newer history).
        """
        keys, args = self._move(alert_id, action, actor, note, at)
        while True:
            seen = ""
            if four_eyes:
                rows = self._redis.lrange(history_key(alert_id), 0, -1)
                reason = four_eyes_refusal(action, actor.key_id, _entries(alert_id, rows))
                if reason is not None:
                    raise FourEyesRefused(reason)
                seen = str(len(rows))
            reply = self._call("alert_action", keys, [*args, *self._tail(seen)])
            if reply[0] != -2:  # -2: another move came in after the history was read
                break
        return _moved(alert_id, action, reply)

    def apply_many(
        self,
        alert_ids: Sequence[str],
        action: Action,
        actor: Actor,
        note: str,
        at: str,
        *,
        four_eyes: bool = False,
    ) -> list[MoveResult]:
        """`apply` to each alert (a case's): one history entry each, in two round trips
        (the histories the four-eyes rule reads, then the moves). What each did, in order."""
        refused: dict[str, str] = {}
        seen: dict[str, str] = dict.fromkeys(alert_ids, "")
        if four_eyes and alert_ids:
            pipe = self._redis.pipeline(transaction=False)
            for alert_id in alert_ids:
                pipe.lrange(history_key(alert_id), 0, -1)
            for alert_id, rows in zip(alert_ids, pipe.execute(), strict=True):
                reason = four_eyes_refusal(action, actor.key_id, _entries(alert_id, rows))
                if reason is not None:
                    refused[alert_id] = reason
                seen[alert_id] = str(len(rows))
        moving = [a for a in alert_ids if a not in refused]
        act = _LIBRARY.name("alert_action")

        def send() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            for alert_id in moving:
                keys, args = self._move(alert_id, action, actor, note, at)
                pipe.execute_command("FCALL", act, len(keys), *keys, *args,
                                     *self._tail(seen[alert_id]))  # fmt: skip
            return cast(list[Any], pipe.execute(raise_on_error=False))

        sent = send()
        if any(is_missing_function(reply) for reply in sent):
            # A Redis that lost its functions applied none of them: load and send again.
            _LIBRARY.load(self._redis)
            sent = send()
        replies = dict(zip(moving, sent, strict=True))
        results = []
        for alert_id in alert_ids:
            if alert_id in refused:
                results.append(MoveResult(alert_id, "refused", refused[alert_id]))
                continue
            reply = replies[alert_id]
            try:
                if isinstance(reply, Exception):
                    raise reply
                if reply[0] == -2:  # its history grew meanwhile: judged again, alone
                    moved = self.apply(alert_id, action, actor, note, at, four_eyes=four_eyes)
                else:
                    moved = _moved(alert_id, action, reply)
                results.append(MoveResult(alert_id, "applied", moved.source, moved.number))
            except MoveRefused as not_allowed:
                results.append(MoveResult(alert_id, "not_allowed", not_allowed.status))
            except FourEyesRefused as barred:
                results.append(MoveResult(alert_id, "refused", str(barred)))
            except AlertMissing:
                results.append(MoveResult(alert_id, "missing", ""))
        return results

    def purge_closed(self, before_ms: int, limit: int = 1000) -> int:
        """Delete up to `limit` closed alerts (confirmed or dismissed) whose event time is
        before `before_ms`, with their features, history and index entries; returns how many.
        Open, escalated and appealed alerts are work in progress and always kept. Reads at
        most ten times `limit` index entries, so one call stays short."""
        purged, kept = 0, 0
        while purged < limit and kept < 10 * limit:
            members = cast(
                list[bytes],
                self._redis.zrangebyscore(ALL_INDEX, "-inf", f"({before_ms}", start=kept, num=500),
            )
            if not members:
                break
            page_purged = 0
            for alert in self.get_many(member.decode() for member in members):
                if alert.status in CLOSED_STATUSES and purged + page_purged < limit:
                    keys = [alert_key(alert.alert_id), features_key(alert.alert_id),
                            history_key(alert.alert_id), ALERT_CASES,
                            *indexes_of(alert)]  # fmt: skip
                    args = [alert.alert_id, _CLOSED, PREFIX, _ORDER]
                    page_purged += int(self._call("alert_purge", keys, args))
            purged += page_purged
            # Purged ids left the index: the next page starts after the ones kept.
            kept += len(members) - page_purged
        return purged

    def status_counts(self) -> dict[str, int]:
        """The number of alerts in each workflow status (one round trip, O(1) per status)."""
        pipe = self._redis.pipeline(transaction=False)
        for status in STATUSES:
            pipe.zcard(index_key("status", status))
        return {status: int(n) for status, n in zip(STATUSES, pipe.execute(), strict=True)}

    def history(self, alert_id: str, start: int, count: int) -> list[dict[str, Any]]:
        """Up to `count` workflow entries from position `start`, oldest first; an entry this
        version cannot read is skipped."""
        rows = self._redis.lrange(history_key(alert_id), start, start + count - 1)
        return _entries(alert_id, rows)

    def get(self, alert_id: str) -> Alert | None:
        """One alert by id, naming its case (None when there is none, or none this version
        can read)."""
        found = self.get_many([alert_id])
        return found[0] if found else None

    def get_many(self, alert_ids: Iterable[str]) -> list[Alert]:
        """Alerts by id, each naming its case, in the given order, skipping unknown and
        unreadable ids (one round trip)."""
        ids = list(alert_ids)
        if not ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        self.queue_get(pipe, ids)
        found = self.decode_found(*pipe.execute())
        return [found[i] for i in ids if i in found]

    @staticmethod
    def queue_recent_ids(pipe: Pipeline, account_ids: Sequence[str], limit: int) -> None:
        """Queue, per account, the ids of its `limit` most recent alerts (payer or payee)."""
        for account_id in account_ids:
            pipe.zrevrange(index_key("account", account_id), 0, limit - 1)

    @staticmethod
    def queue_get(pipe: Pipeline, alert_ids: Sequence[str]) -> None:
        """Queue the reads of the alerts and their cases (`GET_REPLIES` replies: decode them
        with `decode_found`)."""
        # As a raw command: redis-py refuses `pipe.mget` on a cluster even when, as here, every
        # key shares the `{al}` slot.
        pipe.execute_command("MGET", *(alert_key(i) for i in alert_ids))
        pipe.hmget(ALERT_CASES, list(alert_ids))

    GET_REPLIES = 2

    @staticmethod
    def decode_found(
        raws: Sequence[bytes | None], cases: Sequence[bytes | None]
    ) -> dict[str, Alert]:
        """The readable alerts `queue_get`'s replies found, by id, each naming its case."""
        found: dict[str, Alert] = {}
        for raw, case_id in zip(raws, cases, strict=True):
            alert = None if raw is None else decode_stored(raw)
            if alert is not None:
                named = case_id.decode() if case_id is not None else None
                found[alert.alert_id] = msgspec.structs.replace(alert, case_id=named)
        return found

    def list(
        self, filters: AlertFilter, limit: int, cursor: str | None = None, budget: int = 10_000
    ) -> tuple[list[Alert], str | None]:
        """Newest first; the page and the cursor of the next one (None at the end). At most
        `budget` index entries are examined (see `alert_scan`), so a rare filter may answer a
        short page, even an empty one, with a cursor to go on. Raises `BadCursor`."""
        scan = Scan(
            filters.indexes(),
            filters.since_ms,
            filters.until_ms,
            decode_cursor(cursor) if cursor else None,
            budget,
        )

        def fetch(alert_ids: Sequence[str]) -> list[Alert]:
            return [alert for alert in self.get_many(alert_ids) if filters.matches(alert)]

        page, last = scan_alerts(self._redis, scan, limit, fetch)
        return page, None if last is None else encode_cursor(*last)
