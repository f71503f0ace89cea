"""Cases in Redis: grouping for the alerts as they are stored, and what the API reads.

Every key carries the `{al}` hash tag, like the alerts: a case and its alerts change together
in one function call, also on Redis Cluster. Grouping (`models.cases`) runs here in Python on a
snapshot of what it can reach, read by one function (`case_read`, in `lua/alerts.lua`);
another (`case_write`) applies its changes only if that snapshot is still what Redis holds (a
digest of it, read again), else grouping runs again on a fresh one. So concurrent workers and
the API's retro-hunt never interleave half a grouping, and a batch redelivered after a crash
either finds its alerts grouped (and changes nothing) or groups them as the first attempt
would have.

Layout (prefix `fw:{al}`):
- `:ac`                hash  alert id → case id
- `:sx:<account>`      string the account's latest case as a suspect (expires)
- `:px:<account>`      string the latest case the account is in at all (expires)
- `:lk:i|o:<account>`  zset  alerted flows into (`i`) and out of (`o`) the account: the other
                       party → latest event time (expires)
- `:c:<case>`          hash  the case's summary (see `_record_fields`)
- `:c:<case>:al`       zset  its alerts by event time
- `:c:<case>:ac`       hash  its accounts → 1 (suspect) or 0 (party)
- `:cx:all`, `:cx:status:<s>`, `:cx:severity:<v>`  zsets of cases by priority
- `:cx:account:<account>`  zset  the account's cases by their first event time
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

from models.alerts import STATUSES, Alert
from models.cases import (
    LINKS_KEPT,
    STATUS_ORDER,
    Assign,
    CaseInput,
    CaseRecord,
    CaseSettings,
    Change,
    Link,
    Merge,
    Party,
    Summary,
    Suspect,
    group,
    trim_links,
)
from streams.state.alert_scan import (
    CASE_ID,
    BadCursor,
    Scan,
    decode_cursor,
    encode_cursor,
    scan_alerts,
)
from streams.state.functions import alert_library
from streams.state.pipelines import AnyRedis

log = logging.getLogger(__name__)
PREFIX = "fw:{al}"
ALERT_CASES = f"{PREFIX}:ac"
CASES_ALL = f"{PREFIX}:cx:all"
_CONFLICT_RETRIES = 50
_LIBRARY = alert_library()  # the case functions live with the alert functions


def case_key(case_id: str) -> str:
    """A case's summary hash."""
    return f"{PREFIX}:c:{case_id}"


def case_alerts_key(case_id: str) -> str:
    """A case's alerts, by event time."""
    return f"{PREFIX}:c:{case_id}:al"


def case_accounts_key(case_id: str) -> str:
    """A case's accounts: 1 for a suspect, 0 for another party."""
    return f"{PREFIX}:c:{case_id}:ac"


def case_index(dimension: str, value: str) -> str:
    """The cases of one status or severity (by priority) or account (by first event)."""
    return f"{PREFIX}:cx:{dimension}:{value}"


def _record_fields(record: CaseRecord) -> list[str]:
    """The summary as stored: every value a string (Lua passes them on as they are)."""
    fields = {
        "first": str(record.first_ts_ms),
        "last": str(record.last_ts_ms),
        "alerts": str(record.alerts),
        "amounts": orjson.dumps(dict(sorted(record.amounts.items()))).decode(),
        "severity": record.severity,
        "suspects": orjson.dumps(record.suspects).decode(),
        "priority": str(record.priority),
        **{f"n:{status}": str(record.counts.get(status, 0)) for status in STATUSES},
    }
    return [item for pair in fields.items() for item in pair]


