"""The state layout marker on a real Redis: a new installation records it, state of another
layout (an upgrade that changed it) is refused by the worker, `warmup` and `up`'s check until
`fraudwatch layout --adopt`. The same for state pseudonymised with another PII key."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from service.app import create_app
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
from streams.state.pii_key import PII_KEY_FINGERPRINT_KEY, PiiKeyMismatch, ensure_pii_key
from tests.integration.conftest import SettingsFactory, TopicSet


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
        redis_client, FIRST_KEY, lambda: lost.append(now[0]), interval_s=10, clock=lambda: now[0]
    )
    redis_client.flushdb()
    now[0] = 5.0
    watch.between_batches()
    assert lost == []  # not due yet: one EXISTS per interval, not per batch
    now[0] = 10.0
    watch.between_batches()
    assert lost == [10.0] and redis_client.get(LAYOUT_KEY) == str(LAYOUT_VERSION).encode()
    with pytest.raises(PiiKeyMismatch):  # the key recorded again too: another is refused
        ensure_pii_key(redis_client, OTHER_KEY)
    now[0] = 20.0
    watch.between_batches()
    assert lost == [10.0]  # recorded again: the next loss is noticed, this one once


FIRST_KEY = "the first installation's key, 40 chars"
OTHER_KEY = "a second machine's key, also 40 chars.."


def test_state_of_another_pii_key_is_refused_by_writers_and_reported_by_the_api(
    services, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], tmp_path, topics: TopicSet,
    settings_for: SettingsFactory,
) -> None:  # fmt: skip
    """A worker given another FRAUDWATCH_PII_KEY joined its group without a word: the same 8
    shared devices became 8 more entities, halving their counts, and watchlisted identifiers
    went unseen. The first writer records a fingerprint of its key; others are refused."""
    ensure_pii_key(redis_client, FIRST_KEY)
    ensure_pii_key(redis_client, FIRST_KEY)  # the same key, again: nothing to say
    recorded = redis_client.get(PII_KEY_FINGERPRINT_KEY)
    assert recorded is not None and FIRST_KEY.encode() not in recorded
    with pytest.raises(PiiKeyMismatch, match="another FRAUDWATCH_PII_KEY"):
        ensure_pii_key(redis_client, OTHER_KEY)
    monkeypatch.setenv("FRAUDWATCH_HOME", str(tmp_path))  # no running stack to find
    monkeypatch.setenv("FRAUDWATCH_REDIS_URL", services.redis_url)
    monkeypatch.setenv("FRAUDWATCH_KAFKA_BOOTSTRAP", services.kafka_bootstrap)
    monkeypatch.setenv("FRAUDWATCH_PII_KEY", OTHER_KEY)
    history = tmp_path / "history.jsonl"
    history.write_text('{"transfer_id": "t1", "ts": "2026-12-01T10:00:00Z", "src_account": '
                       '"6222020000000001", "dst_account": "6222020000000002", '
                       '"amount": "10.00", "currency": "CNY", "channel": "mobile"}\n')  # fmt: skip
    listed = tmp_path / "devices.csv"
    listed.write_text("kind,value,source,reason,expires_at\ndevice,DEV-1,police,mule,\n")
    for command in (["worker"], ["warmup", str(history)], ["watchlist", "import", str(listed)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "another FRAUDWATCH_PII_KEY" in err and OTHER_KEY not in err
    assert redis_client.get(PII_KEY_FINGERPRINT_KEY) == recorded
    assert not redis_client.keys("fw:{wl*")  # nothing listed under the other key's pseudonym
    for key, status in ((OTHER_KEY, 503), (FIRST_KEY, 200)):
        with TestClient(create_app(settings_for(topics, pii_key=SecretStr(key)))) as api:
            ready = api.get("/readyz")
        assert ready.status_code == status
        assert ready.json()["checks"]["pii_key"].startswith("ok" if status == 200 else "another")
