"""Cases: alerts grouped by the account they suspect, and suspects linked by alerted money
merged into one ring case. Pure: the grouping reads and changes a `CaseView`, which the
Redis store fills for a batch of alerts (streams/state/case_store.py) and the in-memory store
holds whole (backtest), so that both group the same alerts into the same cases.

Grouping, alert by alert in the order they are stored:
1. An alert joins the case of its suspect account when that case was active within the case
   window (its events reach the alert's time give or take `window_ms`); otherwise it opens a
   new case for the account, named by the account and the alert that opened it.
2. The alert's transfer is an alerted money flow between its suspect and the other party.
   Two suspects linked by such a flow within `link_ms` of each other belong to one ring: the
   case of the alert's suspect merges with the case of the other party (when that party is a
   suspect too), and with the cases of the suspects it earlier exchanged alerted money with.
3. Merged cases keep the id of the one opened first (its first event time, then its id), so
   the ring case's id does not depend on which link was seen last.
4. A hub never links rings: an account that many suspects (more than `hub_suspects` within
   `link_ms`) name as their counterparty (an ATM, an exchange, a big merchant, a victim of
   several rings) is not a bridge between cases, or every ring cashing out at one ATM would
   become one case.

Everything depends on the alerts and their order only (no clock, no investigator), so a
replay, a redelivery and a backtest give the same case ids.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from models.alerts import SEVERITIES, Alert
from models.features import MS_PER_HOUR

# A case's status from its alerts': the least settled wins (new work reopens a case).
STATUS_ORDER = ("open", "escalated", "appealed", "confirmed", "dismissed")
LINKS_KEPT = 100  # alerted-flow links kept per account and direction (newest first)
HUB_SUSPECTS = 8  # more suspects naming an account as counterparty than this: a hub


@dataclass(frozen=True, slots=True)
class CaseSettings:
    """How alerts are grouped: the case window and the ring link window."""

    window_ms: int = 72 * MS_PER_HOUR
    link_ms: int = 24 * MS_PER_HOUR
    hub_suspects: int = HUB_SUSPECTS


def case_id_for(suspect: str, alert_id: str) -> str:
    """Deterministic from the suspect account and the alert that opened the case."""
    return "cs_" + hashlib.sha256(f"{suspect}|{alert_id}".encode()).hexdigest()[:24]


def case_status(counts: Mapping[str, int]) -> str:
    """A case's status from how many of its alerts are in each status."""
    return next((s for s in STATUS_ORDER if counts.get(s, 0) > 0), "dismissed")


def priority(last_ts_ms: int, severity: str, amounts: Mapping[str, int]) -> float:
    """The queue's sort key (higher first): the case's latest event time, moved ahead 6 hours
    per severity step above low and 2 hours per tenfold of the largest amount at risk (in
    major units). So money still moving comes first, and among cases active at the same time
    the worse and the bigger; a case whose money stopped a day ago falls behind fresh ones.
    In hours since the epoch, to be readable."""
    largest = max(amounts.values(), default=0) / 100
    bonus_h = 6 * SEVERITIES.index(severity) + 2 * math.log10(max(largest, 1.0))
    return round(last_ts_ms / MS_PER_HOUR + bonus_h, 3)


