"""One micro-batch, from raw message values to stored alerts; no Kafka here.

The streaming worker and `fraudwatch backtest` both run this, with the Redis or the in-memory
state store, which is why they raise the same alerts for the same input order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import msgspec

from models.alerts import Alert, StoredAlert, rfc3339_now
from models.events import (
    AccountProfile,
    EventTimeBounds,
    InvalidEvent,
    Transfer,
    parse_account,
    parse_transfer,
)
from models.features import (
    MS_PER_DAY,
    NOT_LISTED,
    UNKNOWN,
    Features,
    ListedParties,
    Taint,
    derive_features,
)
from models.scorer import Scorer
from models.suppression import SuppressedHit, Suppressions
from models.taint import TaintMark
from streams.failures import Failure, classify, describe
from streams.propagation import MarksByAccount, score_in_order
from streams.state.base import PreparedTransfers, SentTransfers, StateStore, TransferFacts

# What a message carries: the edge that consumes it (the worker by topic, a replay by file)
# says so; the batch routes on it and never on a topic's name.
MessageKind = Literal["transfer", "profile"]


@dataclass(frozen=True, slots=True)
class Message:
    """A consumed record, reduced to what the batch needs; `topic`, `partition`, `offset`,
    `key` and `headers` say where it came from and travel with its dead letter."""

    kind: MessageKind
    topic: str
    partition: int
    offset: int
    value: bytes | None
    # The transfer `value` decodes to, or why it breaks the contract, when the edge already
    # decoded it (the worker does, to place it in event-time order); None: decode it here.
    parsed: Transfer | InvalidEvent | None = None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


# A message that broke no rule of the contract but could not be processed (found by retrying
# its batch one message at a time); its dead letter says why.
PROCESSING_FAILED = "processing_failed"
# The dead-letter code of a transfer whose id another transfer already has.
DUPLICATE_TRANSFER_ID = "duplicate_transfer_id"


def duplicate_reason(transfer_id: str) -> str:
    """Why a transfer whose id names another transfer is refused (dead letter, screening)."""
    return (f"`transfer_id` {transfer_id} already names another transfer (payer, payee, time, "
            "amount or currency differ); transfer ids must be unique")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that broke the contract, with its reason."""

    message: Message
    code: str
    reason: str


class AlertSink(Protocol):
    """Where alerts are kept; writing one twice keeps the first."""

    def put_alerts(
        self, alerts: Sequence[Alert], features: Sequence[Mapping[str, float]] | None = None
    ) -> list[StoredAlert]:
        """Store the alerts (with the feature vectors they were scored on, aligned, when
        given); for each, whether it was new and the version kept."""
        ...


@dataclass
class BatchOutcome:
    """What a batch did: alerts raised (new or re-raised, each as stored now), rejects,
    counts."""

    alerts: list[Alert] = field(default_factory=list)
    new_alerts: list[Alert] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    features: list[Features] = field(default_factory=list)
    # Alerts not raised because their pattern was dismissed for their suspect (first
    # deliveries only, so a redelivery does not count them twice).
    suppressed: list[SuppressedHit] = field(default_factory=list)
    first_deliveries: int = 0
    redeliveries: int = 0
    # The transfer ids of the batch that were only redelivered, first delivered before it (their
    # alerts, raised again, are no new ones, whatever a sink that does not remember them says).
    redelivered: set[str] = field(default_factory=set)
    # When the newest observation in force for the batch's transfers began.
    observed_since_ms: int = UNKNOWN

    def observation_days(self) -> float | None:
        """Event-time days from when the state began observing to the batch's latest
        transfer (None for a batch without transfers)."""
        if self.observed_since_ms == UNKNOWN or not self.transfers:
            return None
        latest = max(t.ts_ms for t in self.transfers)
        return max(0, latest - self.observed_since_ms) / MS_PER_DAY

    def add(self, other: BatchOutcome) -> None:
        """Append what another (later) part of the same batch did."""
        self.alerts += other.alerts
        self.new_alerts += other.new_alerts
        self.suppressed += other.suppressed
        self.rejected += other.rejected
        self.transfers += other.transfers
        self.features += other.features
        self.redelivered |= other.redelivered
        self.first_deliveries += other.first_deliveries
        self.redeliveries += other.redeliveries
        self.observed_since_ms = max(self.observed_since_ms, other.observed_since_ms)


