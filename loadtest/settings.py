"""The service settings each phase's workers run with."""

from __future__ import annotations

from loadtest.environment import Target, Topics
from service.settings import Settings

# Tansu holds a group (re)join open for max.poll.interval.ms; short keeps cold starts quick.
MAX_POLL_INTERVAL_MS = 5000
SESSION_TIMEOUT_MS = 6000


def phase_settings(
    target: Target, topics: Topics, group: str, partitions: int, batch_size: int | None
) -> Settings:
    """The base settings (from FRAUDWATCH_*) pointed at this phase's topics, group and DB."""
    update: dict[str, object] = {
        "kafka_bootstrap": target.kafka_bootstrap,
        "redis_url": target.redis_url,
        "partitions": partitions,
        "topic_transfers": topics.transfers,
        "topic_accounts": topics.accounts,
        "topic_alerts": topics.alerts,
        "topic_dlq": topics.dlq,
        "consumer_group": group,
        "max_poll_interval_ms": MAX_POLL_INTERVAL_MS,
        "session_timeout_ms": SESSION_TIMEOUT_MS,
        # Port 0: no metrics server; several workers must not fight over one port.
        "worker_metrics_port": 0,
        "home": target.workdir / "home",
    }
    if batch_size is not None:
        update["batch_size"] = batch_size
    return target.base_settings.model_copy(update=update)
