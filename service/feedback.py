"""What an investigator's decision changes next, and the retro-hunt a new listing starts.

- `confirm_fraud` lists the alert's suspect account on the account watchlist (source
  `investigation`, reason naming the alert), unless it is listed already (an outside listing
  is never replaced); screening then blocks payments to it, its counterparties' risk rises one
  hop out, and the listing's retro-hunt flags its past transfers.
- `restore` (an appeal upheld) removes that listing, unless another alert still confirms the
  account as fraud; a listing from another source is never removed. The retro-hunt alerts the
  removed listing raised, and nobody has decided yet, are dismissed with it (by `fraudwatch`,
  role `system`, the note naming the appeal): they said only that the account was listed, and
  left open they kept the wrongly restricted customer at high risk for every bank.
- a move to `dismissed` (`dismiss`, or `restore`) suppresses each of the alert's reasons for
  its suspect account for `FRAUDWATCH_SUPPRESS_DAYS` (a watchlist reason never: a listed party
  always alerts).

The API applies them as it records the decision, and the event reader beside each worker
applies them from the alert event log (`alert.updated`) when the API did not (it crashed
mid-way): whoever comes first claims the move (one Redis key per alert and move, for a
while), applies its consequences and keeps what they were, so the other reports the same and
nothing is applied twice; a claim its holder never finished expires and is taken over. Every
consequence is idempotent besides.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import cast

import orjson

from models.alerts import Alert, SeverityBands, rfc3339_now
from models.features import MS_PER_DAY
from models.retro import listing_words, raised_by, retro_alert
from models.suppression import suppressions_for
from models.watchlist import WatchlistEntry, now_ms
from models.workflow import Actor
from streams.batch import AlertSink
from streams.state.alert_store import AlertStore, index_key
from streams.state.pipelines import AnyRedis
from streams.state.retro_hunt import past_transfers
from streams.state.suppressions import SuppressionStore
from streams.state.watchlists import WatchlistStore

log = logging.getLogger("fraudwatch.feedback")

SOURCE = "investigation"
# A move's consequences are claimed for this long (then another may apply them), and what
# they were is kept this long for the other to read.
CLAIM_S = 60
KEPT_S = 86_400
_CLAIMED = b"claimed"
# Alerts of an account read to find another that still confirms it (newest first).
_CONFIRMING_SCAN = 2000
# Who takes the moves a decision entails (the withdrawal of a lifted listing's alerts).
SYSTEM = Actor("fraudwatch", "fraudwatch", "system")
# Statuses no one has decided on.
UNDECIDED = ("open", "escalated")


def listing_reason(alert_id: str) -> str:
    """The reason an investigation listing gives: the alert that confirmed it."""
    return f"confirmed fraud in alert {alert_id}"


@dataclass(frozen=True, slots=True)
class Consequences:
    """What a decision changed: the account listed or unlisted, the reasons suppressed, and
    the past transfers the new listing flagged."""

    listed: str | None = None
    unlisted: str | None = None
    suppressed: tuple[str, ...] = ()
    retro_alerts: int = 0
    # The retro-hunt alerts of a lifted listing, dismissed with it.
    withdrawn_alerts: int = 0

    def watchlist_changes(self, decision: str) -> list[str]:
        """The changes to the account watchlist, in the audit log's words (`decision`: the
        action and the alert that made them)."""
        return [
            f"watchlist account: entry {change} ({account}) by {decision}"
            for change, account in (("added", self.listed), ("removed", self.unlisted))
            if account is not None
        ]


class ConsequencesPending(Exception):
    """Another process holds the claim on a move's consequences and has not finished."""


def claim_key(alert_id: str, move: int) -> str:
    """Who applies one move's consequences, then what they were."""
    return f"fw:{{fb}}:{alert_id}:{move}"


class RetroHunt:
    """Flags the retained past transfers of newly listed accounts as `watchlist_retro`
    alerts, written through `sink` (which stores them idempotently and groups them into
    cases)."""

    def __init__(self, client: AnyRedis, sink: AlertSink, bands: SeverityBands) -> None:
        self._redis = client
        self._sink = sink
        self._bands = bands

    def hunt(self, entries: Sequence[WatchlistEntry]) -> int:
        """Raise the alerts for the entries' accounts; returns how many are new. Devices,
        phones and IPs are not hunted: state keeps which accounts used one, not which of
        their transfers did."""
        listed = {e.value: e for e in entries if e.kind == "account"}
        if not listed:
            return 0
        created_at = rfc3339_now()
        alerts: dict[str, Alert] = {}
        for account, records in past_transfers(self._redis, list(listed)).items():
            entry = listed[account]
            words = listing_words(entry.source, entry.reason)
            for r in records:
                if r.currency is None:
                    continue  # a record from before currencies were kept cannot make an alert
                alert = retro_alert(
                    r.transfer_id, r.src, r.dst, r.ts_ms, r.amount_minor, r.currency,
                    account, words, self._bands, created_at,
                )  # fmt: skip
                alerts.setdefault(alert.alert_id, alert)
        ordered = sorted(alerts.values(), key=lambda a: (a.ts_ms, a.alert_id))
        new = sum(stored.new for stored in self._sink.put_alerts(ordered))
        if new:
            log.info("retro-hunt raised alerts", extra={"event": "retro_hunt", "alerts": new,
                                                        "accounts": len(listed)})  # fmt: skip
        return new


