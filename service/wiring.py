"""Builds the running parts from `Settings`: the composition root, so `streams/` and `models/`
never read configuration themselves. Nothing here connects at import time."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from kafka import KafkaProducer

from models.alerts import SeverityBands
from models.cases import CaseSettings
from models.currency import ScoringRates
from models.features import MS_PER_HOUR
from models.scorer import Scorer, TransferModel
from models.webhooks import RetrySchedule, webhook_secret
from rules.engine import RuleSet
from rules.loader import load_rule_library
from rules.policy import ScreeningPolicy
from rules.policy import load_policy as load_policy_file
from service.feedback import Feedback, RetroHunt
from service.settings import Settings
from streams import metrics
from streams.batch import BatchProcessor, CasedAlertSink, wall_clock_ms
from streams.kafka_io import acked_producer, worker_consumer
from streams.rules_reload import RuleReloader
from streams.state.alert_events import AlertEventLog
from streams.state.alert_store import AlertStore
from streams.state.base import EntityHasher, StateLimits
from streams.state.case_store import RedisCases
from streams.state.layout import StateWatch, ensure_state_is_ours
from streams.state.partition_claims import RedisPartitionClaims
from streams.state.pipelines import AnyAsyncRedis, AnyRedis
from streams.state.redis_store import RedisStateStore
from streams.state.suppressions import SuppressionStore, SuppressionView
from streams.state.watchlists import WatchlistStore, WatchlistView
from streams.state.webhooks import Webhook, WebhookStore
from streams.worker import Worker, WorkerOptions, report_state_lost

if TYPE_CHECKING:
    from service.export import ExportLoop


class NotConfigured(RuntimeError):
    """A service address is missing (no embedded stack running and no variable set)."""


def _redis_url(settings: Settings) -> str:
    if not settings.redis_url:
        raise NotConfigured("FRAUDWATCH_REDIS_URL is not set and no embedded stack is running")
    return settings.redis_url


def redis_password(settings: Settings) -> str | None:
    """The configured Redis password (`requirepass`), or None (a password in the URL wins)."""
    return settings.redis_password.get_secret_value() or None


def redis_client(settings: Settings, socket_timeout_s: float = 10.0) -> AnyRedis:
    """A Redis client for the configured URL and password: a cluster client (the URL names
    any node) with `redis_cluster`."""
    if settings.redis_cluster:
        return redis.cluster.RedisCluster.from_url(
            _redis_url(settings), password=redis_password(settings),
            socket_timeout=socket_timeout_s,
        )  # fmt: skip
    return redis.Redis.from_url(
        _redis_url(settings),
        password=redis_password(settings),
        socket_timeout=socket_timeout_s,
        health_check_interval=30,
    )


# Connections an API process opens to Redis (per node of a cluster). A request beyond them
# waits for one (up to the socket timeout) instead of failing: redis-py's asyncio pool
# refused the 101st at once, and 300 concurrent requests got 503s from a healthy Redis.
API_REDIS_CONNECTIONS = 128


def async_redis_client(settings: Settings) -> AnyAsyncRedis:
    """The same, for coroutines on the API's event loop (a hung Redis must not stall it)."""
    if settings.redis_cluster:
        # The cluster client has no waiting pool: a wider one instead.
        return redis.asyncio.cluster.RedisCluster.from_url(
            _redis_url(settings), password=redis_password(settings), socket_timeout=10,
            max_connections=8 * API_REDIS_CONNECTIONS,
        )  # fmt: skip
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        _redis_url(settings),
        password=redis_password(settings),
        socket_timeout=10,
        health_check_interval=30,
        max_connections=API_REDIS_CONNECTIONS,
        timeout=10,
    )
    return redis.asyncio.Redis.from_pool(pool)  # closed with the client


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


def load_policy(settings: Settings, rules: RuleSet) -> ScreeningPolicy:
    """The screening policy, checked against the rules in force (raises `RuleLibraryError`
    naming file and field)."""
    return load_policy_file(settings.policy_path, {rule.id for rule in rules.rules})


def watchlist_view(settings: Settings, client: AnyRedis) -> WatchlistView:
    """The in-memory watchlists, reloaded when their Redis version moves."""
    return WatchlistView(
        WatchlistStore(client), entity_hasher(settings), settings.watchlist_refresh_s
    )


def suppression_view(settings: Settings, client: AnyRedis) -> SuppressionView:
    """The in-memory suppressions of dismissed patterns, reloaded when their version moves."""
    return SuppressionView(
        SuppressionStore(client), settings.suppress_days * 86400, settings.watchlist_refresh_s
    )


def alert_store(settings: Settings, client: AnyRedis, origin: str = "worker") -> AlertStore:
    """The alert store, for the worker (`worker`) or for alerts the API raises (`api`)."""
    return AlertStore(client, origin, settings.alert_events_max)


def case_settings(settings: Settings) -> CaseSettings:
    """How alerts are grouped into cases."""
    return CaseSettings(
        window_ms=int(settings.case_window_hours * MS_PER_HOUR),
        link_ms=int(settings.case_link_hours * MS_PER_HOUR),
    )


def alert_sink(settings: Settings, client: AnyRedis, origin: str = "worker") -> CasedAlertSink:
    """Where alerts are written: stored idempotently, then grouped into cases."""
    return CasedAlertSink(
        alert_store(settings, client, origin), RedisCases(client, case_settings(settings))
    )


def retro_hunt(settings: Settings, client: AnyRedis) -> RetroHunt:
    """The retro-hunt of newly listed accounts (alerts raised by the API or a command)."""
    return RetroHunt(client, alert_sink(settings, client, "api"), severity_bands(settings))


