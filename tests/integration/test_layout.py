"""The state layout marker on a real Redis: a new installation records it, state of another
layout (an upgrade that changed it) is refused by the worker, `warmup` and `up`'s check until
`fraudwatch layout --adopt`."""

from __future__ import annotations

import pytest
import redis

from service.cli import main
from service.metrics import render_metrics
from streams.state import keys
from streams.state.eviction import EvictingRedis
from streams.state.layout import (
    LAYOUT_KEY,
    LAYOUT_VERSION,
    LayoutMismatch,
    StateWatch,
    ensure_layout,
)


def test_a_marker_that_is_not_a_layout_is_refused_by_name(redis_client: redis.Redis) -> None:
    redis_client.set(LAYOUT_KEY, "two")
    with pytest.raises(LayoutMismatch, match="layout 0"):
        ensure_layout(redis_client)


def test_a_new_installation_records_the_layout_and_keeps_it(redis_client: redis.Redis) -> None:
    ensure_layout(redis_client)
    assert redis_client.get(LAYOUT_KEY) == str(LAYOUT_VERSION).encode()
    redis_client.hset(keys.account_keys("acct")["meta"], "by", "1990")  # this layout's keys
    ensure_layout(redis_client)


@pytest.mark.parametrize("earlier", ["unmarked", "recorded"])
def test_state_of_an_earlier_layout_is_refused_until_adopted(
    services, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], tmp_path, earlier: str,
) -> None:  # fmt: skip
    """Layout 1 (before 2026-12-06) kept an account's profile and counters in `:meta`; the
    current layout reads none of it."""
    redis_client.hset("fw:{a:6222020000000001}:meta", mapping={"opened_at_ms": "1"})
    if earlier == "recorded":
        redis_client.set(LAYOUT_KEY, 1)
    with pytest.raises(LayoutMismatch, match="layout 1; this release keeps layout 2"):
        ensure_layout(redis_client)
    monkeypatch.setenv("FRAUDWATCH_HOME", str(tmp_path))  # no running stack to find
    monkeypatch.setenv("FRAUDWATCH_REDIS_URL", services.redis_url)
    monkeypatch.setenv("FRAUDWATCH_KAFKA_BOOTSTRAP", services.kafka_bootstrap)
    assert main(["worker"]) == 2
    assert "Upgrading fraudwatch" in capsys.readouterr().err
    assert main(["layout"]) == 0
    how = "recognised by its keys" if earlier == "unmarked" else "recorded"
    assert f"state of layout 1 ({how})" in capsys.readouterr().out
    assert main(["layout", "--adopt"]) == 0
    assert "layout 2 adopted" in capsys.readouterr().out
    ensure_layout(redis_client)
    assert redis_client.get(LAYOUT_KEY) == b"2"


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl"])
def test_a_redis_that_would_evict_state_is_refused_by_every_writer(
    services, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], tmp_path, policy: str,
) -> None:  # fmt: skip
    # Evicting, it dropped 22,662 keys of a live run at its limit: 19 of 143 alerts missing,
    # 959 first deliveries taken for redeliveries, the layout marker gone, nothing said.
    redis_client.config_set("maxmemory-policy", policy)
    try:
        with pytest.raises(EvictingRedis, match=f"maxmemory-policy redis: {policy}"):
            ensure_layout(redis_client)
        monkeypatch.setenv("FRAUDWATCH_HOME", str(tmp_path))  # no running stack to find
        monkeypatch.setenv("FRAUDWATCH_REDIS_URL", services.redis_url)
        monkeypatch.setenv("FRAUDWATCH_KAFKA_BOOTSTRAP", services.kafka_bootstrap)
        assert main(["worker"]) == 2
        assert "set `maxmemory-policy noeviction`" in capsys.readouterr().err
        body, _ = render_metrics(redis_client)
        assert b"fraudwatch_redis_evicting 1.0" in body
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
    ensure_layout(redis_client)
    assert b"fraudwatch_redis_evicting 0.0" in render_metrics(redis_client)[0]


def test_a_redis_emptied_under_a_running_worker_is_noticed_once(
    redis_client: redis.Redis,
) -> None:
    # Redis restarted empty under live traffic: the worker scored on from nothing, silently.
    now = [0.0]
    lost: list[float] = []
    ensure_layout(redis_client)
    watch = StateWatch(
        redis_client, lambda: lost.append(now[0]), interval_s=10, clock=lambda: now[0]
    )
    redis_client.flushdb()
    now[0] = 5.0
    watch.between_batches()
    assert lost == []  # not due yet: one EXISTS per interval, not per batch
    now[0] = 10.0
    watch.between_batches()
    assert lost == [10.0] and redis_client.get(LAYOUT_KEY) == str(LAYOUT_VERSION).encode()
    now[0] = 20.0
    watch.between_batches()
    assert lost == [10.0]  # recorded again: the next loss is noticed, this one once