def decode_record(
    case_id: str, fields: Mapping[bytes, bytes] | Mapping[str, str]
) -> CaseRecord | None:
    """A stored summary; None for a case merged into another (see `merged_into`) or one of
    another shape (logged)."""
    data = {_text(k): _text(v) for k, v in fields.items()}  # type: ignore[arg-type]
    if not data or "merged_into" in data:
        return None
    try:
        amounts = orjson.loads(data["amounts"])
        suspects = orjson.loads(data["suspects"])
        return CaseRecord(
            case_id,
            int(data["first"]),
            int(data["last"]),
            int(data["alerts"]),
            {str(k): int(v) for k, v in amounts.items()},
            data["severity"],
            [str(s) for s in suspects],
            {s: int(data.get(f"n:{s}", "0")) for s in STATUSES if int(data.get(f"n:{s}", "0"))},
        )
    except (KeyError, ValueError, TypeError, AttributeError):
        log.warning("stored case unreadable", extra={"case_id": case_id})
        return None


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class _Snapshot:
    """What `case_read` returned, as the `CaseView` grouping reads and changes."""

    def __init__(self, settings: CaseSettings) -> None:
        self.settings = settings
        self._alerts: dict[str, str | None] = {}
        self._suspects: dict[str, str | None] = {}
        self._parties: dict[str, str | None] = {}
        self._links: dict[tuple[str, str], dict[str, int]] = {}
        self._records: dict[str, CaseRecord] = {}
        self._merged: dict[str, str] = {}

    @classmethod
    def parse(
        cls, values: Sequence[bytes], ids: Sequence[str], accounts: Sequence[str],
        settings: CaseSettings,
    ) -> _Snapshot:  # fmt: skip
        """The snapshot from the script's reply (its digest first, then the sections in the
        order `case_snapshot` (lua/alerts.lua) writes them)."""
        snapshot = cls(settings)
        items = (_text(v) for v in values[1:])
        if int(next(items)) != len(ids):
            raise ValueError("case snapshot does not match its request")
        for alert_id in ids:
            snapshot._alerts[alert_id] = next(items) or None
        if int(next(items)) != len(accounts):
            raise ValueError("case snapshot does not match its request")
        for account in accounts:
            snapshot._suspects[account] = next(items) or None
            snapshot._parties[account] = next(items) or None
            for kind in ("i", "o"):
                snapshot._links[(account, kind)] = _pairs(items)
        for _ in range(int(next(items))):
            account = next(items)
            snapshot._suspects[account] = next(items) or None
            for kind in ("i", "o"):
                snapshot._links[(account, kind)] = _pairs(items)
        for _ in range(int(next(items))):
            case_id = next(items)
            fields = {next(items): next(items) for _ in range(int(next(items)))}
            record = decode_record(case_id, fields)
            if record is not None:
                snapshot._records[case_id] = record
            elif "merged_into" in fields:
                snapshot._merged[case_id] = fields["merged_into"]
        return snapshot

    def case_of_alert(self, alert_id: str) -> str | None:
        case_id = self._alerts.get(alert_id)
        return None if case_id is None else self._merged.get(case_id, case_id)

    def suspect_case(self, account: str) -> str | None:
        case_id = self._suspects.get(account)
        return None if case_id is None else self._merged.get(case_id, case_id)

    def party_case(self, account: str) -> str | None:
        case_id = self._parties.get(account)
        return None if case_id is None else self._merged.get(case_id, case_id)

    def links(self, account: str, kind: str) -> Mapping[str, int]:
        return self._links.get((account, kind), {})

    def case(self, case_id: str) -> CaseRecord | None:
        return self._records.get(case_id)

    def apply(self, change: Change) -> None:
        if isinstance(change, Summary):
            self._records[change.record.case_id] = change.record
        elif isinstance(change, Suspect):
            self._suspects[change.account] = change.case_id
        elif isinstance(change, Assign):
            self._alerts[change.alert_id] = change.case_id
        elif isinstance(change, Party):
            self._parties[change.account] = change.case_id
        elif isinstance(change, Link):
            for account, kind, party in ((change.payer, "o", change.payee),
                                         (change.payee, "i", change.payer)):  # fmt: skip
                links = self._links.setdefault((account, kind), {})
                links[party] = max(links.get(party, change.ts_ms), change.ts_ms)
                trim_links(links, change.ts_ms, self.settings.link_ms)
        elif isinstance(change, Merge):
            self._merged[change.absorbed] = change.root
            for merged, into in list(self._merged.items()):
                if into == change.absorbed:
                    self._merged[merged] = change.root


def _pairs(items: Iterator[str]) -> dict[str, int]:
    return {next(items): int(float(next(items))) for _ in range(int(next(items)))}


