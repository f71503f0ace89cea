"""Signed export on the real broker and Redis: a local HTTP receiver that checks every
signature gets each created and updated alert, failures are retried then given up (and
logged), and the alerts topic carries updates with the current status."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import SecretStr

from service.app import create_app
from streams.state.alert_events import AlertEventLog
from tests.integration.conftest import TEST_API_KEY, SettingsFactory, TopicReader, TopicSet
from tests.integration.harness import committed, produce, wait_for, worker_thread
from tests.integration.webhook_receiver import Receiver
from tests.traffic import fan_out_ring

AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


def _subscribe(api: TestClient, receiver: Receiver, events: list[str]) -> str:
    created = api.post("/v1/webhooks", json={"url": receiver.url, "events": events},
                       headers=AUTH)  # fmt: skip
    assert created.status_code == 201, created.text
    receiver.secret = created.json()["secret"]
    return created.json()["webhook_id"]


def test_a_receiver_gets_every_created_and_updated_alert_signed(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory,
    read_topic: TopicReader, receiver: Receiver,
) -> None:  # fmt: skip
    settings = settings_for(topics, webhook_allow_loopback=True)
    ring = fan_out_ring()
    with worker_thread(settings), TestClient(create_app(settings)) as api:
        webhook = _subscribe(api, receiver, ["alert.created", "alert.updated"])
        listed = api.get("/v1/webhooks", headers=AUTH).json()["items"]
        assert [h["webhook_id"] for h in listed] == [webhook] and "secret" not in listed[0]
        produce(settings.kafka_bootstrap, topics.transfers, [json.dumps(e).encode() for e in ring])
        wait_for(lambda: committed(settings, topics.transfers) == len(ring), what="commit")
        alerts = {a["alert_id"]: a for a in
                  api.get("/v1/alerts", params={"limit": 500}, headers=AUTH).json()["items"]}
        assert alerts
        wait_for(lambda: set(receiver.events("alert.created")) >= set(alerts), timeout_s=20,
                 what="every new alert delivered")  # fmt: skip

        chosen = next(iter(alerts))
        done = api.post(f"/v1/alerts/{chosen}/actions", headers=AUTH,
                        json={"action": "confirm_fraud", "note": "mule confirmed"}).json()
        wait_for(lambda: receiver.events("alert.updated").get(chosen, {}).get("status")
                 == "confirmed", timeout_s=20, what="the update delivered")  # fmt: skip
        # The listing's retro-hunt raised alerts in the API: delivered as created too.
        retro = done["consequences"]["retro_alerts"]
        assert retro >= 1
        wait_for(lambda: len(receiver.events("alert.created")) == len(alerts) + retro,
                 timeout_s=20, what="the retro-hunt's alerts delivered")  # fmt: skip
        assert receiver.bad_signatures == 0

        # The alerts topic: each new alert, then the update with the current status.
        def updates() -> list[dict]:
            records = read_topic(topics.alerts)
            return [json.loads(r.value) for r in records
                    if dict(r.headers).get("fraudwatch-event") == b"alert.updated"]

        wait_for(lambda: any(u["alert_id"] == chosen for u in updates()), timeout_s=20,
                 what="alert.updated on the alerts topic")  # fmt: skip
        assert [u["status"] for u in updates() if u["alert_id"] == chosen] == ["confirmed"]
        log = api.get(f"/v1/webhooks/{webhook}/deliveries", headers=AUTH).json()["items"]
        assert {e["outcome"] for e in log} == {"delivered"}
        hook = api.get(f"/v1/webhooks/{webhook}", headers=AUTH).json()
        assert hook["delivered"] == len(alerts) + retro + 1
        assert api.delete(f"/v1/webhooks/{webhook}", headers=AUTH).status_code == 204
        assert api.get(f"/v1/webhooks/{webhook}", headers=AUTH).status_code == 404


def test_failed_deliveries_are_retried_then_given_up_and_logged(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory
) -> None:
    flaky, down = Receiver([503, 500]), Receiver([500] * 1000)
    settings = settings_for(topics, webhook_retry_first_s=0.2, webhook_retry_hours=0.001,
                            webhook_allow_loopback=True)
    ring = fan_out_ring()
    before = REGISTRY.get_sample_value("fraudwatch_webhook_deliveries_total",
                                       {"outcome": "failed"}) or 0  # fmt: skip
    try:
        with worker_thread(settings), TestClient(create_app(settings)) as api:
            flaky_id = _subscribe(api, flaky, ["alert.created"])
            down_id = _subscribe(api, down, ["alert.created"])
            produce(settings.kafka_bootstrap, topics.transfers,
                    [json.dumps(e).encode() for e in ring[:-1]])  # fmt: skip
            wait_for(lambda: committed(settings, topics.transfers) == len(ring) - 1,
                     what="commit")  # fmt: skip
            alerts = api.get("/v1/alerts", headers=AUTH).json()["items"]
            wait_for(lambda: len(flaky.events("alert.created")) == len(alerts), timeout_s=30,
                     what="delivered after retries")  # fmt: skip
            log = api.get(f"/v1/webhooks/{flaky_id}/deliveries", headers=AUTH).json()["items"]
            outcomes = [e["outcome"] for e in reversed(log)]
            assert outcomes[:2] == ["retrying", "retrying"]
            assert [e["status_code"] for e in reversed(log)][:2] == [503, 500]
            assert outcomes.count("delivered") == len(alerts)

            def given_up() -> bool:
                hook = api.get(f"/v1/webhooks/{down_id}", headers=AUTH).json()
                return hook["failed"] == len(alerts)

            wait_for(given_up, timeout_s=30, what="deliveries given up after the retry period")
            log = api.get(f"/v1/webhooks/{down_id}/deliveries", headers=AUTH).json()["items"]
            assert log[0]["outcome"] == "failed" and log[0]["status_code"] == 500
        after = REGISTRY.get_sample_value("fraudwatch_webhook_deliveries_total",
                                          {"outcome": "failed"})  # fmt: skip
        assert (after or 0) - before == len(alerts)
    finally:
        flaky.server.shutdown()
        down.server.shutdown()


def test_webhooks_refuse_what_cannot_take_deliveries(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory
) -> None:
    with TestClient(create_app(settings_for(topics, webhook_allow_loopback=True))) as api:
        for body, parameter in [
            ({"url": "ftp://bank.example/x", "events": ["alert.created"]}, "url"),
            ({"url": "https://user:pw@bank.example/x", "events": ["alert.created"]}, "url"),
            ({"url": "https://bank.example/x", "events": []}, "body.events"),
            ({"url": "https://bank.example/x", "events": ["alert.deleted"]}, "body.events.0"),
        ]:
            refused = api.post("/v1/webhooks", json=body, headers=AUTH)
            assert refused.status_code == 422, body
            detail = refused.json()
            assert detail.get("parameter") == parameter or any(
                p["parameter"] == parameter.removeprefix("body.") for p in detail["detail"]
            ), detail
        investigator = api.post("/v1/keys", json={"role": "investigator"}, headers=AUTH).json()
        denied = api.get("/v1/webhooks", headers={"Authorization": f"Bearer {investigator['key']}"})
        assert denied.status_code == 403


def test_in_production_webhooks_deliver_over_tls_only(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory
) -> None:
    """Deliveries carry accounts and amounts: the signature proves the sender, TLS alone keeps
    them from being read on the way."""
    key = "production-admin-key-0123"
    settings = settings_for(topics, env="prod", pii_key=SecretStr("9f2c" * 16),
                            api_keys=SecretStr(key))  # fmt: skip
    admin = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings)) as api:
        plain = {"url": "http://cases.bank.invalid/hook", "events": ["alert.created"]}
        refused = api.post("/v1/webhooks", json=plain, headers=admin)
        assert refused.status_code == 422 and "https://" in refused.json()["detail"]
        tls = {**plain, "url": "https://cases.bank.invalid/hook"}
        assert api.post("/v1/webhooks", json=tls, headers=admin).status_code == 201


def test_a_read_of_the_event_log_that_may_not_wait_does_not_wait(services, redis_client) -> None:
    """The export loop reads without waiting while deliveries are due; Redis takes BLOCK 0
    for 'wait for ever', which held the loop until its socket timed out (10 s per round)."""
    quick = redis.Redis.from_url(services.redis_url, socket_timeout=1)
    try:
        assert AlertEventLog(quick, "export-test", "reader-1").read(10, 0) == []
    finally:
        quick.close()
