"""The streaming worker: poll a micro-batch, process it, publish, then commit.

Offsets are committed only after state, alerts in Redis, alerts on Kafka and dead letters
have all succeeded, so a worker killed at any instant redelivers at most its last two batches
(one being scored, one being applied to state), and the idempotent state and alert writes make
that redelivery change nothing.

Nothing a message carries stops the loop: a failure of Redis or the broker is retried until
they are back (streams/failures.py tells the two kinds apart), and a batch that fails for good
is retried one message at a time, so that only the message at fault is dead-lettered.
"""

from __future__ import annotations

import gc
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Protocol, TypeVar

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata

from models.alerts import Alert, alert_encoder
from models.events import InvalidEvent, Transfer, parse_transfer
from streams import metrics
from streams.batch import (
    PROCESSING_FAILED,
    BatchOutcome,
    BatchProcessor,
    Message,
    MessageKind,
    PreparedBatch,
    Rejected,
    StagedBatch,
    wall_clock_ms,
)
from streams.dead_letter import DEFAULT_ORIGINAL_MAX_BYTES, dead_letter_value
from streams.event_time_merge import EventTimeMerge, PartitionClaims
from streams.failures import Failure, classify, describe
from streams.kafka_io import (
    close_consumer,
    group_coordinator_reachable,
    group_member_stable,
    report_partition_lag,
)
from streams.liveness import Liveness
from streams.rules_reload import RuleReloader

log = logging.getLogger("fraudwatch.worker")
# The Kafka header naming an alert record's event (`alert.created`, `alert.updated`).
EVENT_HEADER = "fraudwatch-event"


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Topic names and batching knobs the loop needs."""

    transfers_topic: str
    accounts_topic: str
    alerts_topic: str
    dlq_topic: str
    batch_size: int = 500
    batch_wait_ms: int = 10
    # How long the partitions wait for one whose records are on the broker but not here.
    partition_wait_s: float = 1.0
    # How long they wait for a partition no group member claimed (held by one that died): its
    # session timeout, as long again for the heartbeat that reports the rebalance (a third of
    # it) and a margin, and the rebalance, after which its partitions are handed out.
    member_wait_s: float = 51.0
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 5.0
    dlq_original_max_bytes: int = DEFAULT_ORIGINAL_MAX_BYTES
    # A group join taking longer than this (the rebalance timeout) is reported as stalled.
    rebalance_timeout_s: float = 30.0
    # How long a publish or a commit may wait on the broker before it counts as failed.
    broker_timeout_s: float = 30.0


# Transfers decoded while the event-time merge placed them, kept until they are polled (a
# bound for the records of partitions revoked meanwhile; a record's bytes never change, so a
# decoding kept for its offset stays right).
_DECODED_KEPT = 100_000


# A batch failing for good this many times in a row is retried one message at a time.
_PERMANENT_ATTEMPTS = 3

# How long an idle worker waits for a first record before it looks around (stop, rules,
# housekeeping, liveness) and waits again. A record ends the wait when it arrives, so this
# adds no latency; a poll every 10 ms (the batch wait) kept a worker with no traffic at a
# fifth of a core in the Kafka client's own work.
IDLE_WAIT_MS = 250


_Done = TypeVar("_Done")


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A polled batch, validated and encoded for state (or why that failed)."""

    messages: list[Message]
    started: float
    batch: PreparedBatch | BaseException


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A prepared batch on its way into state."""

    number: int
    prepared: _Prepared
    applied: Callable[[], StagedBatch]


class Companion(Protocol):
    """Work that runs beside the loop in a thread of its own, for as long as the worker runs
    (the export of alert events)."""

    def start(self) -> None:
        """Start it."""
        ...

    def stop(self) -> None:
        """Stop it and wait for it."""
        ...


def report_state_lost() -> None:
    """Say that Redis lost fraudwatch's state under this worker (`StateWatch`)."""
    metrics.STATE_LOST.inc()
    log.error(
        "Redis lost fraudwatch's state under this worker (layout marker gone): scoring goes on "
        "from empty windows and profiles; see deploy/RUNBOOK.md, FraudwatchStateLost",
        extra={"event": "state_lost"},
    )


def _alert_rule(alert: Alert) -> str:
    """The label an alert is counted under: its strongest rule, or `model` when no rule fired
    (operators watch rules; the model's reason is often the strongest)."""
    return next((r.rule for r in alert.reasons if r.rule != "model"), "model")


def _ends(messages: list[Message]) -> dict[TopicPartition, int]:
    """Per partition, the offset after a batch's last message."""
    return {TopicPartition(m.topic, m.partition): m.offset + 1 for m in messages}


