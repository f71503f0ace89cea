"""One micro-batch, from raw message values to stored alerts; no Kafka here.

The streaming worker and `fraudwatch backtest` both run this, with the Redis or the in-memory
state store, which is why they raise the same alerts for the same input order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from models.alerts import Alert, rfc3339_now
from models.events import AccountProfile, InvalidEvent, Transfer, parse_account, parse_transfer
from models.features import Features, derive_features
from models.scorer import Scorer
from streams.state.base import PreparedTransfers, SentTransfers, StateStore, TransferFacts


@dataclass(frozen=True, slots=True)
class Message:
    """A consumed record, reduced to what the batch needs."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


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
    ) -> list[bool]:
        """Store the alerts (with the feature vectors they were scored on, aligned, when
        given); True for each one that was new."""
        ...


@dataclass
class BatchOutcome:
    """What a batch did: alerts raised (new or re-raised), rejects, counts."""

    alerts: list[Alert] = field(default_factory=list)
    new_alerts: list[Alert] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    features: list[Features] = field(default_factory=list)
    first_deliveries: int = 0
    redeliveries: int = 0


@dataclass(frozen=True, slots=True)
class StagedBatch:
    """A batch validated and applied to state, not yet scored."""

    transfers: list[Transfer]
    rejected: list[Rejected]
    facts: list[TransferFacts]


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch validated and encoded for state, not yet sent."""

    state: StateStore
    transfers: list[Transfer]
    rejected: list[Rejected]
    profiles: list[AccountProfile]
    prepared: PreparedTransfers

    def send(self) -> SentBatch:
        """Apply its profile updates, then start applying its transfers (once)."""
        self.state.apply_profiles(self.profiles)
        return SentBatch(self.transfers, self.rejected, self.prepared.send())


@dataclass(frozen=True, slots=True)
class SentBatch:
    """A batch validated and on its way into state."""

    transfers: list[Transfer]
    rejected: list[Rejected]
    sent: SentTransfers

    def applied(self) -> StagedBatch:
        """Wait until its state is applied (once)."""
        return StagedBatch(self.transfers, self.rejected, self.sent.facts())


class WatchlistSource(Protocol):
    """Counts, per transfer, its parties on a watchlist (refreshing at most once per call)."""

    def hits(self, transfers: Sequence[Transfer]) -> list[int]:
        """Listed parties of each transfer at its event time, in input order."""
        ...


class BatchProcessor:
    """Validates, updates state, scores and stores the alerts of one batch.

    Without `watchlists` (backtest, training) no party counts as listed.
    """

    def __init__(
        self,
        state: StateStore,
        sink: AlertSink,
        scorer: Scorer,
        transfers_topic: str,
        clock: Callable[[], str] = rfc3339_now,
        watchlists: WatchlistSource | None = None,
    ) -> None:
        self.state = state
        self.sink = sink
        self.scorer = scorer
        self.transfers_topic = transfers_topic
        self._clock = clock
        self.watchlists = watchlists

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
        rejected: list[Rejected] = []
        profiles: list[AccountProfile] = []
        for message in messages:
            try:
                if message.value is None:
                    raise InvalidEvent("empty", "message has no value")
                if message.topic == self.transfers_topic:
                    transfers.append(parse_transfer(message.value))
                else:
                    profiles.append(parse_account(message.value))
            except InvalidEvent as invalid:
                rejected.append(Rejected(message, invalid.code, invalid.reason))
        prepared = self.state.prepare_transfers(transfers)
        return PreparedBatch(self.state, transfers, rejected, profiles, prepared)

    def finish(self, staged: StagedBatch) -> BatchOutcome:
        """Score a batch whose state is applied and store its alerts (safe to repeat)."""
        outcome = BatchOutcome(rejected=staged.rejected, transfers=staged.transfers)
        facts = staged.facts
        listed = (
            self.watchlists.hits(outcome.transfers)
            if self.watchlists is not None
            else [0] * len(outcome.transfers)
        )
        outcome.features = [
            derive_features(t, f.payer, f.payee, f.entities, hits, f.observed_since_ms)
            for t, f, hits in zip(outcome.transfers, facts, listed, strict=True)
        ]
        outcome.first_deliveries = sum(f.first_delivery for f in facts)
        outcome.redeliveries = len(facts) - outcome.first_deliveries
        raised = self.scorer.alerts(outcome.transfers, outcome.features, self._clock())
        unique: dict[str, tuple[Alert, Features]] = {}
        for alert, vector in zip(raised, outcome.features, strict=True):
            if alert is not None:
                unique.setdefault(alert.alert_id, (alert, vector))
        outcome.alerts = [alert for alert, _ in unique.values()]
        fresh = self.sink.put_alerts(outcome.alerts, [vector for _, vector in unique.values()])
        outcome.new_alerts = [a for a, new in zip(outcome.alerts, fresh, strict=True) if new]
        return outcome


class MemoryAlertSink:
    """Alerts kept in a dict, first write wins (backtest and tests)."""

    def __init__(self) -> None:
        self.alerts: dict[str, Alert] = {}

    def put_alerts(
        self, alerts: Sequence[Alert], features: Sequence[Mapping[str, float]] | None = None
    ) -> list[bool]:
        """Store new alerts (features are not kept here); True for each one that was new."""
        flags = []
        for alert in alerts:
            new = alert.alert_id not in self.alerts
            if new:
                self.alerts[alert.alert_id] = alert
            flags.append(new)
        return flags