def feedback(settings: Settings, client: AnyRedis) -> Feedback:
    """The consequences of investigators' decisions."""
    return Feedback(
        client, alert_store(settings, client, "api"), retro_hunt(settings, client),
        settings.suppress_days,
    )  # fmt: skip


def load_model(settings: Settings) -> TransferModel | None:
    """The configured model, verified (raises `ModelArtifactError`), or None when disabled."""
    if settings.model_path is None:
        return None
    # Imported here: scikit-learn is heavy and only the scoring processes need it.
    from models.registry import load_model as load_artifact

    return load_artifact(settings.model_path)


def scoring_rates(settings: Settings) -> ScoringRates:
    """The reference currency rates with the configured ones."""
    return ScoringRates.with_overrides(settings.currency_rates)


def build_scorer(settings: Settings, rules: RuleSet | None = None) -> Scorer:
    """Rules and the model (when one is configured) with the configured bands, blend,
    currency rates and local zone."""
    return Scorer(
        rules or load_rules(settings),
        severity_bands(settings),
        load_model(settings),
        model_weight=settings.model_weight,
        rates=scoring_rates(settings),
        local_zone=settings.local_zone(),
    )


def redis_state_store(settings: Settings, client: AnyRedis) -> RedisStateStore:
    """The Redis state store with the configured TTLs and bounds."""
    return RedisStateStore(
        client,
        entity_hasher(settings),
        state_limits(settings),
        state_ttl_s=settings.state_ttl_days * 86400,
        transfer_ttl_s=settings.trace_ttl_days * 86400,
        # A worker waiting on a cluster batch does not poll (see SETTLE_TIMEOUT_S).
        settle_timeout_s=settings.max_poll_interval_ms / 3000,
        on_resend=metrics.count_state_resends,
    )


def batch_processor(settings: Settings, client: AnyRedis, scorer: Scorer) -> BatchProcessor:
    """The worker's batch path on Redis: state, alerts and cases, watchlists, suppressions."""
    return BatchProcessor(
        redis_state_store(settings, client),
        alert_sink(settings, client),
        scorer,
        watchlists=watchlist_view(settings, client),
        time_bounds=settings.event_time_bounds(),
        suppressions=suppression_view(settings, client),
    )


def kafka_bootstrap(settings: Settings) -> str:
    """The configured broker's address; `NotConfigured` without one."""
    if not settings.kafka_bootstrap:
        raise NotConfigured(
            "FRAUDWATCH_KAFKA_BOOTSTRAP is not set and no embedded stack is running"
        )
    return settings.kafka_bootstrap


def build_worker(settings: Settings) -> Worker:
    """A worker wired to the configured broker and Redis."""
    bootstrap = kafka_bootstrap(settings)
    client = redis_client(settings)
    # Never write windows into state of a layout it cannot read, nor pseudonyms of another key.
    ensure_state_is_ours(client, settings.pii_key.get_secret_value())
    scorer = build_scorer(settings)
    processor = batch_processor(settings, client, scorer)
    reloader = RuleReloader(
        client, scorer, lambda: load_rules(settings), settings.rules_check_seconds
    )
    consumer = worker_consumer(
        bootstrap,
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
        partition_wait_s=settings.partition_wait_ms / 1000,
        member_wait_s=(2 * settings.session_timeout_ms + settings.max_poll_interval_ms
                       + settings.partition_wait_ms) / 1000,
        dlq_original_max_bytes=settings.dlq_original_max_bytes,
        rebalance_timeout_s=settings.max_poll_interval_ms / 1000,
    )
    producer = acked_producer(bootstrap)
    return Worker(consumer, producer, processor, options, reloader=reloader,
                  housekeeping=_chores(purge_schedule(settings, client),
                                       StateWatch(client, settings.pii_key.get_secret_value(),
                                                  report_state_lost).between_batches),
                  companion=export_loop(settings, producer),
                  claims=RedisPartitionClaims(client, settings.consumer_group))  # fmt: skip


def webhook_secret_of(settings: Settings) -> Callable[[Webhook], str]:
    """A webhook's signing secret, derived from the server's key (never stored)."""
    key = settings.pii_key.get_secret_value()
    return lambda hook: webhook_secret(key, hook.webhook_id, hook.nonce)


def export_loop(settings: Settings, producer: KafkaProducer) -> ExportLoop:
    """The export beside a worker: decisions' consequences, updates on the alerts topic,
    webhook deliveries. Its own Redis client (its reads block while it waits for events)."""
    # Imported here: the export composes service parts the rest of the worker does not need.
    from service.export import EventReactor, ExportLoop, WebhookDispatcher, kafka_publisher

    client = redis_client(settings)
    alerts = alert_store(settings, client)
    hooks = WebhookStore(client)
    consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    reactor = EventReactor(
        AlertEventLog(client, "export", consumer),
        alerts,
        feedback(settings, client),
        hooks,
        kafka_publisher(producer, settings.topic_alerts, 30.0),
        wall_clock_ms,
    )
    http = httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)
    schedule = RetrySchedule(
        first_s=settings.webhook_retry_first_s, give_up_s=settings.webhook_retry_hours * 3600
    )
    dispatcher = WebhookDispatcher(
        hooks, alerts, webhook_secret_of(settings), http, schedule, wall_clock_ms,
        settings.webhook_allow_loopback, settings.env == "prod",
    )  # fmt: skip
    return ExportLoop(reactor, dispatcher, closing=(http.close, client.close))


def _chores(*chores: Callable[[], None] | None) -> list[Callable[[], None]]:
    return [chore for chore in chores if chore is not None]


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
