"""The FastAPI application: clients built in the lifespan, routers per resource."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from models.events import Transfer
from models.scorer import Scorer
from rules.policy import ScreeningPolicy
from rules.problems import RuleLibraryError
from service import wiring
from service.audit import AuditLog
from service.auth import Authenticator, ConfiguredKeys, KeyCache
from service.batcher import RequestBatcher
from service.errors import Unavailable, document_errors, install_error_handlers
from service.keys_store import KeyStore
from service.rate_limit import RateLimit, RateLimiter
from service.request_limits import RequestLimits
from service.request_metrics import RequestMetrics
from service.response_headers import ResponseHeaders
from service.routes import (
    account_transfers,
    accounts,
    alert_counts,
    alerts,
    audit,
    cases,
    health,
    keys,
    me,
    rules,
    screen,
    trace,
    watchlist_import,
    watchlists,
    webhooks,
)
from service.routes.console import install_console
from service.routes.docs import install_docs
from service.screening import Screened, ScreeningContext, screen_transfers
from service.settings import Settings
from streams.state.base import EntityHasher
from streams.state.pii_key import key_fingerprint
from streams.state.reads import StateReads
from streams.state.watchlists import WatchlistView
from streams.state.webhooks import WebhookStore

# Seconds /readyz and /metrics wait for Redis: well within a probe's or a scrape's timeout.
PROBE_TIMEOUT_S = 2.0

DESCRIPTION = """Real-time monitoring of bank transfers for telecom-fraud patterns: alerts for
investigators, an early-warning view of accounts for banks, metrics for operators.
Every `/v1` route needs `Authorization: Bearer <key>`."""
log = logging.getLogger(__name__)


def _rate_limiter(config: Settings) -> RateLimiter | None:
    if config.rate_limit_per_minute == 0:
        return None
    return RateLimiter(RateLimit(config.rate_limit_per_minute, config.rate_limit_burst))


async def _rekey_watchlists(view: WatchlistView, pseudonymise: EntityHasher) -> None:
    """Move device, phone and IP entries keyed before identifiers were normalised."""
    try:
        moved = await asyncio.to_thread(view.store.rekey, pseudonymise)
    except redis.RedisError as error:
        log.warning("watchlist re-keying failed", extra={"error": type(error).__name__})
        return
    if moved:
        log.info("watchlist entries re-keyed", extra={"entries": moved})


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for the given settings (read from the environment when omitted)."""
    config = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Routes that are plain functions run on worker threads with the blocking client, and
        # so does screening (on its own thread); authentication, a coroutine on the event
        # loop, uses the asyncio client. None of them can stall the loop on a hung Redis.
        client = wiring.redis_client(config)
        async_client = wiring.async_redis_client(config)
        app.state.settings = config
        app.state.redis = client
        app.state.alert_store = wiring.alert_store(config, client, "api")
        app.state.feedback = wiring.feedback(config, client)
        app.state.retro_hunt = wiring.retro_hunt(config, client)
        app.state.key_store = KeyStore(client)
        app.state.authenticator = Authenticator(
            async_client,
            ConfiguredKeys(config.bootstrap_api_keys()),
            app.state.key_store,
            KeyCache(config.key_cache_seconds),
            _rate_limiter(config),
        )
        app.state.audit_log = AuditLog(client)
        try:
            app.state.rules = wiring.load_rules(config)
            app.state.policy = wiring.load_policy(config, app.state.rules)
        except RuleLibraryError as error:
            log.error("rules or screening policy did not load", extra={"error": str(error)})
            # /readyz says so; the API still serves what it can
            app.state.rules, app.state.policy = None, None
        # Screening runs the worker's own state functions (dry) and its scorer (rules + model).
        app.state.scorer = (
            None if app.state.rules is None else wiring.build_scorer(config, app.state.rules)
        )
        app.state.hasher = wiring.entity_hasher(config)
        app.state.pii_key_fingerprint = key_fingerprint(config.pii_key.get_secret_value())
        app.state.rates = wiring.scoring_rates(config)
        app.state.local_zone = config.local_zone()
        app.state.state_store = wiring.redis_state_store(config, client)
        app.state.reads = StateReads(client, app.state.state_store.library)
        # /readyz and /metrics answer within a probe's and a scrape's timeout (Prometheus
        # waits 10 s) even while Redis hangs: a slow probe read as the API down.
        app.state.probe_redis = wiring.redis_client(config, socket_timeout_s=PROBE_TIMEOUT_S)
        app.state.probe_reads = StateReads(app.state.probe_redis, app.state.state_store.library)
        app.state.watchlists = wiring.watchlist_view(config, client)
        app.state.suppressions = wiring.suppression_view(config, client)
        app.state.webhooks = WebhookStore(client)
        context = ScreeningContext(client, app.state.state_store, app.state.watchlists)
        # One thread runs each batch whole (Redis round trips and the model) while the loop
        # reads the next batch's requests; why a thread: service/batcher.py.
        screener = ThreadPoolExecutor(max_workers=1, thread_name_prefix="screening")

        def screen_batch(transfers: Sequence[Transfer]) -> list[Screened]:
            scorer: Scorer | None = app.state.scorer  # the ones in force: reload swaps them
            policy: ScreeningPolicy | None = app.state.policy
            if scorer is None or policy is None:
                raise Unavailable("the rule library or screening policy did not load; see /readyz")
            return screen_transfers(context, scorer, policy, transfers)

        async def screen_on_thread(transfers: Sequence[Transfer]) -> list[Screened]:
            return await asyncio.get_running_loop().run_in_executor(
                screener, screen_batch, transfers
            )

        # Its own, not app.state's at exit: a second lifespan on another loop (a test's ASGI
        # transport) replaces app.state.screening, and each must stop the batcher it started.
        screening = RequestBatcher(screen_on_thread, max_waiting=config.screen_max_waiting)
        app.state.screening = screening
        screening.start()
        rekeying = asyncio.create_task(_rekey_watchlists(app.state.watchlists, app.state.hasher))
        # What start-up built (model, rules, libraries) lives as long as the process: out of
        # the collector's sight, a full collection no longer walks it mid-request.
        gc.freeze()
        yield
        await screening.stop()
        screener.shutdown(wait=False, cancel_futures=True)
        rekeying.cancel()
        await asyncio.gather(rekeying, return_exceptions=True)
        await async_client.aclose()
        client.close()
        app.state.probe_redis.close()

    app = FastAPI(
        title="fraudwatch",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by install_docs from an installed package, not a CDN; no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    document_errors(app)

    @app.exception_handler(redis.RedisError)
    async def redis_down(_: Request, exc: redis.RedisError) -> JSONResponse:
        return JSONResponse(
            {"error": "unavailable", "detail": f"Redis did not answer ({type(exc).__name__})"},
            status_code=503,
        )

    # Added last = outermost: metrics also count what the request limits refuse.
    app.add_middleware(
        RequestLimits,
        max_bytes=config.max_body_bytes,
        idle_timeout_s=config.body_timeout_s,
        deadline_s=config.body_deadline_s,
        per_path={"/v1/watchlists/import": config.max_import_bytes},
    )
    app.add_middleware(RequestMetrics)
    app.add_middleware(ResponseHeaders)

    app.include_router(health.router)
    app.include_router(me.router)
    app.include_router(alert_counts.router)  # before /v1/alerts/{alert_id}
    app.include_router(alerts.router)
    app.include_router(cases.router)
    app.include_router(accounts.router)
    app.include_router(account_transfers.router)
    app.include_router(screen.router)
    app.include_router(trace.router)
    app.include_router(watchlist_import.router)  # before /v1/watchlists/{kind}
    app.include_router(watchlists.router)
    app.include_router(webhooks.router)
    app.include_router(rules.router)
    app.include_router(keys.router)
    app.include_router(audit.router)
    install_console(app)
    install_docs(app)
    return app