@dataclass(frozen=True, slots=True)
class StagedBatch:
    """A batch validated and applied to state, not yet scored; `sources[i]` is the message
    `transfers[i]` came from."""

    transfers: list[Transfer]
    sources: list[Message]
    rejected: list[Rejected]
    facts: list[TransferFacts]

    def add(self, other: StagedBatch) -> StagedBatch:
        """This batch followed by another."""
        return StagedBatch(self.transfers + other.transfers, self.sources + other.sources,
                           self.rejected + other.rejected, self.facts + other.facts)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch validated and encoded for state, not yet sent."""

    state: StateStore
    transfers: list[Transfer]
    sources: list[Message]
    rejected: list[Rejected]
    profiles: list[AccountProfile]
    prepared: PreparedTransfers

    def send(self) -> SentBatch:
        """Apply its profile updates, claim its transfer ids, then start applying its
        transfers (once). A transfer whose id another transfer holds is rejected instead:
        counted, it would add a payment that may not exist, and its alert would carry the
        other one's id (the contract makes ids unique)."""
        self.state.apply_profiles(self.profiles)
        taken = self.state.claim_transfer_ids(self.transfers)
        if not any(taken):
            return SentBatch(self.transfers, self.sources, self.rejected, self.prepared.send())
        kept = [i for i, held in enumerate(taken) if not held]
        transfers = [self.transfers[i] for i in kept]
        rejected = self.rejected + [
            Rejected(source, DUPLICATE_TRANSFER_ID, duplicate_reason(t.transfer_id))
            for t, source, held in zip(self.transfers, self.sources, taken, strict=True)
            if held
        ]
        return SentBatch(transfers, [self.sources[i] for i in kept], rejected,
                         self.state.prepare_transfers(transfers).send())  # fmt: skip


@dataclass(frozen=True, slots=True)
class SentBatch:
    """A batch validated and on its way into state."""

    transfers: list[Transfer]
    sources: list[Message]
    rejected: list[Rejected]
    sent: SentTransfers

    def applied(self) -> StagedBatch:
        """Wait until its state is applied (once)."""
        return StagedBatch(self.transfers, self.sources, self.rejected, self.sent.facts())


class WatchlistSource(Protocol):
    """Tells, per transfer, its parties on a watchlist (refreshing at most once per call)."""

    def hits(self, transfers: Sequence[Transfer]) -> list[ListedParties]:
        """Listed parties of each transfer at its event time, in input order."""
        ...


class SuppressionSource(Protocol):
    """The suppressions of dismissed patterns in force, and where to record their hits."""

    def current(self) -> Suppressions:
        """The suppressions in force (refreshing at most once per call)."""
        ...

    def record(self, hits: Sequence[SuppressedHit]) -> None:
        """Record suppressed hits for the accounts' views (idempotent per transfer)."""
        ...


def wall_clock_ms() -> int:
    """Milliseconds since the epoch by this machine's clock."""
    return time.time_ns() // 1_000_000


