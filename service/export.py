"""Acting on the alert event log, beside each worker: the consequences of investigators'
decisions, `alert.updated` on the `alerts` topic, and signed webhook deliveries.

Every worker runs one `ExportLoop` thread; the loops of all workers share the event log as
one consumer group (each event is handled once, and one a dead worker left half-handled is
taken over after a minute) and the delivery queue (each delivery is leased to one loop).
What each step does is idempotent, so an event handled twice after a crash changes nothing
and delivers at most once more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import httpx
import redis
from kafka import KafkaProducer
from kafka.errors import KafkaError

from models.alerts import Alert, alert_encoder
from models.webhooks import SIGNATURE_HEADER, RetrySchedule, delivery_id, signature
from service import export_metrics as metrics
from service.feedback import ConsequencesPending, Feedback
from service.webhook_targets import target_problem
from streams.state.alert_events import AlertEventLog
from streams.state.alert_store import AlertStore
from streams.state.webhooks import Delivery, Webhook, WebhookStore
from streams.worker import EVENT_HEADER

log = logging.getLogger("fraudwatch.export")


def alert_payload(event_type: str, alert: Alert) -> bytes:
    """A webhook delivery's body: `{"type", "alert"}`, the alert as on the alerts topic."""
    return b'{"type":"' + event_type.encode() + b'","alert":' + alert_encoder.encode(alert) + b"}"


class EventReactor:
    """Handles the alert event log: re-applies decisions' consequences, publishes what the
    worker does not publish itself (updates, and alerts the API raised) on the alerts topic,
    and queues a delivery for every webhook subscribed to the event."""

    def __init__(
        self,
        events: AlertEventLog,
        alerts: AlertStore,
        feedback: Feedback,
        hooks: WebhookStore,
        publish: Callable[[str, Alert], None],
        clock_ms: Callable[[], int],
    ) -> None:
        self._events = events
        self._alerts = alerts
        self._feedback = feedback
        self._hooks = hooks
        self._publish = publish
        self._clock_ms = clock_ms

    def step(self, block_ms: int) -> int:
        """Handle the next events (waiting up to `block_ms` for some); returns how many."""
        events = self._events.read(100, block_ms)
        if not events:
            return 0
        current = {a.alert_id: a for a in self._alerts.get_many({e.alert_id for e in events})}
        hooks = self._hooks.all()
        deliveries = []
        handled = []
        for event in events:
            alert = current.get(event.alert_id)
            if alert is None:
                handled.append(event)
                continue  # purged since
            if event.type == "alert.updated" or event.origin != "worker":
                self._publish(event.type, alert)
            deliveries += [
                Delivery(delivery_id(hook.webhook_id, event.event_id), hook.webhook_id,
                         event.type, event.alert_id, self._clock_ms(), 0)
                for hook in hooks if event.type in hook.events
            ]  # fmt: skip
            if event.action and event.to_status and event.move:
                try:
                    self._feedback.after_move(event.alert_id, event.action, event.to_status,
                                              event.move, wait_s=2.0)  # fmt: skip
                except ConsequencesPending:
                    # The API is still applying them: left unacknowledged, read again in a
                    # minute (when it has finished, or its claim has expired). Published and
                    # queued again then too: at least once, deliveries once per webhook.
                    continue
            handled.append(event)
        self._hooks.enqueue(deliveries, self._clock_ms())
        self._events.ack(handled)
        metrics.EVENTS_HANDLED.inc(len(handled))
        return len(events)


