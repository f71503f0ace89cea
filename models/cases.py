"""Cases: alerts grouped by the account they suspect, and suspects linked by alerted money
merged into one ring case. Pure: the grouping reads and changes a `CaseView`, which the
Redis store fills for a batch of alerts (streams/state/case_store.py) and the in-memory store
holds whole (backtest), so that both group the same alerts into the same cases.

Grouping, alert by alert in the order they are stored:
1. An alert joins the case of its suspect account when that case was active within the case
   window (its events reach the alert's time give or take `window_ms`); otherwise it opens a
   new case for the account, named by the account and the alert that opened it. One
   exception: an alert suspecting a payee that has passed no alerted money on (an ATM, a
   beneficiary abroad, a mule at its first payment in) follows the payer's money: it joins
   the payer's case, or, when the payer is a mule that received alerted money, the case the
   payer is in — even when the payee has a case of its own (an ATM many rings cash out at
   would otherwise gather their cash-outs into one case).
2. Every alert's transfer is an alerted money flow from its payer to its payee. Cases are one
   ring when an alerted flow within `link_ms` links them *through an account that passes
   money on*: over a flow X → Y, the cases of X and of Y merge when Y also paid alerted money
   on within the link window. So the layers of a mule chain merge as each mule pays on, while
   a sink (an ATM, a merchant, an exchange's beneficiary) never links the rings that pay it,
   and a victim (whose payments only go out) links nothing but its own alerts to its ring.
   One more kind of flow links: when an alert suspects its payer, that payer's flows to
   payees that got alerted money from it alone, so a fan-out whose first alerts blamed its
   payees (before the split itself showed) ends as one case. A victim is never the suspect,
   and an ATM other rings pay has other payers.
3. Merged cases keep the id of the one opened first (its first event time, then its id), so
   the ring case's id does not depend on which link was seen last.
4. A hub never links anything: an account with alerted flows to or from more than
   `hub_parties` accounts within the link window (a payment processor, an exchange).

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
from models.currency import REFERENCE
from models.features import MS_PER_HOUR

# A case's status from its alerts': the least settled wins (new work reopens a case).
STATUS_ORDER = ("open", "escalated", "appealed", "confirmed", "dismissed")
LINKS_KEPT = 100  # alerted-flow links kept per account and direction (newest first)
# More counterparties in alerted flows within the link window than this: a hub. A collecting
# mule meets 20 victims and a dozen mules; a payment processor meets thousands.
HUB_PARTIES = 50


@dataclass(frozen=True, slots=True)
class CaseSettings:
    """How alerts are grouped: the case window and the ring link window."""

    window_ms: int = 72 * MS_PER_HOUR
    link_ms: int = 24 * MS_PER_HOUR
    hub_parties: int = HUB_PARTIES


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
    Amounts of different currencies are compared at their reference value in the scoring
    currency (`models.currency`). In hours since the epoch, to be readable."""
    largest = max(
        (REFERENCE.scoring_minor(minor, currency) for currency, minor in amounts.items()
         if minor > 0),
        default=0,
    ) / 100
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

    def add(self, alert: CaseInput, suspected: bool = True) -> None:
        """Count one alert in (its suspect among the case's suspects, unless it joined the
        case as the payee of a payer the case suspects)."""
        self.first_ts_ms = min(self.first_ts_ms, alert.ts_ms)
        self.last_ts_ms = max(self.last_ts_ms, alert.ts_ms)
        self.alerts += 1
        self.amounts[alert.currency] = self.amounts.get(alert.currency, 0) + alert.amount_minor
        if SEVERITIES.index(alert.severity) > SEVERITIES.index(self.severity):
            self.severity = alert.severity
        if suspected and alert.suspect not in self.suspects:
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
    payer: str
    payee: str
    suspect: str
    ts_ms: int
    amount_minor: int
    currency: str
    severity: str
    status: str

    @property
    def counterparty(self) -> str:
        """The party the alert does not suspect."""
        return self.payer if self.suspect == self.payee else self.payee

    @classmethod
    def of(cls, alert: Alert) -> CaseInput:
        """From a stored alert (its suspect, or the payee for one stored without)."""
        suspect = alert.suspect_account or alert.dst_account
        amount_minor = int(Decimal(alert.amount) * 100)
        return cls(alert.alert_id, alert.src_account, alert.dst_account, suspect, alert.ts_ms,
                   amount_minor, alert.currency, alert.severity, alert.status)  # fmt: skip