class Feedback:
    """Applies the consequences of workflow moves (see the module docstring)."""

    def __init__(
        self,
        client: AnyRedis,
        alerts: AlertStore,
        retro: RetroHunt,
        suppress_days: int,
    ) -> None:
        self._redis = client
        self._alerts = alerts
        self._lists = WatchlistStore(client)
        self._suppressions = SuppressionStore(client)
        self._retro = retro
        self._suppress_ms = suppress_days * MS_PER_DAY

    def after_move(
        self, alert_id: str, action: str, to_status: str, move: int, wait_s: float = 10.0
    ) -> Consequences:
        """The consequences of the alert's `move`-th move (`action`, to `to_status`): applied
        now if no one claimed them, else as the claimant applied them (waiting up to `wait_s`
        for it; `ConsequencesPending` when it has not finished by then)."""
        key = claim_key(alert_id, move)
        if self._redis.set(key, _CLAIMED, nx=True, ex=CLAIM_S):
            done = self._apply(alert_id, action, to_status)
            self._redis.set(key, orjson.dumps(asdict(done)), ex=KEPT_S)
            return done
        deadline = time.monotonic() + wait_s
        while True:
            kept = cast(bytes | None, self._redis.get(key))
            if kept is None:  # the claim expired unfinished: take it over
                return self.after_move(alert_id, action, to_status, move, wait_s)
            if kept != _CLAIMED:
                data = orjson.loads(kept)
                return Consequences(
                    data["listed"], data["unlisted"], tuple(data["suppressed"]),
                    data["retro_alerts"], data.get("withdrawn_alerts", 0),
                )  # fmt: skip
            if time.monotonic() >= deadline:
                raise ConsequencesPending(key)
            time.sleep(0.05)

    def _apply(self, alert_id: str, action: str, to_status: str) -> Consequences:
        """Apply the consequences (each idempotent). None once the alert has moved on
        since: consequences follow where it stands now (a confirmation read late from the
        event log does not list again what an upheld appeal has lifted meanwhile)."""
        alert = self._alerts.get(alert_id)
        if alert is None or alert.suspect_account is None or alert.status != to_status:
            return Consequences()
        if action == "confirm_fraud":
            return self._confirmed(alert)
        unlisted, withdrawn = None, 0
        suppressed: tuple[str, ...] = ()
        if action == "restore":
            account = cast(str, alert.suspect_account)
            unlisted = self._unlist(account)
            # Lifted now or before a crash; an account listed still (another source replaced
            # the listing) keeps what its listing flagged.
            if self._lists.get("account", account) is None:
                withdrawn = self._withdraw(account, alert.alert_id)
        if to_status == "dismissed" and self._suppress_ms > 0:
            at = now_ms()
            entries = suppressions_for(alert, at + self._suppress_ms, at)
            self._suppressions.put(entries)  # kept as they are if this alert put them already
            suppressed = tuple(entry.rule for entry in entries)
        return Consequences(unlisted=unlisted, suppressed=suppressed, withdrawn_alerts=withdrawn)

    def _confirmed(self, alert: Alert) -> Consequences:
        account = cast(str, alert.suspect_account)
        at = now_ms()
        entry = WatchlistEntry("account", account, account, SOURCE,
                               listing_reason(alert.alert_id), at)  # fmt: skip
        if not self._lists.put_if_absent(entry):
            return Consequences()
        return Consequences(listed=account, retro_alerts=self._retro.hunt([entry]))

    def _unlist(self, account: str) -> str | None:
        """The account, once its investigation listing is removed (None: kept, or none)."""
        entry = self._lists.get("account", account)
        if entry is None or entry.source != SOURCE or self._still_confirmed(account):
            return None
        return account if self._lists.delete("account", account) else None

    def _withdraw(self, account: str, restored_id: str) -> int:
        """Dismiss the account's undecided retro-hunt alerts that an investigation listing
        raised, once the account is listed no more; how many."""
        raised = [
            a.alert_id
            for a in self._alerts.get_many(self._recent_alert_ids(account))
            if a.status in UNDECIDED and a.suspect_account == account and raised_by(a, SOURCE)
        ]
        if not raised:
            return 0
        note = (f"withdrawn: raised only by the account's listing after a confirmed fraud, "
                f"lifted when the appeal on alert {restored_id} was upheld")  # fmt: skip
        results = self._alerts.apply_many(raised, "dismiss", SYSTEM, note, rfc3339_now())
        return sum(result.outcome == "applied" for result in results)

    def _recent_alert_ids(self, account: str) -> list[str]:
        """The ids of the account's newest alerts (newest first)."""
        return [
            member.decode()
            for member in cast(list[bytes], self._redis.zrevrange(
                index_key("account", account), 0, _CONFIRMING_SCAN - 1
            ))
        ]  # fmt: skip

    def _still_confirmed(self, account: str) -> bool:
        """Whether another alert suspecting the account is confirmed (or under appeal)."""
        ids = self._recent_alert_ids(account)
        if not ids:
            return False
        pipe = self._redis.pipeline(transaction=False)
        for status in ("confirmed", "appealed"):
            pipe.zmscore(index_key("status", status), ids)
        confirmed_scores, appealed_scores = pipe.execute()
        held = [
            alert_id
            for alert_id, c, a in zip(ids, confirmed_scores, appealed_scores, strict=True)
            if c is not None or a is not None
        ]
        return any(a.suspect_account == account for a in self._alerts.get_many(held))

