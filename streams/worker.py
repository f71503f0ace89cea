"""The streaming worker: poll a micro-batch, process it, publish, then commit.

Offsets are committed only after state, alerts in Redis, alerts on Kafka and dead letters
have all succeeded, so a worker killed at any instant redelivers at most its last two batches
(one being scored, one being applied to state), and the idempotent state and alert writes make
that redelivery change nothing.
"""

from __future__ import annotations

import gc
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import TypeVar

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from models.alerts import Alert, alert_encoder
from streams import metrics
from streams.batch import BatchOutcome, BatchProcessor, Message, PreparedBatch, StagedBatch
from streams.dead_letter import dead_letter_value
from streams.rules_reload import RuleReloader

log = logging.getLogger("fraudwatch.worker")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Topic names and batching knobs the loop needs."""

    transfers_topic: str
    accounts_topic: str
    alerts_topic: str
    dlq_topic: str
    batch_size: int = 500
    batch_wait_ms: int = 10
    retry_backoff_s: float = 0.5


_Done = TypeVar("_Done")


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A polled batch, validated and encoded for state."""

    messages: list[Message]
    started: float
    batch: PreparedBatch


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A prepared batch on its way into state."""

    number: int
    prepared: _Prepared
    applied: Callable[[], StagedBatch]


def _alert_rule(alert: Alert) -> str:
    """The label an alert is counted under: its strongest rule, or `model` when no rule fired
    (operators watch rules; the model's reason is often the strongest)."""
    return next((r.rule for r in alert.reasons if r.rule != "model"), "model")


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
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.processor = processor
        self.options = options
        self.on_batch = on_batch
        self.reloader = reloader
        self._stopping = False
        self._batch_number = 0

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
        log.info("worker started", extra={"event": "worker_started"})
        # Start-up's objects (model, rules, clients) live as long as the process: out of the
        # collector's sight, a full collection no longer walks them between batches.
        gc.freeze()
        in_flight: _InFlight | None = None
        while not self._stopping:
            if self.reloader is not None:
                self.reloader.between_batches()
            # With a batch in flight, take only what is already fetched: waiting for more
            # would hold back that batch's alerts when traffic is light.
            prepared = self._prepare(self._poll(0 if in_flight else self.options.batch_wait_ms))
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
        self.consumer.close(autocommit=False)
        self.producer.flush()
        self.producer.close()
        log.info("worker stopped", extra={"event": "worker_stopped"})
        return 0

    def _poll(self, wait_ms: int) -> list[Message]:
        """Up to `batch_size` messages, waiting at most `wait_ms` for them."""
        deadline = time.monotonic() + wait_ms / 1000
        messages: list[Message] = []
        while len(messages) < self.options.batch_size and not self._stopping:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0 and messages:
                break
            records = self.consumer.poll(
                timeout_ms=max(remaining_ms, 0),
                max_records=self.options.batch_size - len(messages),
            )
            for tp in sorted(records, key=lambda p: (p.topic, p.partition)):
                messages.extend(
                    Message(r.topic, r.partition, r.offset, r.value) for r in records[tp]
                )
            if remaining_ms <= 0:
                break
        return messages

    def _prepare(self, messages: list[Message]) -> _Prepared | None:
        """Validate and encode a polled batch (None when there is none); no I/O."""
        if not messages:
            return None
        started = time.perf_counter()
        return _Prepared(messages, started, self.processor.prepare_state(messages))

    def _start(self, prepared: _Prepared | None) -> _InFlight | None:
        """Send a prepared batch's state updates (None when there is none)."""
        if prepared is None:
            return None
        self._batch_number += 1
        try:
            applied = prepared.batch.send().applied
        except redis.RedisError as error:
            failed = error

            def applied() -> StagedBatch:
                # `_applied` counts, logs and retries this like any failed batch.
                raise failed

        return _InFlight(self._batch_number, prepared, applied)

    def _applied(self, batch: _InFlight) -> StagedBatch | None:
        """The batch with its state applied, re-applying it until that goes through."""
        return self._until_done(
            batch.number,
            batch.applied,
            partial(self.processor.apply_state, batch.prepared.messages),
        )

    def _finish(self, batch: _InFlight, staged: StagedBatch) -> bool:
        """Score, store and publish the alerts of a batch whose state is applied, then commit;
        False if the worker gave up on it while stopping."""

        def finish() -> BatchOutcome:
            outcome = self.processor.finish(staged)
            self._publish(outcome)
            return outcome

        outcome = self._until_done(batch.number, finish, finish)
        if outcome is None:
            # Left uncommitted: the next worker redelivers it, idempotently.
            return False
        self._commit(batch.prepared.messages)
        self._record(batch.number, outcome, time.perf_counter() - batch.prepared.started)
        if self.on_batch is not None:
            self.on_batch(outcome)
        return True

    def _until_done(
        self, number: int, first: Callable[[], _Done], again: Callable[[], _Done]
    ) -> _Done | None:
        """`first()`, then `again()` after each Redis or Kafka failure, until one succeeds;
        None if the worker is stopping and three attempts failed."""
        step, attempt = first, 0
        while True:
            try:
                return step()
            except redis.RedisError as error:
                metrics.REDIS_ERRORS.inc()
                reason = f"redis: {type(error).__name__}"
            except KafkaError as error:
                reason = f"kafka: {type(error).__name__}"
            step, attempt = again, attempt + 1
            log.warning(
                "batch failed, retrying",
                extra={"event": "batch_retry", "batch": number,
                       "attempt": attempt, "error": reason},
            )  # fmt: skip
            time.sleep(min(self.options.retry_backoff_s * attempt, 5.0))
            if self._stopping and attempt >= 3:
                return None

    def _publish(self, outcome: BatchOutcome) -> None:
        """Send the batch's alerts and dead letters and wait for the broker's acks."""
        futures = []
        for rejected in outcome.rejected:
            m = rejected.message
            value = dead_letter_value(
                m.value, m.topic, m.partition, m.offset, rejected.code, rejected.reason
            )
            futures.append(self.producer.send(self.options.dlq_topic, value=value))
        for alert in outcome.alerts:
            futures.append(
                self.producer.send(
                    self.options.alerts_topic,
                    key=alert.src_account.encode(),
                    value=alert_encoder.encode(alert),
                )
            )
        self.producer.flush()
        for future in futures:
            future.get(timeout=30)

    def _commit(self, messages: list[Message]) -> None:
        # A rebalance while the batch was in hand may have moved some of its partitions to
        # another worker, which redelivers them: committing those could move it backwards.
        owned = self.consumer.assignment()
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for m in messages:
            tp = TopicPartition(m.topic, m.partition)
            if tp in owned:
                offsets[tp] = OffsetAndMetadata(m.offset + 1, "", -1)
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
        except CommitFailedError:
            # The group rebalanced mid-batch; the new owner redelivers it, idempotently.
            log.warning("commit refused after a rebalance", extra={"event": "commit_failed"})

    def _record(self, number: int, outcome: BatchOutcome, elapsed: float) -> None:
        metrics.BATCH_SECONDS.observe(elapsed)
        metrics.TRANSFERS.inc(outcome.first_deliveries)
        if outcome.redeliveries:
            metrics.DUPLICATES.inc(outcome.redeliveries)
        for rejected in outcome.rejected:
            metrics.DLQ.labels(rejected.code).inc()
        now_ms = time.time() * 1000
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
                "rejected": len(outcome.rejected),
                "seconds": round(elapsed, 4),
            },
        )

    def _report_lag(self) -> None:
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue
            position = self.consumer.position(tp)
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(
                max(0, highwater - position)
            )