class Worker:
    """Runs the consume → process → publish → commit loop until asked to stop."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        processor: BatchProcessor,
        options: WorkerOptions,
        on_batch: Callable[[BatchOutcome], None] | None = None,
        reloader: RuleReloader | None = None,
        housekeeping: Sequence[Callable[[], None]] = (),
        companion: Companion | None = None,
        claims: PartitionClaims | None = None,
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.companion = companion
        self.processor = processor
        self.options = options
        self.on_batch = on_batch
        self.reloader = reloader
        # Chores between batches (the retention purge, the state watch), each deciding
        # itself whether it is due.
        self.housekeeping = housekeeping
        self._stopping = False
        self._batch_number = 0
        # Per assigned partition, the offset after the last this worker committed, or before
        # its first commit the first offset it took: what a restart would read from.
        self._committed: dict[TopicPartition, int] = {}
        self._kinds: dict[str, MessageKind] = {
            options.transfers_topic: "transfer",
            options.accounts_topic: "profile",
        }
        self._liveness = Liveness(options.rebalance_timeout_s)
        self._decoded: dict[tuple[str, int, int], Transfer | InvalidEvent] = {}
        # Currencies without a rate met so far (said once each).
        self._unpriced: set[str] = set()
        self._merge = EventTimeMerge(
            consumer, self._event_time,
            buffer_records=options.batch_size, patience_s=options.partition_wait_s,
            timed_topics=frozenset(t for t, kind in self._kinds.items() if kind == "transfer"),
            claims=claims, member_patience_s=options.member_wait_s,
        )  # fmt: skip

    def _event_time(self, record: ConsumerRecord) -> int | None:
        """A transfer's event time. Profiles have none and go first, and so does a transfer
        that will be dead-lettered (its time outside the accepted range, or anything else
        wrong with it): a year-9999 time, or a valid one a day ahead on a message with a bad
        amount, must not hold its partition's later transfers back until every other one ran
        dry. The transfer is decoded once, here; the batch takes the result (`Message.parsed`)."""
        if self._kinds[record.topic] != "transfer" or record.value is None:
            return None
        try:
            scorer = self.processor.scorer
            parsed: Transfer | InvalidEvent = parse_transfer(record.value, scorer.rates,
                                                             scorer.local_zone)
        except InvalidEvent as invalid:
            parsed = invalid
        except Exception:  # a bug met by one record: the batch meets it again and says so
            return None
        if len(self._decoded) >= _DECODED_KEPT:
            self._decoded.clear()
        self._decoded[(record.topic, record.partition, record.offset)] = parsed
        if isinstance(parsed, InvalidEvent):
            return None
        at = parsed.ts_ms
        return at if self.processor.time_bounds.contains(at, wall_clock_ms()) else None

    def stop(self, *_: object) -> None:
        """Ask the loop to finish its current batch, commit and return."""
        self._stopping = True

    def install_signal_handlers(self, reload: Callable[[], None] | None = None) -> None:
        """SIGTERM / SIGINT stop gracefully; SIGHUP calls `reload` when given, else asks the
        rule reloader (if any) to reload before the next batch."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        if reload is None and self.reloader is not None:
            reload = self.reloader.request
        if reload is not None:

            def on_hup(_signum: int, _frame: FrameType | None) -> None:
                reload()

            signal.signal(signal.SIGHUP, on_hup)

    def run(self) -> int:
        """Loop until stopped; returns the process exit code (0 on a graceful stop).

        Two batches are in hand at once: batch N+1 is sent to Redis before batch N is scored,
        published and committed, so the worker's CPU and Redis's work overlap. N+1 is polled
        and encoded while Redis still applies N, but sent only after N's state went through,
        so every key still sees its updates in arrival order, and a crash redelivers both,
        idempotently.
        """
        model = self.processor.scorer.model
        if model is not None:
            metrics.MODEL_INFO.labels(model.name, model.version).set(1)
        # Exported at 0 from the start, so the first one shows as an increase (and the
        # runbook's rate of retries reads 0 rather than nothing).
        metrics.DLQ.labels(PROCESSING_FAILED)
        for failure in Failure:
            metrics.BATCH_RETRIES.labels(failure.value)
        log.info("worker started", extra={"event": "worker_started"})
        # Start-up's objects (model, rules, clients) live as long as the process: out of the
        # collector's sight, a full collection no longer walks them between batches.
        gc.freeze()
        if self.companion is not None:
            self.companion.start()
        in_flight: _InFlight | None = None
        while not self._stopping:
            if self.reloader is not None:
                self.reloader.between_batches()
            for chore in self.housekeeping:
                chore()
            # With a batch in flight, take only what is already fetched: waiting for more
            # would hold back that batch's alerts when traffic is light.
            prepared = self._prepare(self._poll(0 if in_flight else IDLE_WAIT_MS))
            if in_flight is None:
                in_flight = self._start(prepared)
            else:
                staged = self._applied(in_flight)
                if staged is None:
                    return self._close()
                ready, in_flight = in_flight, self._start(prepared)
                if not self._finish(ready, staged):
                    # Given up while stopping: committing the next batch would skip this one.
                    return self._close()
            self._report_lag()
        if in_flight is not None:
            staged = self._applied(in_flight)
            if staged is not None:
                self._finish(in_flight, staged)
        return self._close()

    def _close(self) -> int:
        if self.companion is not None:
            self.companion.stop()  # before the producer it publishes with is closed
        close_consumer(self.consumer)
        self.producer.flush(timeout=self.options.broker_timeout_s)
        self.producer.close(timeout=self.options.broker_timeout_s)
        log.info("worker stopped", extra={"event": "worker_stopped"})
        return 0

    def _poll(self, wait_ms: int) -> list[Message]:
        """Up to `batch_size` messages in event-time order across partitions, waiting at most
        `wait_ms` for the first and then at most the batch wait for more."""
        try:
            records = self._merge.poll(wait_ms, self.options.batch_size,
                                       fill_ms=self.options.batch_wait_ms)  # fmt: skip
        except KafkaError as error:
            # The broker, not a message: what was fetched is kept, the rest comes later.
            log.warning("poll failed", extra={"event": "poll_failed", "error": describe(error)})
            self._pause(self.options.retry_backoff_s)
            return []
        messages = self._messages(records)
        # A partition assigned since its last commit starts where the first record taken
        # of it is (the group's offset; no broker call). Steady state: no per-message work.
        if len(self._committed) < len(self.consumer.assignment()):
            for m in messages:
                self._committed.setdefault(TopicPartition(m.topic, m.partition), m.offset)
        return messages

    def _messages(self, records: list[ConsumerRecord]) -> list[Message]:
        """Polled records as the batch's messages, each transfer with its decoding (if the
        merge made one)."""
        kinds, decoded = self._kinds, self._decoded
        return [Message(kinds[r.topic], r.topic, r.partition, r.offset, r.value,
                        decoded.pop((r.topic, r.partition, r.offset), None),
                        r.key, tuple(r.headers or ()))
                for r in records]  # fmt: skip

    def _prepare(self, messages: list[Message]) -> _Prepared | None:
        """Validate and encode a polled batch (None when there is none); no I/O."""
        if not messages:
            return None
        started = time.perf_counter()
        try:
            batch: PreparedBatch | BaseException = self.processor.prepare_state(messages)
        except Exception as error:
            # Sending it fails with this error, which `_applied` handles like any other.
            batch = error
        return _Prepared(messages, started, batch)

    def _start(self, prepared: _Prepared | None) -> _InFlight | None:
        """Send a prepared batch's state updates (None when there is none)."""
        if prepared is None:
            return None
        self._batch_number += 1
        try:
            if isinstance(prepared.batch, BaseException):
                raise prepared.batch
            applied = prepared.batch.send().applied
        except Exception as error:
            failed = error

            def applied() -> StagedBatch:
                # `_applied` counts, logs and retries this like any failed batch.
                raise failed

        return _InFlight(self._batch_number, prepared, applied)

    def _applied(self, batch: _InFlight) -> StagedBatch | None:
        """The batch with its state applied, re-applying it until that goes through."""
        messages = batch.prepared.messages
        return self._until_done(
            batch.number,
            batch.applied,
            partial(self.processor.apply_state, messages),
            partial(self.processor.apply_state_isolated, messages),
        )

    def _finish(self, batch: _InFlight, staged: StagedBatch) -> bool:
        """Score, store and publish the alerts of a batch whose state is applied, then commit;
        False if the worker gave up on it while stopping."""

        def finish() -> BatchOutcome:
            outcome = self.processor.finish(staged)
            self._publish(outcome)
            return outcome

        def finish_isolated() -> BatchOutcome:
            outcome = self.processor.finish_isolated(staged)
            self._publish(outcome)
            return outcome

        outcome = self._until_done(batch.number, finish, finish, finish_isolated)
        if outcome is None:
            # Left uncommitted: the next worker redelivers it, idempotently.
            return False
        ends = _ends(batch.prepared.messages)
        self._commit(ends)
        # Other members may now read past these records (the merge's heads).
        self._merge.settled(ends)
        self._record(batch.number, outcome, time.perf_counter() - batch.prepared.started)
        if self.on_batch is not None:
            self.on_batch(outcome)
        return True

    def _until_done(
        self,
        number: int,
        first: Callable[[], _Done],
        again: Callable[[], _Done],
        isolated: Callable[[], _Done],
    ) -> _Done | None:
        """`first()`, then `again()` after each failure, until one succeeds; after three
        permanent failures in a row, `isolated()` (the batch one message at a time) instead.
        Transient failures are retried with a growing pause for as long as they last. None
        if the worker is stopping and three attempts failed."""
        try:
            return self._attempts(number, first, again, isolated)
        finally:
            # Retries pause every partition (see `_keep_membership`); polling resumes them.
            if paused := self.consumer.paused():
                self.consumer.resume(*paused)

    def _attempts(
        self,
        number: int,
        first: Callable[[], _Done],
        again: Callable[[], _Done],
        isolated: Callable[[], _Done],
    ) -> _Done | None:
        step, attempt, permanent = first, 0, 0
        while True:
            try:
                return step()
            except Exception as error:
                failure = classify(error)
                reason = describe(error)
                if isinstance(error, redis.RedisError):
                    metrics.REDIS_ERRORS.inc()
            attempt += 1
            permanent = permanent + 1 if failure is Failure.PERMANENT else 0
            metrics.BATCH_RETRIES.labels(failure.value).inc()
            step = isolated if permanent >= _PERMANENT_ATTEMPTS else again
            log.log(
                logging.ERROR if failure is Failure.PERMANENT else logging.WARNING,
                "batch failed, retrying" + (" one message at a time" if step is isolated else ""),
                extra={"event": "batch_retry", "batch": number, "attempt": attempt,
                       "failure": failure.value, "error": reason},
            )  # fmt: skip
            if self._stopping and attempt >= 3:
                return None
            backoff = self.options.retry_backoff_s * 2 ** min(attempt - 1, 10)
            self._pause(min(backoff, self.options.retry_backoff_max_s))

    def _pause(self, seconds: float) -> None:
        """Sleep between attempts, keeping the group membership and the stall gauge current
        and waking early when asked to stop."""
        deadline = time.monotonic() + seconds
        while not self._stopping and (left := deadline - time.monotonic()) > 0:
            self._keep_membership()
            self._liveness.report()
            time.sleep(min(left, 0.5))

    def _keep_membership(self) -> None:
        """Poll with every partition paused: without a poll for max.poll.interval.ms the
        client leaves the group, and every worker waiting out the same Redis outage would
        then rebalance at once. Records of partitions assigned meanwhile are put back."""
        try:
            self.consumer.pause(*self.consumer.assignment())
            for tp, records in self.consumer.poll(timeout_ms=0).items():
                self.consumer.seek(tp, records[0].offset)
        except KafkaError as error:
            log.warning("poll failed", extra={"event": "poll_failed", "error": describe(error)})

    def _publish(self, outcome: BatchOutcome) -> None:
        """Send the batch's dead letters and alerts and wait for the broker's acks.

        A record the broker refuses for good is skipped with an ERROR log and a count (its
        alert stays in Redis): retrying it would stop the partition. Transient refusals raise,
        so the batch is retried."""
        sent: list[tuple[FutureRecordMetadata, Rejected | Alert]] = []
        for rejected in outcome.rejected:
            m = rejected.message
            value = dead_letter_value(
                m.value, m.topic, m.partition, m.offset, rejected.code, rejected.reason,
                original_max_bytes=self.options.dlq_original_max_bytes,
            )  # fmt: skip
            # Its key and headers as they came, so a fixed message sent again from here
            # lands on its account's partition with what its producer attached.
            self._send(sent, rejected, self.options.dlq_topic, m.key, value, list(m.headers))
        for alert in outcome.alerts:
            value = alert_encoder.encode(alert)
            self._send(sent, alert, self.options.alerts_topic, alert.src_account.encode(), value,
                       [(EVENT_HEADER, b"alert.created")])  # fmt: skip
        self.producer.flush(timeout=self.options.broker_timeout_s)
        for future, record in sent:
            try:
                future.get(timeout=self.options.broker_timeout_s)
            except KafkaError as error:
                if classify(error) is Failure.TRANSIENT:
                    raise
                self._refused(record, error)

    def _send(
        self,
        sent: list[tuple[FutureRecordMetadata, Rejected | Alert]],
        record: Rejected | Alert,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        try:
            sent.append((self.producer.send(topic, key=key, value=value, headers=headers), record))
        except KafkaError as error:
            # E.g. larger than the producer's request limit: refused before it is sent.
            if classify(error) is Failure.TRANSIENT:
                raise
            self._refused(record, error)

    @staticmethod
    def _refused(record: Rejected | Alert, error: KafkaError) -> None:
        if isinstance(record, Rejected):
            metrics.DEAD_LETTERS_DROPPED.inc()
            m = record.message
            log.error(
                "dead letter refused by the broker; message skipped",
                extra={"event": "dead_letter_dropped", "reason_code": record.code,
                       "topic": m.topic, "partition": m.partition, "offset": m.offset,
                       "error": describe(error)},
            )  # fmt: skip
        else:
            metrics.ALERTS_UNPUBLISHED.inc()
            log.error(
                "alert refused by the alerts topic; it stays in Redis",
                extra={"event": "alert_unpublished", "alert_id": record.alert_id,
                       "error": describe(error)},
            )  # fmt: skip

    def _commit(self, ends: dict[TopicPartition, int]) -> None:
        # A rebalance while the batch was in hand may have moved some of its partitions to
        # another worker, which redelivers them: committing those could move it backwards.
        owned = self.consumer.assignment()
        offsets = {tp: OffsetAndMetadata(end, "", -1) for tp, end in ends.items() if tp in owned}
        if not offsets:
            return
        try:
            self.consumer.commit(offsets, timeout_ms=int(self.options.broker_timeout_s * 1000))
            self._committed.update((tp, at.offset) for tp, at in offsets.items())
        except (CommitFailedError, RebalanceInProgressError):
            # The group rebalanced mid-batch (or is rebalancing): whoever owns the partitions
            # next redelivers what is not committed, idempotently. Routine: not a failure.
            log.info("commit refused: the group is rebalancing",
                     extra={"event": "commit_refused_rebalance"})  # fmt: skip
            return
        except KafkaError as error:
            # The next batch's commit covers these offsets; a restart redelivers, idempotently.
            metrics.COMMIT_FAILURES.inc()
            log.warning("commit failed", extra={"event": "commit_failed",
                                                "error": describe(error)})  # fmt: skip
            return
        self._liveness.committed()

    def _count_unpriced(self, transfers: Sequence[Transfer]) -> None:
        """Count the transfers scored at face value (no rate for their currency), saying so
        once per currency."""
        rates = self.processor.scorer.rates
        for transfer in transfers:
            if rates.priced(transfer.currency):
                continue
            metrics.UNPRICED.labels(transfer.currency).inc()
            if transfer.currency not in self._unpriced:
                self._unpriced.add(transfer.currency)
                log.warning(
                    "a currency without a rate to the scoring currency: its amounts are scored "
                    "at face value; set FRAUDWATCH_CURRENCY_RATES",
                    extra={"event": "currency_unpriced", "currency": transfer.currency},
                )

    def _record(self, number: int, outcome: BatchOutcome, elapsed: float) -> None:
        metrics.BATCH_SECONDS.observe(elapsed)
        metrics.TRANSFERS.inc(outcome.first_deliveries)
        if (days := outcome.observation_days()) is not None:
            metrics.OBSERVATION_DAYS.set(days)
        if outcome.redeliveries:
            metrics.DUPLICATES.inc(outcome.redeliveries)
        for rejected in outcome.rejected:
            metrics.DLQ.labels(rejected.code).inc()
        self._count_unpriced(outcome.transfers)
        now_ms = time.time() * 1000
        for hit in outcome.suppressed:
            for rule in hit.rules:
                metrics.SUPPRESSED.labels(rule).inc()
        for alert in outcome.new_alerts:
            metrics.ALERTS.labels(_alert_rule(alert), alert.severity).inc()
            metrics.EVENT_TO_ALERT_SECONDS.observe(max(0.0, now_ms - alert.ts_ms) / 1000)
        log.info(
            "batch done",
            extra={
                "event": "batch_done",
                "batch": number,
                "transfers": len(outcome.transfers),
                "redeliveries": outcome.redeliveries,
                "alerts": len(outcome.new_alerts),
                "suppressed": len(outcome.suppressed),
                "rejected": len(outcome.rejected),
                "seconds": round(elapsed, 4),
            },
        )

    def _report_lag(self) -> None:
        """Lag per assigned partition, and the worker's liveness with it."""
        try:
            lag = report_partition_lag(self.consumer, self._committed)
        except KafkaError as error:
            log.warning("lag unknown", extra={"event": "lag_unknown", "error": describe(error)})
            lag = 1
        self._liveness.observe(group_member_stable(self.consumer), lag,
                               group_coordinator_reachable(self.consumer))  # fmt: skip
