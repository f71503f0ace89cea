"""The API against a Redis of its own that hangs or wants a password (a real redis-server
started here, so pausing it disturbs no other test)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from pydantic import SecretStr

from service import wiring
from service.embedded.process import ManagedProcess
from service.embedded.redis_server import start_redis
from tests.integration.conftest import TopicSet, settings_of
from tests.integration.console_browser import api_server
from tests.integration.harness import committed, produce, wait_for, worker_thread
from tests.integration.keyed_api import ADMIN, api_settings
from tests.traffic import T0, event, fan_out_ring

PASSWORD = "s3cret-for-this-test"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[ManagedProcess]:
    process = start_redis(tmp_path)
    try:
        yield process
    finally:
        os.kill(process.pid, signal.SIGCONT)  # never leave it stopped
        process.stop()


def _url(process: ManagedProcess) -> str:
    return f"redis://127.0.0.1:{process.port}/0"


def test_healthz_answers_while_redis_hangs(services, own_redis: ManagedProcess, tmp_path) -> None:
    settings = api_settings(services, tmp_path, redis_url=_url(own_redis))
    screen = event("hang-1", "payer-h", "payee-h", T0, "100.00")
    with api_server(settings) as base, ThreadPoolExecutor(4) as pool:
        assert httpx.post(f"{base}/v1/screen", json=screen, headers=ADMIN).status_code == 200
        os.kill(own_redis.pid, signal.SIGSTOP)
        try:
            # Requests that need Redis wait for it: authentication (rate-limit counters),
            # screening (its dry run) and a read on a worker thread.
            waiting = [
                pool.submit(httpx.post, f"{base}/v1/screen", json=screen, headers=ADMIN,
                            timeout=30),
                pool.submit(httpx.get, f"{base}/v1/alerts", headers=ADMIN, timeout=30),
                pool.submit(httpx.get, f"{base}/v1/me", headers=ADMIN, timeout=30),
            ]  # fmt: skip
            time.sleep(0.5)
            assert not any(request.done() for request in waiting)
            # /healthz answers (a client gives up after 5 s) while Redis still hangs: the
            # requests that need Redis are all still waiting after it.
            for _ in range(10):
                health = httpx.get(f"{base}/healthz", timeout=5)
                assert health.json() == {"status": "ok"}
            # Readiness and a scrape answer within a probe's and Prometheus's timeout (they
            # took the clients' 10 s, and a failed scrape reads as the API down).
            ready = httpx.get(f"{base}/readyz", timeout=8)
            assert ready.status_code == 503 and "unreachable" in ready.json()["checks"]["redis"]
            scrape = httpx.get(f"{base}/metrics", timeout=8)
            assert scrape.status_code == 200 and b"fraudwatch_http_requests" in scrape.content
            assert not any(request.done() for request in waiting)
        finally:
            os.kill(own_redis.pid, signal.SIGCONT)
        # Redis is back within the clients' 10 s timeout: every waiting request completes.
        assert [request.result().status_code for request in waiting] == [200, 200, 200]


def test_a_redis_refusing_writes_still_serves_screening_and_reads(
    services, own_redis: ManagedProcess, tmp_path
) -> None:
    # At its memory limit Redis refuses writes; the rate-limit counters are writes, and every
    # authenticated request answered 503, screening (which only reads) included.
    settings = api_settings(services, tmp_path, redis_url=_url(own_redis))
    screen = event("oom-1", "payer-o", "payee-o", T0, "100.00")
    direct = redis.Redis.from_url(_url(own_redis))
    with api_server(settings) as base:
        assert httpx.post(f"{base}/v1/screen", json=screen, headers=ADMIN).status_code == 200
        direct.config_set("maxmemory", 1)
        try:
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                direct.set("probe", "1")
            screened = httpx.post(f"{base}/v1/screen", json=screen, headers=ADMIN)
            assert screened.status_code == 200, screened.text
            assert httpx.get(f"{base}/v1/alerts", headers=ADMIN).status_code == 200
        finally:
            direct.config_set("maxmemory", 0)


def test_more_concurrent_requests_than_connections_wait_for_one(services, tmp_path) -> None:
    # 300 concurrent API requests on a healthy Redis got 503s: the pool refused the 101st.
    settings = api_settings(services, tmp_path)

    async def burst() -> list[bool]:
        client = wiring.async_redis_client(settings)
        try:
            pings = (client.ping() for _ in range(3 * wiring.API_REDIS_CONNECTIONS))
            return await asyncio.gather(*pings)
        finally:
            await client.aclose()

    assert all(asyncio.run(burst()))


def test_a_redis_password_reaches_every_client(
    services, own_redis: ManagedProcess, tmp_path, make_topics
) -> None:
    redis.Redis.from_url(_url(own_redis)).config_set("requirepass", PASSWORD)
    topics: TopicSet = make_topics()
    settings = settings_of(
        services, topics, tmp_path / "home", redis_url=_url(own_redis),
        redis_password=SecretStr(PASSWORD),
    )  # fmt: skip
    ring = fan_out_ring()
    produce(settings.kafka_bootstrap, topics.transfers, [json.dumps(e).encode() for e in ring])
    with worker_thread(settings):
        wait_for(lambda: committed(settings, topics.transfers) == len(ring), what="commit")
    with api_server(settings) as base:
        assert httpx.get(f"{base}/readyz").status_code == 200
        alerts = httpx.get(f"{base}/v1/alerts", headers=ADMIN).json()["items"]
        assert alerts, "the worker stored alerts through the password-protected Redis"
        screened = httpx.post(f"{base}/v1/screen", json=ring[-1], headers=ADMIN)
        assert screened.status_code == 200 and screened.json()["already_processed"]
    without = settings.model_copy(update={"redis_password": SecretStr("")})
    with api_server(without) as base:
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503 and "AuthenticationError" in ready.text
        assert httpx.get(f"{base}/v1/me", headers=ADMIN).status_code == 503