class CaseView(Protocol):
    """What grouping reads and changes: the in-memory store whole, or the part of Redis a
    batch of alerts can reach."""

    def case_of_alert(self, alert_id: str) -> str | None:
        """The case an alert is in."""
        ...

    def suspect_case(self, account: str) -> str | None:
        """The latest case suspecting the account."""
        ...

    def party_case(self, account: str) -> str | None:
        """The latest case the account is in, as a suspect or the other party of an alert."""
        ...

    def links(self, account: str, kind: str) -> Mapping[str, int]:
        """Alerted flows of the account, by counterparty → latest event time: `kind` `i`
        for money it received, `o` for money it paid."""
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
    """An alerted flow from `payer` to `payee` at `ts_ms`."""

    payer: str
    payee: str
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

    def _active(self, account: str, at_ms: int, window_ms: int) -> CaseRecord | None:
        case_id = self.view.suspect_case(account)
        record = self.view.case(case_id) if case_id is not None else None
        return record if record is not None and record.active_at(at_ms, window_ms) else None

    def _following(self, payer: str, at_ms: int) -> CaseRecord | None:
        """The case a payer's money is followed in: the payer's own case, or, for a payer that
        received alerted money (a mule in someone's case, not a victim), the case it is in."""
        record = self._active(payer, at_ms, self.settings.window_ms)
        if record is None and self._near(payer, "i", at_ms):
            case_id = self.view.party_case(payer)
            candidate = self.view.case(case_id) if case_id is not None else None
            if candidate is not None and candidate.active_at(at_ms, self.settings.window_ms):
                record = candidate
        return record

    def _near(self, account: str, kind: str, at_ms: int) -> dict[str, int]:
        link = self.settings.link_ms
        return {p: ts for p, ts in self.view.links(account, kind).items()
                if abs(ts - at_ms) <= link}  # fmt: skip

    def _passes_on(self, account: str, at_ms: int) -> bool:
        """Whether the account paid alerted money on within the link window."""
        return bool(self._near(account, "o", at_ms))

    def _hub(self, account: str, at_ms: int) -> bool:
        parties = self._near(account, "i", at_ms).keys() | self._near(account, "o", at_ms).keys()
        return len(parties) > self.settings.hub_parties

    def add(self, alert: CaseInput) -> None:
        window, at = self.settings.window_ms, alert.ts_ms
        self._change(Link(alert.payer, alert.payee, at))
        record, suspected = None, True
        if alert.suspect == alert.payee and not self._passes_on(alert.payee, at):
            # A payee that passed nothing on (an ATM, a first-layer mule): its alert follows
            # the payer's money, into the payer's case when it has one.
            record = self._following(alert.payer, at)
            suspected = record is None
        if record is None:
            record = self._active(alert.suspect, at, window)
        if record is None:
            record = CaseRecord(case_id_for(alert.suspect, alert.alert_id), at, at)
            self._change(Suspect(alert.suspect, record.case_id))
        record.add(alert, suspected)
        self._change(Summary(record))
        self._change(Assign(alert.alert_id, record.case_id, at))
        self._change(Party(record.case_id, alert.suspect, suspected))
        self._change(Party(record.case_id, alert.counterparty, False))
        # The cases at both ends of each bridge are one ring (the alert's own case among them
        # only when its suspect is such an end: a sink's case links nothing).
        cases: dict[str, CaseRecord] = {}
        for payer, payee in self._bridges(alert):
            for account in (payer, payee):
                other = self._active(account, at, self.settings.link_ms)
                if other is not None:
                    cases[other.case_id] = other
        if len(cases) > 1:
            self._merge(list(cases.values()))

    def _bridges(self, alert: CaseInput) -> list[tuple[str, str]]:
        """The alerted flows near this alert that link rings: those of its payer and its payee
        (this one included) whose payee passed money on, or, when the alert suspects its
        payer, that payer's flows to payees it alone paid alerted money (a fan-out); neither
        end a hub. Each alert looks again at the flows of both its parties, so a flow into an
        account links rings as soon as the account pays on, whichever alert says so."""
        at = alert.ts_ms
        flows = set()
        for account in (alert.payer, alert.payee):
            flows |= {(payer, account) for payer in self._near(account, "i", at)}
            flows |= {(account, payee) for payee in self._near(account, "o", at)}
        splitter = alert.payer if alert.suspect == alert.payer else None
        return sorted(
            (payer, payee) for payer, payee in flows
            if (self._passes_on(payee, at)
                or (payer == splitter and self._near(payee, "i", at).keys() == {payer}))
            and not self._hub(payer, at) and not self._hub(payee, at)
        )  # fmt: skip

    def _merge(self, cases: list[CaseRecord]) -> None:
        root, *absorbed = sorted(cases, key=lambda c: (c.first_ts_ms, c.case_id))
        for other in absorbed:
            root.absorb(other)
            other.merged_into = root.case_id
            self._change(Merge(other.case_id, root.case_id))
        self._change(Summary(root))
