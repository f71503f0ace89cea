"""Suppression of dismissed patterns. Pure: no I/O.

When an investigator dismisses an alert as a false positive, each of its reasons (each rule
that fired, and the model) is suppressed for the account the alert suspects, for a while
(`FRAUDWATCH_SUPPRESS_DAYS`). A later alert on the same account is then not raised when every
one of its reasons is suppressed there, unless the evidence has grown by half again: one of
the volumes the dismissed alert showed (a count of payees or payers, an amount) is now at least
1.5 times what it was. A new kind of evidence (another rule) or more of the same raises it.

Suppression is an investigator's decision, like a watchlist: the worker applies it, a
backtest (which replays history without anyone's decisions) does not.

A party on a watchlist is outside knowledge, not a pattern: a transfer with a listed party
always alerts, whatever was dismissed, and a dismissal suppresses none of an alert's watchlist
reasons (lifting a listing is the watchlist's business: `restore`, or an admin).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from models.alerts import Alert
from models.features import VOLUME_FEATURES, Features

GROWTH = 1.5  # evidence "grown by half again"
# The evidence a watchlist reason shows, and the feature a transfer's listed parties give.
LISTED_PARTIES = "watchlist_hits"


def _listed(values: Mapping[str, object]) -> bool:
    """Whether evidence or features show a party on a watchlist."""
    count = values.get(LISTED_PARTIES)
    return isinstance(count, int | float) and count >= 1


@dataclass(frozen=True, slots=True)
class Suppression:
    """One rule (or `model`) suppressed for one account until `until_ms` (event time), with
    the evidence the dismissed alert showed for it."""

    account: str
    rule: str
    until_ms: int
    evidence: Mapping[str, float]
    alert_id: str
    added_at_ms: int

    def outgrown_by(self, features: Features) -> bool:
        """Whether a volume the dismissed alert showed is now at least half again larger."""
        for name, before in self.evidence.items():
            if name not in VOLUME_FEATURES or not before or before <= 0:
                continue
            now = features.get(name, math.nan)
            if not math.isnan(now) and now >= GROWTH * before:
                return True
        return False


def suppressions_for(alert: Alert, until_ms: int, added_at_ms: int) -> list[Suppression]:
    """What dismissing `alert` suppresses: each of its reasons but those of a watchlist, for
    its suspect account, with the numeric evidence each showed (none for an alert without a
    suspect)."""
    if alert.suspect_account is None:
        return []
    return [
        Suppression(
            alert.suspect_account,
            reason.rule,
            until_ms,
            {k: float(v) for k, v in reason.evidence.items() if isinstance(v, int | float)},
            alert.alert_id,
            added_at_ms,
        )
        for reason in alert.reasons
        if not _listed(reason.evidence)
    ]


@dataclass(frozen=True, slots=True)
class SuppressedHit:
    """An alert that was not raised because its pattern was dismissed for its suspect."""

    account: str
    rules: tuple[str, ...]
    transfer_id: str
    ts_ms: int
    dismissed_alert_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Suppressions:
    """A snapshot of every suppression in force, by account and rule."""

    version: int = 0
    entries: Mapping[tuple[str, str], Suppression] = field(default_factory=dict)

    @classmethod
    def of(cls, version: int, entries: Iterable[Suppression]) -> Suppressions:
        """A snapshot from entries; of two for the same account and rule, the later wins."""
        table: dict[tuple[str, str], Suppression] = {}
        for entry in sorted(entries, key=lambda e: e.added_at_ms):
            table[(entry.account, entry.rule)] = entry
        return cls(version, table)

    def of_account(self, account: str) -> list[Suppression]:
        """The account's suppressions, by rule."""
        return sorted(
            (e for (a, _), e in self.entries.items() if a == account), key=lambda e: e.rule
        )

    def suppressed(self, alert: Alert, features: Features) -> SuppressedHit | None:
        """The suppressed hit this alert is, or None when it is to be raised: some reason of it
        is not suppressed for its suspect at its event time, or has outgrown its dismissal,
        or a party of the transfer is listed."""
        if not self.entries or alert.suspect_account is None or not alert.reasons:
            return None
        if _listed(features):
            return None
        matched = []
        for reason in alert.reasons:
            entry = self.entries.get((alert.suspect_account, reason.rule))
            if entry is None or alert.ts_ms >= entry.until_ms or entry.outgrown_by(features):
                return None
            matched.append(entry)
        return SuppressedHit(
            alert.suspect_account,
            tuple(reason.rule for reason in alert.reasons),
            alert.transfer_id,
            alert.ts_ms,
            tuple(sorted({entry.alert_id for entry in matched})),
        )
