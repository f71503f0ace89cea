"""`fraudwatch backtest` and `warmup` (CONTRACT.md §4): replay a file through rules, features
and model.

The replay runs the worker's own `BatchProcessor`: on the in-memory state store for a
backtest, which therefore raises exactly the alerts the streaming worker raises for the same
events in the same order; on the live (Redis) state for a warm-up, which loads history into it
and only counts the alerts it would have raised. Lines that break the contract are counted by
reason, as the worker's dead-letter topic would be.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import msgspec
import orjson

from models.alerts import Alert, StoredAlert, alert_encoder
from models.scorer import Scorer
from streams.batch import AlertSink, Rejected
from streams.replay import DEFAULT_BATCH_SIZE, replay
from streams.state.base import StateStore
from streams.state.case_memory import MemoryCases

# The contract lets events arrive up to 10 minutes out of order; a history further out of
# order (sorted by account, say) is counted into windows it does not belong to.
OUT_OF_ORDER_MS = 10 * 60_000
# How many invalid lines a summary names (the rest are counted by reason).
REJECTS_NAMED = 10


@dataclass
class BacktestSummary:
    """What a backtest saw and raised."""

    transfers: int = 0
    redeliveries: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    invalid_profiles: int = 0
    # The first REJECTS_NAMED invalid lines: where (record number), which id, and why.
    rejects_named: list[str] = field(default_factory=list)
    # Transfers more than OUT_OF_ORDER_MS older than one before them in the file.
    out_of_order: int = 0
    # The latest event time of a valid transfer (None: none was valid).
    latest_ms: int | None = None
    alerts: int = 0
    cases: int = 0
    severities: Counter[str] = field(default_factory=Counter)
    top_rules: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def lines(self, alerts_label: str = "alerts") -> list[str]:
        """A human-readable summary (`alerts_label` names the alert count)."""
        rate = self.alerts / self.transfers if self.transfers else 0.0
        out = [
            f"transfers scored: {self.transfers} ({self.redeliveries} repeated ids ignored)",
            f"{alerts_label}: {self.alerts} ({rate:.2%} of transfers)",
        ]
        if self.cases:
            out.append(f"cases: {self.cases} ({self.alerts / self.cases:.1f} alerts per case)")
        if self.severities:
            out.append("by severity: " + _counts(self.severities))
        if self.top_rules:
            out.append("by strongest reason: " + _counts(self.top_rules))
        invalid = sum(self.invalid.values())
        out.append(f"invalid lines: {invalid}" + (f" ({_counts(self.invalid)})" if invalid else ""))
        if self.invalid_profiles:
            out.append(f"invalid account lines: {self.invalid_profiles}")
        out.extend(f"  {named}" for named in self.rejects_named)
        if (unnamed := invalid + self.invalid_profiles - len(self.rejects_named)) > 0:
            out.append(f"  and {unnamed} more (records count non-blank lines from 1)")
        if self.out_of_order:
            out.append(
                f"warning: {self.out_of_order} transfers are more than "
                f"{OUT_OF_ORDER_MS // 60_000} minutes older than one before them in the file: "
                "the history is not in event-time order, and their windows count what came "
                "after them; sort it by ts"
            )
        took = f"took {self.seconds:.1f} s"
        if self.seconds > 0:
            took += f" ({(self.transfers + self.redeliveries) / self.seconds:,.0f} transfers/s)"
        out.append(took)
        return out


def _named(rejected: Rejected) -> str:
    """`transfers record 17 (tx-9): missing_field: ...`: where, which id when it has one, and
    why; never the line's content (it may hold phones, IPs and device ids)."""
    message = rejected.message
    kind = "accounts" if message.kind == "profile" else "transfers"
    field_name = "account_id" if message.kind == "profile" else "transfer_id"
    key = _id_of(message.value, field_name)
    which = f" ({key})" if key else ""
    return f"{kind} record {message.offset + 1}{which}: {rejected.code}: {rejected.reason}"


def _id_of(line: bytes | None, field_name: str) -> str | None:
    try:
        doc = orjson.loads(line or b"")
    except orjson.JSONDecodeError:
        return None
    value = doc.get(field_name) if isinstance(doc, dict) else None
    return value[:64] if isinstance(value, str) else None


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {n}" for key, n in counter.most_common())


class CountingAlertSink:
    """Keeps no alerts, only which ids were raised (so each counts once): a warm-up raises
    nothing, it only says what it would have raised."""

    def __init__(self) -> None:
        self.alert_ids: set[str] = set()

    def put_alerts(
        self, alerts: Sequence[Alert], features: Sequence[Mapping[str, float]] | None = None
    ) -> list[StoredAlert]:
        """Note each alert's id; each as given, new if its id was not seen before."""
        stored = []
        for alert in alerts:
            stored.append(StoredAlert(alert.alert_id not in self.alert_ids, alert))
            self.alert_ids.add(alert.alert_id)
        return stored


def write_cased_alerts(out: BinaryIO, alerts: Iterable[Alert], cases: MemoryCases) -> None:
    """Write the alerts, one JSON line each in the order given, each naming the case it is
    in at the end of the replay: a case merged into another later on (a ring found to be one)
    is named by the case it went into, as the API and `--cases-out` name it."""
    for alert in alerts:
        case_id = cases.case_of_alert(alert.alert_id)
        out.write(alert_encoder.encode(msgspec.structs.replace(alert, case_id=case_id)) + b"\n")


def run_backtest(
    transfers: Iterable[bytes],
    profiles: Iterable[bytes],
    scorer: Scorer,
    out: BinaryIO | None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    store: StateStore | None = None,
    sink: AlertSink | None = None,
    partition: int = 0,
) -> BacktestSummary:
    """Replay the lines (on a fresh in-memory state unless `store` is given), write each new
    alert as one JSON line to `out` (or only count it when `out` is None), and summarise.
    With a `sink` that groups alerts into cases (as the worker's does), each names its case."""
    summary = BacktestSummary()
    began = time.perf_counter()
    if sink is None and out is None:
        sink = CountingAlertSink()
    batches = replay(transfers, profiles, store=store, scorer=scorer, sink=sink,
                     batch_size=batch_size, partition=partition)  # fmt: skip
    for outcome in batches:
        summary.transfers += outcome.first_deliveries
        summary.redeliveries += outcome.redeliveries
        for rejected in outcome.rejected:
            if rejected.message.kind == "profile":
                summary.invalid_profiles += 1
            else:
                summary.invalid[rejected.code] += 1
            if len(summary.rejects_named) < REJECTS_NAMED:
                summary.rejects_named.append(_named(rejected))
        for transfer in outcome.transfers:
            latest_ms = summary.latest_ms
            if latest_ms is not None and transfer.ts_ms < latest_ms - OUT_OF_ORDER_MS:
                summary.out_of_order += 1
            summary.latest_ms = max(latest_ms or transfer.ts_ms, transfer.ts_ms)
        for alert in outcome.new_alerts:
            if alert.transfer_id in outcome.redelivered:
                continue  # raised at its first delivery, by this run or an earlier warm-up
            if out is not None:
                out.write(alert_encoder.encode(alert) + b"\n")
            summary.alerts += 1
            summary.severities[alert.severity] += 1
            summary.top_rules[alert.reasons[0].rule if alert.reasons else "none"] += 1
    summary.seconds = time.perf_counter() - began
    return summary