@dataclass(slots=True)
class CaseRecord:
    """A case's summary: what the queue and its filters need."""

    case_id: str
    first_ts_ms: int
    last_ts_ms: int
    alerts: int = 0
    amounts: dict[str, int] = field(default_factory=dict)  # currency → minor units
    severity: str = "low"
    suspects: list[str] = field(default_factory=list)  # sorted
    counts: dict[str, int] = field(default_factory=dict)  # alert status → alerts
    merged_into: str | None = None

    @property
    def status(self) -> str:
        """open, escalated, appealed, confirmed or dismissed (see `case_status`)."""
        return case_status(self.counts)

    @property
    def priority(self) -> float:
        """The queue's sort key (see `priority`)."""
        return priority(self.last_ts_ms, self.severity, self.amounts)

    def active_at(self, ts_ms: int, window_ms: int) -> bool:
        """Whether its events reach `ts_ms` give or take `window_ms`."""
        return self.first_ts_ms - window_ms <= ts_ms <= self.last_ts_ms + window_ms

    def add(self, alert: CaseInput) -> None:
        """Count one alert in."""
        self.first_ts_ms = min(self.first_ts_ms, alert.ts_ms)
        self.last_ts_ms = max(self.last_ts_ms, alert.ts_ms)
        self.alerts += 1
        self.amounts[alert.currency] = self.amounts.get(alert.currency, 0) + alert.amount_minor
        if SEVERITIES.index(alert.severity) > SEVERITIES.index(self.severity):
            self.severity = alert.severity
        if alert.suspect not in self.suspects:
            self.suspects = sorted([*self.suspects, alert.suspect])
        self.counts[alert.status] = self.counts.get(alert.status, 0) + 1

    def absorb(self, other: CaseRecord) -> None:
        """Take in a merged case's summary."""
        self.first_ts_ms = min(self.first_ts_ms, other.first_ts_ms)
        self.last_ts_ms = max(self.last_ts_ms, other.last_ts_ms)
        self.alerts += other.alerts
        for currency, minor in other.amounts.items():
            self.amounts[currency] = self.amounts.get(currency, 0) + minor
        if SEVERITIES.index(other.severity) > SEVERITIES.index(self.severity):
            self.severity = other.severity
        self.suspects = sorted(set(self.suspects) | set(other.suspects))
        for status, n in other.counts.items():
            self.counts[status] = self.counts.get(status, 0) + n


@dataclass(frozen=True, slots=True)
class CaseInput:
    """What grouping needs of an alert."""

    alert_id: str
    suspect: str
    counterparty: str
    ts_ms: int
    amount_minor: int
    currency: str
    severity: str
    status: str

    @classmethod
    def of(cls, alert: Alert) -> CaseInput:
        """From a stored alert (its suspect, or the payee for one stored without)."""
        suspect = alert.suspect_account or alert.dst_account
        other = alert.src_account if suspect == alert.dst_account else alert.dst_account
        amount_minor = int(Decimal(alert.amount) * 100)
        return cls(alert.alert_id, suspect, other, alert.ts_ms, amount_minor, alert.currency,
                   alert.severity, alert.status)  # fmt: skip


class CaseView(Protocol):
    """What grouping reads and changes: the in-memory store whole, or the part of Redis a
    batch of alerts can reach."""

    def case_of_alert(self, alert_id: str) -> str | None:
        """The case an alert is in."""
        ...

    def suspect_case(self, account: str) -> str | None:
        """The latest case suspecting the account."""
        ...

    def links(self, account: str, kind: str) -> Mapping[str, int]:
        """Alerted flows of the account, by counterparty → latest event time: `kind` `s`
        where the account was the suspect, `c` where the counterparty was."""
        ...

    def case(self, case_id: str) -> CaseRecord | None:
        """A case's summary."""
        ...


@dataclass(frozen=True, slots=True)
class Assign:
    """The alert joins the case."""

    alert_id: str
    case_id: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Suspect:
    """The account's latest case is this one."""

    account: str
    case_id: str


@dataclass(frozen=True, slots=True)
class Link:
    """An alerted flow between a suspect and its counterparty at `ts_ms`."""

    suspect: str
    counterparty: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Party:
    """An account in a case: a suspect, or the other party of one of its alerts."""

    case_id: str
    account: str
    suspect: bool


@dataclass(frozen=True, slots=True)
class Merge:
    """The case `absorbed` joins `root`: its alerts, accounts and suspects move there."""

    absorbed: str
    root: str


@dataclass(frozen=True, slots=True)
class Summary:
    """A case's summary as it now stands."""

    record: CaseRecord


Change = Assign | Suspect | Link | Party | Merge | Summary