class BatchProcessor:
    """Validates, updates state, scores and stores the alerts of one batch.

    Without `watchlists` (backtest, training) no party counts as listed, and without
    `suppressions` no dismissed pattern is suppressed: both are investigators' and outside
    knowledge, not history. Event times are checked against `time_bounds` on the `now_ms`
    clock.
    """

    def __init__(
        self,
        state: StateStore,
        sink: AlertSink,
        scorer: Scorer,
        clock: Callable[[], str] = rfc3339_now,
        watchlists: WatchlistSource | None = None,
        time_bounds: EventTimeBounds | None = None,
        now_ms: Callable[[], int] = wall_clock_ms,
        suppressions: SuppressionSource | None = None,
    ) -> None:
        self.state = state
        self.sink = sink
        self.scorer = scorer
        self._clock = clock
        self.watchlists = watchlists
        self.time_bounds = time_bounds or EventTimeBounds()
        self._now_ms = now_ms
        self.suppressions = suppressions
        # The marks of the last batch finished (see `streams.propagation`).
        self._carried: MarksByAccount = {}

    def process(self, messages: Sequence[Message]) -> BatchOutcome:
        """Process messages in the given order (profiles before the batch's transfers)."""
        return self.finish(self.apply_state(messages))

    def apply_state(self, messages: Sequence[Message]) -> StagedBatch:
        """Validate the batch and apply it to state: the first half of `process`."""
        return self.prepare_state(messages).send().applied()

    def prepare_state(self, messages: Sequence[Message]) -> PreparedBatch:
        """Validate the batch and encode its state updates, without I/O: the worker does this
        while the previous batch is still being applied, then sends it, and scores the
        previous batch while state applies this one (see `StateStore.prepare_transfers`)."""
        transfers: list[Transfer] = []
        sources: list[Message] = []
        rejected: list[Rejected] = []
        profiles: list[AccountProfile] = []
        now_ms = self._now_ms()
        for message in messages:
            try:
                if message.value is None:
                    raise InvalidEvent("empty", "message has no value")
                if message.kind == "transfer":
                    if isinstance(message.parsed, InvalidEvent):
                        raise message.parsed
                    transfer = (message.parsed if message.parsed is not None
                                else parse_transfer(message.value, self.scorer.rates,
                                                    self.scorer.local_zone))  # fmt: skip
                    self.time_bounds.check(transfer.ts_ms, now_ms)
                    transfers.append(transfer)
                    sources.append(message)
                else:
                    profile = parse_account(message.value)
                    if profile.opened_at_ms is not None:
                        self.time_bounds.check_opened_at(profile.opened_at_ms, now_ms)
                    profiles.append(profile)
            except InvalidEvent as invalid:
                rejected.append(Rejected(message, invalid.code, invalid.reason))
        prepared = self.state.prepare_transfers(transfers)
        return PreparedBatch(self.state, transfers, sources, rejected, profiles, prepared)

    def finish(self, staged: StagedBatch) -> BatchOutcome:
        """Score a batch whose state is applied, mark the payees of its transfers that
        alerted and store its alerts (safe to repeat)."""
        outcome, self._carried = self._finish(staged, self._carried)
        return outcome

    def _finish(
        self, staged: StagedBatch, carried: MarksByAccount
    ) -> tuple[BatchOutcome, dict[str, list[TaintMark]]]:
        """`finish` with the marks carried from the batch before; the batch's own marks."""
        facts = staged.facts
        outcome = BatchOutcome(
            rejected=staged.rejected,
            transfers=staged.transfers,
            observed_since_ms=max((f.observed_since_ms for f in facts), default=UNKNOWN),
        )
        transfers = outcome.transfers
        listed = (
            self.watchlists.hits(transfers)
            if self.watchlists is not None
            else [NOT_LISTED] * len(transfers)
        )
        created_at = self._clock()

        def featurize(i: int, taint: Taint) -> Features:
            f = facts[i]
            return derive_features(transfers[i], f.payer, f.payee, f.entities, listed[i],
                                   f.observed_since_ms, taint)  # fmt: skip

        def score(indices: Sequence[int], vectors: Sequence[Features]) -> list[Alert | None]:
            return self.scorer.alerts([transfers[i] for i in indices], vectors, created_at)

        outcome.features, raised, marks = score_in_order(
            transfers,
            [(source.partition, source.offset) for source in staged.sources],
            [f.payer_marks for f in facts],
            carried,
            featurize,
            score,
        )
        # Before the batch commits: a restart re-scores it and writes the same marks again.
        self.state.put_marks([(payee, mark) for payee, kept in marks.items() for mark in kept])
        delivered = list(zip(transfers, facts, strict=True))
        first = {t.transfer_id for t, f in delivered if f.first_delivery}
        outcome.redelivered = {t.transfer_id for t, f in delivered if not f.first_delivery} - first
        outcome.first_deliveries = len(first)
        outcome.redeliveries = len(facts) - len(first)
        if self.suppressions is not None and any(raised):
            outcome.suppressed = self._suppress(raised, outcome.features, facts)
        unique: dict[str, tuple[Alert, Features]] = {}
        for alert, vector in zip(raised, outcome.features, strict=True):
            if alert is not None:
                unique.setdefault(alert.alert_id, (alert, vector))
        stored = self.sink.put_alerts(
            [alert for alert, _ in unique.values()], [vector for _, vector in unique.values()]
        )
        outcome.alerts = [kept.alert for kept in stored]
        outcome.new_alerts = [kept.alert for kept in stored if kept.new]
        return outcome, marks

    def _suppress(
        self,
        raised: list[Alert | None],
        features: Sequence[Features],
        facts: Sequence[TransferFacts],
    ) -> list[SuppressedHit]:
        """Drop (in place) the alerts whose pattern is suppressed for their suspect; record
        them; return those of first deliveries."""
        assert self.suppressions is not None
        in_force = self.suppressions.current()
        hits, first = [], []
        for index, (alert, vector) in enumerate(zip(raised, features, strict=True)):
            if alert is not None and (hit := in_force.suppressed(alert, vector)) is not None:
                raised[index] = None
                hits.append(hit)
                if facts[index].first_delivery:
                    first.append(hit)
        self.suppressions.record(hits)
        return first

    def apply_state_isolated(self, messages: Sequence[Message]) -> StagedBatch:
        """`apply_state` one message at a time, for a batch that failed for good as a whole:
        a message whose own update fails for good is rejected (`processing_failed`) and the
        others go through. A transient failure still raises (the caller retries)."""
        staged = StagedBatch([], [], [], [])
        for message in messages:
            try:
                staged = staged.add(self.apply_state([message]))
            except Exception as error:
                if classify(error) is Failure.TRANSIENT:
                    raise
                reason = f"its state update failed: {describe(error)}"
                staged = staged.add(
                    StagedBatch([], [], [Rejected(message, PROCESSING_FAILED, reason)], [])
                )
        return staged

    def finish_isolated(self, staged: StagedBatch) -> BatchOutcome:
        """`finish` one transfer at a time, for a batch whose scoring failed for good as a
        whole: a transfer whose own scoring fails for good is rejected (`processing_failed`)."""
        outcome = BatchOutcome(rejected=list(staged.rejected))
        # Each transfer sees the marks of the batch before and of those before it here.
        marks: dict[str, list[TaintMark]] = {k: list(v) for k, v in self._carried.items()}
        own: dict[str, list[TaintMark]] = {}
        for transfer, source, facts in zip(
            staged.transfers, staged.sources, staged.facts, strict=True
        ):
            try:
                part, added = self._finish(StagedBatch([transfer], [source], [], [facts]), marks)
            except Exception as error:
                if classify(error) is Failure.TRANSIENT:
                    raise
                reason = f"it could not be scored: {describe(error)}"
                outcome.rejected.append(Rejected(source, PROCESSING_FAILED, reason))
                continue
            outcome.add(part)
            for payee, kept in added.items():
                marks.setdefault(payee, []).extend(kept)
                own.setdefault(payee, []).extend(kept)
        self._carried = own
        return outcome


