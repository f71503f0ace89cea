"""Prometheus metrics of the export beside each worker: events handled, updates published,
webhook deliveries."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_HANDLED = Counter(
    "fraudwatch_alert_events_handled", "Alert events (created, updated) handled by the export"
)
PUBLISHED = Counter(
    "fraudwatch_alert_events_published",
    "Alert events the export published on the alerts topic (updates, and alerts the API "
    "raised), by type",
    ["type"],
)
WEBHOOK_DELIVERIES = Counter(
    "fraudwatch_webhook_deliveries",
    "Webhook delivery attempts, by outcome: delivered (2xx), retried (queued again with a "
    "doubling pause), failed (given up after the retry period)",
    ["outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "fraudwatch_webhook_delivery_seconds",
    "Time a webhook receiver took to answer a delivery",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WEBHOOK_PENDING = Gauge(
    "fraudwatch_webhook_pending",
    "Webhook deliveries queued (due now or waiting to be retried)",
    multiprocess_mode="livemax",
)