def trim_links(links: dict[str, int], newest_ms: int, link_ms: int) -> None:
    """Keep the links within `link_ms` before `newest_ms` and at most `LINKS_KEPT` of them
    (the latest; of equal times, the greater counterparty), as Redis keeps its sorted set."""
    for party in [p for p, ts in links.items() if ts < newest_ms - link_ms]:
        del links[party]
    if len(links) > LINKS_KEPT:
        for party, _ in sorted(links.items(), key=lambda kv: (kv[1], kv[0]))[:-LINKS_KEPT]:
            del links[party]


class MutableCaseView(CaseView, Protocol):
    """A view grouping can change."""

    def apply(self, change: Change) -> None:
        """Apply one change."""
        ...


def group(
    view: MutableCaseView, alerts: Sequence[CaseInput], settings: CaseSettings
) -> tuple[dict[str, str], list[Change]]:
    """Group the alerts not grouped yet, in order, on the view (which applies each change as
    it is made); each alert's case id, and the changes, in order.

    An alert's case id is the one it has once it is grouped (with the merges it caused), not
    after the alerts that follow it in the same call: so it does not depend on how the
    alerts were batched. One grouped before names its case as it stands now."""
    grouping = _Grouping(view, settings)
    cased: dict[str, str] = {}
    for alert in alerts:
        if view.case_of_alert(alert.alert_id) is None:
            grouping.add(alert)
        cased[alert.alert_id] = view.case_of_alert(alert.alert_id) or ""
    return cased, grouping.changes


class _Grouping:
    def __init__(self, view: MutableCaseView, settings: CaseSettings) -> None:
        self.view = view
        self.settings = settings
        self.changes: list[Change] = []

    def _change(self, change: Change) -> None:
        self.changes.append(change)
        self.view.apply(change)

    def add(self, alert: CaseInput) -> None:
        window, link = self.settings.window_ms, self.settings.link_ms
        own = self.view.suspect_case(alert.suspect)
        record = self.view.case(own) if own is not None else None
        if record is None or not record.active_at(alert.ts_ms, window):
            record = CaseRecord(case_id_for(alert.suspect, alert.alert_id), alert.ts_ms,
                                alert.ts_ms)  # fmt: skip
            self._change(Suspect(alert.suspect, record.case_id))
        record.add(alert)
        self._change(Summary(record))
        self._change(Assign(alert.alert_id, record.case_id, alert.ts_ms))
        self._change(Party(record.case_id, alert.suspect, True))
        self._change(Party(record.case_id, alert.counterparty, False))
        self._change(Link(alert.suspect, alert.counterparty, alert.ts_ms))
        cases = {record.case_id: record}
        for party in self._linked(alert):
            case_id = self.view.suspect_case(party)
            other = self.view.case(case_id) if case_id is not None else None
            if other is not None and other.active_at(alert.ts_ms, link):
                cases[other.case_id] = other
        if len(cases) > 1:
            self._merge(list(cases.values()))

    def _linked(self, alert: CaseInput) -> list[str]:
        """The accounts this alert's suspect exchanged alerted money with near its time,
        hubs left out (and none at all when the suspect is a hub)."""
        if self._hub(alert.suspect, alert.ts_ms):
            return []
        parties = {alert.counterparty}
        for kind in ("s", "c"):
            for party, ts in self.view.links(alert.suspect, kind).items():
                if abs(ts - alert.ts_ms) <= self.settings.link_ms:
                    parties.add(party)
        return sorted(p for p in parties if not self._hub(p, alert.ts_ms))

    def _hub(self, account: str, at_ms: int) -> bool:
        named_by = self.view.links(account, "c")
        near = sum(1 for ts in named_by.values() if abs(ts - at_ms) <= self.settings.link_ms)
        return near > self.settings.hub_suspects

    def _merge(self, cases: list[CaseRecord]) -> None:
        root, *absorbed = sorted(cases, key=lambda c: (c.first_ts_ms, c.case_id))
        for other in absorbed:
            root.absorb(other)
            other.merged_into = root.case_id
            self._change(Merge(other.case_id, root.case_id))
        self._change(Summary(root))