class CaseGrouping(Protocol):
    """Groups alerts into cases as they are stored (idempotent per alert)."""

    def assign(self, alerts: Sequence[Alert]) -> dict[str, str]:
        """Group the alerts not grouped yet, in order; each alert's case id."""
        ...


class CasedAlertSink:
    """Stores alerts, then groups them into cases: every alert it returns names its case."""

    def __init__(self, alerts: AlertSink, cases: CaseGrouping) -> None:
        self.alerts = alerts
        self.cases = cases

    def put_alerts(
        self, alerts: Sequence[Alert], features: Sequence[Mapping[str, float]] | None = None
    ) -> list[StoredAlert]:
        """Store the alerts (see `AlertSink`) and group them; each as kept, with its case."""
        stored = self.alerts.put_alerts(alerts, features)
        cased = self.cases.assign([kept.alert for kept in stored])
        return [
            StoredAlert(kept.new, msgspec.structs.replace(
                kept.alert, case_id=cased.get(kept.alert.alert_id)
            ))
            for kept in stored
        ]  # fmt: skip


class MemoryAlertSink:
    """Alerts kept in a dict, first write wins (backtest and tests)."""

    def __init__(self) -> None:
        self.alerts: dict[str, Alert] = {}

    def put_alerts(
        self, alerts: Sequence[Alert], features: Sequence[Mapping[str, float]] | None = None
    ) -> list[StoredAlert]:
        """Store new alerts (features are not kept here); each as kept, and whether new."""
        stored = []
        for alert in alerts:
            new = alert.alert_id not in self.alerts
            kept = self.alerts.setdefault(alert.alert_id, alert)
            stored.append(StoredAlert(new, kept))
        return stored
