"""Prometheus metrics of the scoring pipeline (the names operators and dashboards rely on)."""

from __future__ import annotations

import contextlib
import os

from prometheus_client import Counter, Gauge, Histogram

TRANSFERS = Counter("fraudwatch_transfers", "Valid transfers scored (dead-lettered ones excluded)")
ALERTS = Counter(
    "fraudwatch_alerts", "Alerts raised, by rule that fired and severity", ["rule", "severity"]
)
DLQ = Counter(
    "fraudwatch_dlq",
    "Messages rejected for the dead-letter topic, by reason (those the broker then refused "
    "are counted again in fraudwatch_dead_letters_dropped_total)",
    ["reason"],
)
BATCH_SECONDS = Histogram(
    "fraudwatch_batch_seconds",
    "Wall time to process one micro-batch, poll to commit",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EVENT_TO_ALERT_SECONDS = Histogram(
    "fraudwatch_event_to_alert_seconds",
    "Event time of a transfer to its alert being written",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
)
CONSUMER_LAG = Gauge(
    "fraudwatch_consumer_lag",
    "Messages between the last committed offset and the partition's high watermark (0 = "
    "caught up); what the worker fetched but has not scored counts",
    ["topic", "partition"],
    multiprocess_mode="livemax",
)
REDIS_ERRORS = Counter("fraudwatch_redis_errors", "Failed Redis round trips (retried)")
STATE_CALLS_RESENT = Counter(
    "fraudwatch_state_calls_resent",
    "State calls of a batch sent again within the same attempt, by reason: another_writer "
    "(another worker wrote the same account or device between two of the batch's calls), "
    "redirect (a cluster slot moved or a node failed over), functions (Redis had lost them)",
    ["reason"],
)


def count_state_resends(reason: str, commands: int) -> None:
    """Count state calls a batch sent again (`streams.state.transport.ResendCounter`)."""
    STATE_CALLS_RESENT.labels(reason).inc(commands)
STATE_LOST = Counter(
    "fraudwatch_state_lost",
    "Times a worker found Redis emptied under it (the layout marker gone): scoring went on "
    "from empty windows and profiles",
)
DUPLICATES = Counter(
    "fraudwatch_duplicate_transfers", "Redelivered transfers recognised and not counted twice"
)
UNPRICED = Counter(
    "fraudwatch_unpriced_transfers",
    "Transfers in a currency without a rate to the scoring currency (FRAUDWATCH_CURRENCY_RATES), "
    "scored at face value, by currency",
    ["currency"],
)
MODEL_INFO = Gauge(
    "fraudwatch_model_info",
    "The model in service (value 1), by name and version",
    ["name", "version"],
    multiprocess_mode="livemax",
)
RULES_LOADED = Gauge(
    "fraudwatch_rules_loaded", "Rules in force in this worker", multiprocess_mode="livemax"
)
RULES_INFO = Gauge(
    "fraudwatch_rules_info",
    "The rule library in force (value 1), by fingerprint",
    ["fingerprint"],
    multiprocess_mode="livemax",
)
BATCH_RETRIES = Counter(
    "fraudwatch_batch_retries",
    "Failed attempts at a batch, by kind (transient: retried as it is; permanent: after three, "
    "its messages are retried one by one and the ones at fault dead-lettered)",
    ["kind"],
)
DEAD_LETTERS_DROPPED = Counter(
    "fraudwatch_dead_letters_dropped",
    "Rejected messages skipped because even their dead letter could not be written (each is "
    "also counted in fraudwatch_dlq_total by its reason)",
)
ALERTS_UNPUBLISHED = Counter(
    "fraudwatch_alerts_unpublished",
    "Alerts stored in Redis that the alerts topic refused for good (a record it never takes)",
)
COMMIT_FAILURES = Counter(
    "fraudwatch_commit_failures",
    "Offset commits that failed (the next batch's commit covers them; a restart redelivers)",
)
GROUP_REBALANCES = Counter(
    "fraudwatch_group_rebalances", "Completed joins of the consumer group by this worker"
)
GROUP_JOIN_STALLS = Counter(
    "fraudwatch_group_join_stalls",
    "Joins of the consumer group that had not completed within the rebalance timeout",
)
WORKER_STALLED_SECONDS = Gauge(
    "fraudwatch_worker_stalled_seconds",
    "Seconds since this worker last committed while it had work: messages waiting on its "
    "partitions, or a group join not yet complete (0 when caught up)",
    multiprocess_mode="livemax",
)
WORKER_HEARTBEAT = Gauge(
    "fraudwatch_worker_heartbeat_timestamp_seconds",
    "Unix time of this worker loop's latest turn: a worker frozen or hung keeps its other "
    "gauges as they were (a stall of 0 included), but this stops moving",
    multiprocess_mode="liveall",
)
OBSERVATION_DAYS = Gauge(
    "fraudwatch_observation_days",
    "Days of event time the state has observed, from the start of the observation in force "
    "(the first transfer applied, or the first after a silence longer than every window) to "
    "the latest this worker scored; under 7, whether a payee or payer is new is unknown",
    multiprocess_mode="livemax",
)
MERGE_WAITS_ABANDONED = Counter(
    "fraudwatch_merge_waits_abandoned",
    "Times a worker stopped holding its partitions back for one whose records were on the "
    "broker but did not arrive within FRAUDWATCH_PARTITION_WAIT_MS, or for one with records "
    "that no member of the group claimed (a dead member's) within twice the session timeout, "
    "FRAUDWATCH_MAX_POLL_INTERVAL_MS and the partition wait (read on out of event-time order)",
)
SUPPRESSED = Counter(
    "fraudwatch_suppressed",
    "Alerts not raised because investigators dismissed the same pattern for the same suspect "
    "account (FRAUDWATCH_SUPPRESS_DAYS) and its evidence has not grown by half, by rule",
    ["rule"],
)


def forget_partition_lag(topic: str, partition: int) -> None:
    """Stop reporting lag for a partition this worker no longer owns. Processes sharing a
    multiprocess directory (the embedded stack) cannot remove a series: theirs reads 0."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        CONSUMER_LAG.labels(topic, str(partition)).set(0)
        return
    with contextlib.suppress(KeyError):
        CONSUMER_LAG.remove(topic, str(partition))