class WebhookDispatcher:
    """Delivers due webhook deliveries, signed, retrying failures on a schedule."""

    def __init__(
        self,
        hooks: WebhookStore,
        alerts: AlertStore,
        secret_of: Callable[[Webhook], str],
        http: httpx.Client,
        schedule: RetrySchedule,
        clock_ms: Callable[[], int],
        allow_loopback: bool = False,
        require_https: bool = False,
    ) -> None:
        self._hooks = hooks
        self._alerts = alerts
        self._secret_of = secret_of
        self._http = http
        self._schedule = schedule
        self._clock_ms = clock_ms
        self._allow_loopback = allow_loopback
        self._require_https = require_https

    def step(self, batch: int = 20, lease_ms: int = 60_000) -> int:
        """Attempt the deliveries due now; returns how many were attempted."""
        due = self._hooks.claim(self._clock_ms(), batch, lease_ms)
        for delivery in due:
            self._attempt(delivery)
        metrics.WEBHOOK_PENDING.set(self._hooks.pending())
        return len(due)

    def _attempt(self, delivery: Delivery) -> None:
        hook = self._hooks.get(delivery.webhook_id)
        alert = self._alerts.get(delivery.alert_id)
        if hook is None or alert is None:
            self._hooks.finish(delivery.delivery_id)  # webhook deleted, or alert purged
            return
        body = alert_payload(delivery.type, alert)
        sent_s = self._clock_ms() // 1000
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self._secret_of(hook), sent_s, body),
            "X-Fraudwatch-Event": delivery.type,
            "X-Fraudwatch-Delivery": delivery.delivery_id,
            "User-Agent": "fraudwatch-webhooks/1",
        }
        began = time.perf_counter()
        status, error = None, target_problem(
            hook.url, self._allow_loopback, self._require_https
        )
        if error is None:
            try:
                response = self._http.post(hook.url, content=body, headers=headers)
                status = response.status_code
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: {str(failure)[:200]}"
        else:
            error = f"not sent: {error}"
        metrics.WEBHOOK_SECONDS.observe(time.perf_counter() - began)
        now = self._clock_ms()
        attempt = delivery.attempts + 1
        entry = {"delivery_id": delivery.delivery_id, "type": delivery.type,
                 "alert_id": delivery.alert_id, "attempt": attempt, "at_ms": now,
                 "status_code": status, "error": error}  # fmt: skip
        if status is not None and 200 <= status < 300:
            self._hooks.finish(delivery.delivery_id)
            self._hooks.record(hook.webhook_id, {**entry, "outcome": "delivered"}, "delivered")
            metrics.WEBHOOK_DELIVERIES.labels("delivered").inc()
            return
        retry = self._schedule.next_attempt_ms(delivery.first_ms, attempt, now)
        if retry is None:
            self._hooks.finish(delivery.delivery_id)
            self._hooks.record(hook.webhook_id, {**entry, "outcome": "failed"}, "failed")
            metrics.WEBHOOK_DELIVERIES.labels("failed").inc()
            log.warning("webhook delivery given up", extra={
                "event": "webhook_failed", "webhook_id": hook.webhook_id,
                "delivery_id": delivery.delivery_id, "attempts": attempt,
            })  # fmt: skip
            return
        self._hooks.retry_at(delivery.delivery_id, retry)
        self._hooks.record(hook.webhook_id, {**entry, "outcome": "retrying",
                                             "next_attempt_ms": retry}, "retried")  # fmt: skip
        metrics.WEBHOOK_DELIVERIES.labels("retried").inc()


def kafka_publisher(
    producer: KafkaProducer, topic: str, timeout_s: float
) -> Callable[[str, Alert], None]:
    """Publish an alert as it stands now on the alerts topic, naming the event in a header;
    waits for the broker's ack (a failure raises, and the event is handled again)."""

    def publish(event_type: str, alert: Alert) -> None:
        future = producer.send(
            topic,
            key=alert.src_account.encode(),
            value=alert_encoder.encode(alert),
            headers=[(EVENT_HEADER, event_type.encode())],
        )
        future.get(timeout=timeout_s)
        metrics.PUBLISHED.labels(event_type).inc()

    return publish


class ExportLoop:
    """Runs the reactor and the dispatcher in a background thread until stopped. A failure
    (Redis or the broker away) is logged and retried after a pause; it never stops the
    worker."""

    def __init__(
        self,
        reactor: EventReactor,
        dispatcher: WebhookDispatcher,
        closing: Sequence[Callable[[], None]] = (),
        idle_block_ms: int = 500,
    ) -> None:
        self._reactor = reactor
        self._dispatcher = dispatcher
        self._closing = closing
        self._idle_block_ms = idle_block_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fraudwatch-export", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the thread to stop and wait for it (a delivery under way finishes first)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        for close in self._closing:
            close()

    def _run(self) -> None:
        pause_s = 0.5
        while not self._stop.is_set():
            try:
                handled = self._reactor.step(0 if self._dispatcher.step() else self._idle_block_ms)
                pause_s = 0.5
                if not handled:
                    self._stop.wait(0.05)
            except (redis.RedisError, KafkaError, OSError) as error:
                log.warning("export step failed; retrying", extra={
                    "event": "export_retry", "error": f"{type(error).__name__}: {error}"[:300],
                })  # fmt: skip
                self._stop.wait(pause_s)
                pause_s = min(pause_s * 2, 5.0)
            except Exception:
                log.exception("export step failed unexpectedly; retrying",
                              extra={"event": "export_error"})  # fmt: skip
                self._stop.wait(5.0)
