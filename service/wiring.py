"""Builds the running parts from `Settings`: the composition root, so `streams/` and `models/`
never read configuration themselves. Nothing here connects at import time."""

from __future__ import annotations

from collections.abc import Callable

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from models.alerts import SeverityBands
from models.scorer import Scorer, TransferModel
from rules.engine import RuleSet
from rules.loader import load_rule_library
from service.settings import Settings
from streams.batch import BatchProcessor
from streams.kafka_io import acked_producer, worker_consumer
from streams.rules_reload import RuleReloader
from streams.state.alert_store import AlertStore
from streams.state.base import EntityHasher, StateLimits
from streams.state.pipelines import AnyAsyncRedis, AnyRedis
from streams.state.redis_store import RedisStateStore
from streams.state.watchlists import WatchlistStore, WatchlistView
from streams.worker import Worker, WorkerOptions


class NotConfigured(RuntimeError):
    """A service address is missing (no embedded stack running and no variable set)."""


def _redis_url(settings: Settings) -> str:
    if not settings.redis_url:
        raise NotConfigured("FRAUDWATCH_REDIS_URL is not set and no embedded stack is running")
    return settings.redis_url


def redis_password(settings: Settings) -> str | None:
    """The configured Redis password (`requirepass`), or None (a password in the URL wins)."""
    return settings.redis_password.get_secret_value() or None


def redis_client(settings: Settings) -> AnyRedis:
    """A Redis client for the configured URL and password: a cluster client (the URL names
    any node) with `redis_cluster`."""
    if settings.redis_cluster:
        return redis.cluster.RedisCluster.from_url(
            _redis_url(settings), password=redis_password(settings), socket_timeout=10
        )
    return redis.Redis.from_url(
        _redis_url(settings),
        password=redis_password(settings),
        socket_timeout=10,
        health_check_interval=30,
    )


def async_redis_client(settings: Settings) -> AnyAsyncRedis:
    """The same, for coroutines on the API's event loop (a hung Redis must not stall it)."""
    if settings.redis_cluster:
        return redis.asyncio.cluster.RedisCluster.from_url(
            _redis_url(settings), password=redis_password(settings), socket_timeout=10
        )
    return redis.asyncio.Redis.from_url(
        _redis_url(settings),
        password=redis_password(settings),
        socket_timeout=10,
        health_check_interval=30,
    )


def severity_bands(settings: Settings) -> SeverityBands:
    """The alert threshold and severity bands from configuration."""
    return SeverityBands(
        settings.alert_threshold,
        settings.severity_medium,
        settings.severity_high,
        settings.severity_critical,
    )


def entity_hasher(settings: Settings) -> EntityHasher:
    """The keyed pseudonymiser for devices, phones and IPs."""
    return EntityHasher(settings.pii_key.get_secret_value(), settings.phone_region)


def state_limits(settings: Settings) -> StateLimits:
    """Per-account memory bounds."""
    return StateLimits(
        window_cap=settings.window_cap, dedupe_horizon_ms=settings.dedupe_ttl_hours * 3_600_000
    )


def load_rules(settings: Settings) -> RuleSet:
    """The rule library from `rules_dir` (raises `RuleLibraryError` naming file and field)."""
    return load_rule_library(settings.rules_dir)


def watchlist_view(settings: Settings, client: AnyRedis) -> WatchlistView:
    """The in-memory watchlists, reloaded when their Redis version moves."""
    return WatchlistView(
        WatchlistStore(client), entity_hasher(settings), settings.watchlist_refresh_s
    )


def load_model(settings: Settings) -> TransferModel | None:
    """The configured model, verified (raises `ModelArtifactError`), or None when disabled."""
    if settings.model_path is None:
        return None
    # Imported here: scikit-learn is heavy and only the scoring processes need it.
    from models.registry import load_model as load_artifact

    return load_artifact(settings.model_path)


def build_scorer(settings: Settings, rules: RuleSet | None = None) -> Scorer:
    """Rules and the model (when one is configured) with the configured bands and blend."""
    return Scorer(
        rules or load_rules(settings),
        severity_bands(settings),
        load_model(settings),
        model_weight=settings.model_weight,
    )


def redis_state_store(settings: Settings, client: AnyRedis) -> RedisStateStore:
    """The Redis state store with the configured TTLs and bounds."""
    return RedisStateStore(
        client,
        entity_hasher(settings),
        state_limits(settings),
        state_ttl_s=settings.state_ttl_days * 86400,
        transfer_ttl_s=settings.trace_ttl_days * 86400,
    )


def build_worker(settings: Settings) -> Worker:
    """A worker wired to the configured broker and Redis."""
    if not settings.kafka_bootstrap:
        raise NotConfigured(
            "FRAUDWATCH_KAFKA_BOOTSTRAP is not set and no embedded stack is running"
        )
    client = redis_client(settings)
    scorer = build_scorer(settings)
    processor = BatchProcessor(
        redis_state_store(settings, client),
        AlertStore(client),
        scorer,
        watchlists=watchlist_view(settings, client),
        time_bounds=settings.event_time_bounds(),
    )
    reloader = RuleReloader(
        client, scorer, lambda: load_rules(settings), settings.rules_check_seconds
    )
    consumer = worker_consumer(
        settings.kafka_bootstrap,
        [settings.topic_transfers, settings.topic_accounts],
        settings.consumer_group,
        batch_size=settings.batch_size,
        max_poll_interval_ms=settings.max_poll_interval_ms,
        session_timeout_ms=settings.session_timeout_ms,
    )
    options = WorkerOptions(
        transfers_topic=settings.topic_transfers,
        accounts_topic=settings.topic_accounts,
        alerts_topic=settings.topic_alerts,
        dlq_topic=settings.topic_dlq,
        batch_size=settings.batch_size,
        batch_wait_ms=settings.batch_wait_ms,
        dlq_original_max_bytes=settings.dlq_original_max_bytes,
        rebalance_timeout_s=settings.max_poll_interval_ms / 1000,
    )
    producer = acked_producer(settings.kafka_bootstrap)
    return Worker(consumer, producer, processor, options, reloader=reloader,
                  housekeeping=purge_schedule(settings, client))  # fmt: skip


def purge_schedule(settings: Settings, client: AnyRedis) -> Callable[[], None] | None:
    """The between-batches purge of records past retention, unless turned off."""
    if not settings.purge_interval_minutes:
        return None
    # Imported here: the audit log lives with the API's modules.
    from service.retention import PurgeSchedule, RetentionPolicy

    schedule = PurgeSchedule(
        client, RetentionPolicy.of(settings), settings.purge_interval_minutes * 60
    )
    return schedule.between_batches