def _encode(change: Change, settings: CaseSettings, firsts: Mapping[str, int]) -> list[str]:
    if isinstance(change, Assign):
        return ["A", change.alert_id, change.case_id, str(change.ts_ms)]
    if isinstance(change, Suspect):
        return ["S", change.account, change.case_id]
    if isinstance(change, Link):
        cutoff = change.ts_ms - settings.link_ms
        return ["L", change.payer, change.payee, str(change.ts_ms), str(cutoff)]
    if isinstance(change, Party):
        suspect = "1" if change.suspect else "0"
        return ["P", change.case_id, change.account, suspect, str(firsts[change.case_id])]
    if isinstance(change, Merge):
        return ["M", change.absorbed, change.root, str(firsts[change.root])]
    assert isinstance(change, Summary)
    return ["R", change.record.case_id, *_record_fields(change.record)]


class RedisCases:
    """Groups stored alerts into cases, and reads cases for the API."""

    def __init__(self, client: AnyRedis, settings: CaseSettings | None = None) -> None:
        self._redis = client
        self.settings = settings or CaseSettings()
        self._ttl_ms = str(2 * max(self.settings.window_ms, self.settings.link_ms))
        self.conflicts = 0

    def assign(self, alerts: Sequence[Alert]) -> dict[str, str]:
        """Group the alerts not grouped yet (in order) and return each one's case id."""
        if not alerts:
            return {}
        inputs = [CaseInput.of(a) for a in alerts]
        ids = [a.alert_id for a in inputs]
        accounts = sorted({x for a in inputs for x in (a.payer, a.payee)})
        request = orjson.dumps([PREFIX, ids, accounts]).decode()
        for _ in range(_CONFLICT_RETRIES):
            values = cast(list[bytes], self._call("case_read", [request]))
            view = _Snapshot.parse(values, ids, accounts, self.settings)
            cased, changes = group(view, inputs, self.settings)
            if not changes:
                return cased
            if self._apply(values[0], request, changes):
                return cased
            self.conflicts += 1  # grouped meanwhile by another process: group again
        raise RuntimeError("case grouping kept conflicting with other writers")

    def _apply(self, digest: bytes, request: str, changes: list[Change]) -> bool:
        firsts: dict[str, int] = {}
        last_summary: dict[str, int] = {}
        for index, change in enumerate(changes):
            if isinstance(change, Summary):
                firsts[change.record.case_id] = change.record.first_ts_ms
                last_summary[change.record.case_id] = index
        # A summary is written once, as it finally stands (every change holds the same record),
        # and not at all for a case merged into another.
        kept = [
            c for i, c in enumerate(changes)
            if not isinstance(c, Summary)
            or (last_summary[c.record.case_id] == i and c.record.merged_into is None)
        ]  # fmt: skip
        # Summaries last, so that merges have moved their parts first.
        ordered: list[Change] = [c for c in kept if not isinstance(c, Summary)]
        ordered += [c for c in kept if isinstance(c, Summary)]
        encoded = orjson.dumps([_encode(c, self.settings, firsts) for c in ordered]).decode()
        order = " ".join(STATUS_ORDER)
        applied = self._call(
            "case_write", [digest, request, encoded, self._ttl_ms, LINKS_KEPT, order]
        )
        return bool(applied)

    def _call(self, function: str, args: Sequence[str | bytes | int]) -> Any:
        """Call a case function (its one key names the `{al}` slot every key it uses is in)."""
        name = _LIBRARY.name(function)
        return _LIBRARY.calling(
            self._redis, lambda: self._redis.fcall(name, 1, ALERT_CASES, *args)
        )

    def case_ids(self, alert_ids: Iterable[str]) -> dict[str, str]:
        """The case of each of these alerts that is in one."""
        ids = list(alert_ids)
        if not ids:
            return {}
        found = cast(list[bytes | None], self._redis.hmget(ALERT_CASES, ids))
        return {a: c.decode() for a, c in zip(ids, found, strict=True) if c is not None}


