"""Cases held in memory: the in-memory twin of the Redis case store (backtest, evaluation,
tests). It is the whole `CaseView` grouping reads, and applies each change as it is made."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from models.alerts import Alert
from models.cases import (
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
from models.watchlist import iso_ms


@dataclass
class MemoryCases:
    """Every case, its alerts and accounts, and what grouping reads."""

    settings: CaseSettings = field(default_factory=CaseSettings)
    alert_case: dict[str, str] = field(default_factory=dict)
    suspect_cases: dict[str, str] = field(default_factory=dict)
    party_cases: dict[str, str] = field(default_factory=dict)
    link_table: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    records: dict[str, CaseRecord] = field(default_factory=dict)
    case_alerts: dict[str, dict[str, int]] = field(default_factory=dict)  # alert → ts_ms
    case_accounts: dict[str, dict[str, bool]] = field(default_factory=dict)  # → suspect?

    def case_of_alert(self, alert_id: str) -> str | None:
        """The case an alert is in."""
        return self.alert_case.get(alert_id)

    def suspect_case(self, account: str) -> str | None:
        """The latest case suspecting the account."""
        return self.suspect_cases.get(account)

    def party_case(self, account: str) -> str | None:
        """The latest case the account is in."""
        return self.party_cases.get(account)

    def links(self, account: str, kind: str) -> Mapping[str, int]:
        """The account's alerted flows of one kind (see `CaseView.links`)."""
        return self.link_table.get((account, kind), {})

    def case(self, case_id: str) -> CaseRecord | None:
        """A case's summary."""
        return self.records.get(case_id)

    def apply(self, change: Change) -> None:
        """Apply one change of grouping."""
        if isinstance(change, Summary):
            self.records[change.record.case_id] = change.record
        elif isinstance(change, Suspect):
            self.suspect_cases[change.account] = change.case_id
        elif isinstance(change, Assign):
            self.alert_case[change.alert_id] = change.case_id
            self.case_alerts.setdefault(change.case_id, {})[change.alert_id] = change.ts_ms
        elif isinstance(change, Party):
            accounts = self.case_accounts.setdefault(change.case_id, {})
            accounts[change.account] = accounts.get(change.account, False) or change.suspect
            self.party_cases[change.account] = change.case_id
        elif isinstance(change, Link):
            self._link(change.payer, "o", change.payee, change.ts_ms)
            self._link(change.payee, "i", change.payer, change.ts_ms)
        elif isinstance(change, Merge):
            self._merge(change.absorbed, change.root)

    def _link(self, account: str, kind: str, party: str, ts_ms: int) -> None:
        links = self.link_table.setdefault((account, kind), {})
        links[party] = max(links.get(party, ts_ms), ts_ms)
        trim_links(links, ts_ms, self.settings.link_ms)

    def _merge(self, absorbed: str, root: str) -> None:
        for alert_id, ts in self.case_alerts.pop(absorbed, {}).items():
            self.alert_case[alert_id] = root
            self.case_alerts.setdefault(root, {})[alert_id] = ts
        into = self.case_accounts.setdefault(root, {})
        for account, suspect in self.case_accounts.pop(absorbed, {}).items():
            into[account] = into.get(account, False) or suspect
            if suspect and self.suspect_cases.get(account) == absorbed:
                self.suspect_cases[account] = root
            if self.party_cases.get(account) == absorbed:
                self.party_cases[account] = root

    def assign(self, alerts: Sequence[Alert]) -> dict[str, str]:
        """Group alerts as they are stored; each one's case id."""
        cased, _ = group(self, [CaseInput.of(a) for a in alerts], self.settings)
        return cased

    def open_cases(self) -> list[CaseRecord]:
        """Every case not merged into another, by first event time then id."""
        live = (r for r in self.records.values() if r.merged_into is None)
        return sorted(live, key=lambda r: (r.first_ts_ms, r.case_id))

    def documents(self) -> Iterator[dict[str, Any]]:
        """Every live case as a JSON-ready document (`fraudwatch backtest --cases-out`): its
        summary, its accounts (suspects first) and its alert ids by event time."""
        for record in self.open_cases():
            alerts = self.case_alerts.get(record.case_id, {})
            accounts = self.case_accounts.get(record.case_id, {})
            yield {
                "case_id": record.case_id,
                "status": record.status,
                "severity": record.severity,
                "priority": record.priority,
                "first_event_at": iso_ms(record.first_ts_ms),
                "last_event_at": iso_ms(record.last_ts_ms),
                "alert_count": record.alerts,
                "amount_at_risk": [
                    {"currency": c, "amount": f"{Decimal(m) / 100:.2f}"}
                    for c, m in sorted(record.amounts.items())
                ],
                "suspects": record.suspects,
                "accounts": [
                    {"account_id": a, "role": "suspect" if suspect else "party"}
                    for a, suspect in sorted(accounts.items(), key=lambda kv: (not kv[1], kv[0]))
                ],
                "alert_ids": sorted(alerts, key=lambda a: (alerts[a], a)),
            }
