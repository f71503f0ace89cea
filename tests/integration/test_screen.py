"""Pre-transfer screening on a real Redis: read-only, and the same verdict the worker gives."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import redis
from fastapi.testclient import TestClient

from service.app import create_app
from tests.integration.conftest import TEST_API_KEY, SettingsFactory, TopicSet
from tests.integration.harness import (
    CLAIMS_PREFIX,
    committed,
    produce,
    redis_dump,
    wait_for,
    worker_thread,
)
from tests.traffic import T0, event, fan_out_ring

AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}


def _send(settings, topics: TopicSet, events: list[dict], total: int) -> None:
    produce(settings.kafka_bootstrap, topics.transfers, [json.dumps(e).encode() for e in events])
    wait_for(lambda: committed(settings, topics.transfers) == total, what="worker commit")


def _verdict(body: dict) -> tuple:
    return body["score"], body["severity"], body["reasons"], body["model"]


def _state(client: redis.Redis) -> dict[bytes, object]:
    """Everything in Redis but the running worker's group coordination (where its partitions
    stand, said a few times a second), which no screening writes."""
    return {k: v for k, v in redis_dump(client).items() if not k.startswith(CLAIMS_PREFIX)}


def test_screen_changes_nothing_and_agrees_with_the_worker(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory
) -> None:
    # No per-key rate limiting: its counters are the one thing an API request may write.
    settings = settings_for(topics, rate_limit_per_minute=0)
    ring = fan_out_ring()
    *history, last = ring
    with worker_thread(settings), TestClient(create_app(settings)) as api:
        _send(settings, topics, history, len(history))
        before = _state(redis_client)
        screened = api.post("/v1/screen", json=last, headers=AUTH)
        assert screened.status_code == 200, screened.text
        assert _state(redis_client) == before
        body = screened.json()
        assert body["would_alert"] and not body["already_processed"]
        assert "fan_out_rapid" in {r["rule"] for r in body["reasons"]}
        # The mule splitting the money is warned off passing it on (or held), by policy.
        assert body["decision"] in ("warn", "hold", "block")
        assert body["warning"]["code"] == "money_mule"

        _send(settings, topics, [last], len(ring))
        alerts = api.get(
            "/v1/alerts", params={"account": last["dst_account"]}, headers=AUTH
        ).json()["items"]
        assert [a["transfer_id"] for a in alerts] == [last["transfer_id"]]
        assert _verdict(alerts[0]) == _verdict(body)

        again = api.post("/v1/screen", json=last, headers=AUTH).json()
        assert again["already_processed"] and _verdict(again) == _verdict(body)
        # The same id on another payment is what the worker dead-letters: said before it goes.
        for change in ({"amount": "1.00"}, {"src_account": "other-payer"}):
            reused = api.post("/v1/screen", json={**last, **change}, headers=AUTH)
            assert reused.status_code == 422, reused.text
            assert reused.json()["reason_code"] == "duplicate_transfer_id"
            assert reused.json()["parameter"] == "transfer_id"

        # A new victim about to pay the mule: the payee's risk is what the bank needs.
        victim = event("new-victim-1", "new-victim", "ring-mule", T0, "30000.00")
        payee = api.post("/v1/screen", json=victim, headers=AUTH).json()["payee_risk"]
        assert payee["account_id"] == "ring-mule"
        assert payee["risk_level"] in ("high", "critical")
        assert {"alerts", "fan_out"} <= {r["code"] for r in payee["reasons"]}


def test_screen_rejects_what_the_contract_rejects(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory
) -> None:
    good = event("s-1", "a", "b", T0, "10.00")
    with TestClient(create_app(settings_for(topics))) as api:
        for body, field in [
            ({**good, "amount": "-5"}, "amount"),
            ({k: v for k, v in good.items() if k != "src_account"}, "src_account"),
            ({**good, "ts": "yesterday"}, "ts"),
            ({**good, "dst_account": "a"}, "src_account"),
        ]:
            answer = api.post("/v1/screen", json=body, headers=AUTH)
            assert answer.status_code == 422, body
            assert answer.json()["parameter"] == field
        assert api.post("/v1/screen", content=b"{", headers=AUTH).status_code == 422
        assert api.post("/v1/screen", json=good).status_code == 401
        # An ordinary payment between two quiet accounts goes ahead without a warning.
        ordinary = api.post("/v1/screen", json=good, headers=AUTH).json()
        assert (ordinary["decision"], ordinary["warning"]) == ("allow", None)


def test_concurrent_screens_share_batches_and_each_gets_its_own_answer(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory
) -> None:
    settings = settings_for(topics, rate_limit_per_minute=0)
    ring = fan_out_ring()
    prospective = [
        event(f"pro-{i}", f"payer-{i % 5}", "ring-mule" if i % 2 else f"shop-{i % 3}", T0, "900.00")
        for i in range(48)
    ] + ring[-3:]
    with worker_thread(settings), TestClient(create_app(settings)) as api:
        _send(settings, topics, ring[:-3], len(ring) - 3)
        alone = [api.post("/v1/screen", json=t, headers=AUTH).json() for t in prospective]
        batcher = api.app.state.screening  # type: ignore[attr-defined]
        batches_before, items_before = batcher.batches, batcher.items
        with ThreadPoolExecutor(16) as pool:
            together = list(
                pool.map(lambda t: api.post("/v1/screen", json=t, headers=AUTH).json(), prospective)
            )
        assert together == alone
        assert {a["transfer_id"] for a in together} == {t["transfer_id"] for t in prospective}
        assert any(a["would_alert"] for a in together) and not all(a["would_alert"] for a in alone)
        assert batcher.items - items_before == len(prospective)
        assert batcher.batches - batches_before < len(prospective)  # some requests shared one


def test_screening_that_falls_behind_refuses_at_once_with_retry_after(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory
) -> None:
    """With at most one request waiting, a burst gets some answers and the rest a 503 at
    once, never a queue that grows past what a payment system's timeout allows."""
    settings = settings_for(topics, rate_limit_per_minute=0, screen_max_waiting=1)
    burst = [event(f"burst-{i}", f"payer-{i}", "shop", T0, "90.00") for i in range(24)]
    with TestClient(create_app(settings)) as api, ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda t: api.post("/v1/screen", json=t, headers=AUTH), burst))
    statuses = {a.status_code for a in answers}
    assert statuses == {200, 503}, statuses
    refused = next(a for a in answers if a.status_code == 503)
    assert refused.headers["retry-after"] == "1"
    assert "FRAUDWATCH_SCREEN_MAX_WAITING" in refused.json()["detail"]


def test_an_outsized_first_payment_is_warned_before_it_goes(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory
) -> None:
    """Early warning where the model is calm: a customer who pays around a hundred yuan is
    about to send 200,000 to an account never paid (a "safe account")."""
    settings = settings_for(topics, rate_limit_per_minute=0)
    history = [event(f"saver-{days}", "saver", payee, T0 - timedelta(days=days), amount)
               for days, payee, amount in ((8, "grocer", "100.00"), (3, "grocer", "80.00"),
                                           (1, "pharmacy", "120.00"))]  # fmt: skip
    with worker_thread(settings), TestClient(create_app(settings)) as api:
        _send(settings, topics, history, len(history))
        safe_account = event("saver-now", "saver", "stranger", T0, "200000.00")
        body = api.post("/v1/screen", json=safe_account, headers=AUTH).json()
        assert (body["decision"], body["warning"]["code"]) == ("warn", "outsized_payment")
        usual = event("saver-usual", "saver", "pharmacy", T0, "90.00")
        assert api.post("/v1/screen", json=usual, headers=AUTH).json()["decision"] == "allow"