@dataclass(frozen=True, slots=True)
class CaseFilter:
    """The case queue's filters; None means any. `since_ms`/`until_ms` keep the cases whose
    events overlap that time range."""

    status: str | None = None
    severity: str | None = None
    account: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def indexes(self) -> list[str]:
        """The index of each filter given that has one (every case's when none)."""
        named = [
            case_index(dimension, value)
            for dimension, value in (("status", self.status), ("severity", self.severity))
            if value is not None
        ]
        return named or [CASES_ALL]

    def matches(self, record: CaseRecord) -> bool:
        """Whether a case passes every filter (its summary checked)."""
        return (
            (self.status is None or record.status == self.status)
            and (self.severity is None or record.severity == self.severity)
            and (self.since_ms is None or record.last_ts_ms >= self.since_ms)
            and (self.until_ms is None or record.first_ts_ms <= self.until_ms)
        )


# Most cases one account's filter reads (its newest by first event).
ACCOUNT_CASES_READ = 1000


class CaseReader:
    """The case queue and one case's parts, for the API."""

    def __init__(self, client: AnyRedis) -> None:
        self._redis = client

    def records(self, case_ids: Sequence[str]) -> list[CaseRecord]:
        """Live cases by id, in the given order (merged and unknown ones left out)."""
        if not case_ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for case_id in case_ids:
            pipe.hgetall(case_key(case_id))
        found = (decode_record(c, raw) for c, raw in zip(case_ids, pipe.execute(), strict=True))
        return [record for record in found if record is not None]

    def resolve(self, case_id: str) -> str | None:
        """The live case an id names now: itself, or the ring case it was merged into."""
        for _ in range(32):  # merged cases point at live ones; a chain is never long
            merged = cast(bytes | None, self._redis.hget(case_key(case_id), "merged_into"))
            if merged is None:
                return case_id if self._redis.exists(case_key(case_id)) else None
            case_id = merged.decode()
        return None

    def queue(
        self, filters: CaseFilter, limit: int, cursor: str | None, budget: int
    ) -> tuple[list[CaseRecord], str | None]:
        """Highest priority first; the page and the next cursor (None at the end). With an
        account, its cases (the newest thousand it was in) by priority, paged by offset."""
        if filters.account is not None:
            return self._of_account(filters, limit, cursor)
        scan = Scan(filters.indexes(), None, None,
                    decode_cursor(cursor, CASE_ID, float) if cursor else None, budget,
                    number=float)  # fmt: skip

        def fetch(case_ids: Sequence[str]) -> list[CaseRecord]:
            return [r for r in self.records(case_ids) if filters.matches(r)]

        page, last = scan_alerts(self._redis, scan, limit, fetch)
        return page, None if last is None else encode_cursor(*last)

    def _of_account(
        self, filters: CaseFilter, limit: int, cursor: str | None
    ) -> tuple[list[CaseRecord], str | None]:
        assert filters.account is not None
        start = 0 if cursor is None else _offset(cursor)
        ids = [m.decode() for m in cast(list[bytes], self._redis.zrevrange(
            case_index("account", filters.account), 0, ACCOUNT_CASES_READ - 1
        ))]  # fmt: skip
        ranked = sorted(
            (r for r in self.records(ids) if filters.matches(r)),
            key=lambda r: (-r.priority, r.case_id),
        )
        page = ranked[start : start + limit]
        more = start + limit < len(ranked)
        return page, encode_cursor(start + limit, "cs_offset") if more else None

    def alert_ids(self, case_id: str, limit: int) -> tuple[int, list[str]]:
        """How many alerts the case has, and the first `limit` by event time."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(case_alerts_key(case_id))
        pipe.zrange(case_alerts_key(case_id), 0, limit - 1)
        count, ids = pipe.execute()
        return int(count), [i.decode() for i in ids]

    def accounts(self, case_id: str) -> dict[str, bool]:
        """The case's accounts: True for a suspect."""
        raw = cast(dict[bytes, bytes], self._redis.hgetall(case_accounts_key(case_id)))
        return {k.decode(): v == b"1" for k, v in raw.items()}

    def count(self, statuses: Sequence[str]) -> int:
        """How many live cases are in these statuses."""
        pipe = self._redis.pipeline(transaction=False)
        for status in statuses:
            pipe.zcard(case_index("status", status))
        return sum(int(n) for n in pipe.execute())


_OFFSET = re.compile(r"^cs_offset$")


def _offset(cursor: str) -> int:
    offset, _ = decode_cursor(cursor, _OFFSET)
    if offset < 0 or offset > 1_000_000:
        raise BadCursor("cursor is not one this API issued")
    return int(offset)
