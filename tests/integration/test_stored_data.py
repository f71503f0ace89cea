"""No view answers 5xx on what is stored: times RFC 3339 cannot write, records of an older
shape or damaged ones, on a real Redis. And screening refuses what the worker dead-letters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import msgspec
import pytest
import redis
from fastapi.testclient import TestClient

from models.alerts import Reason, build_alert
from models.events import parse_transfer
from service import wiring
from service.app import create_app
from streams.state import keys
from streams.state.alert_store import ALL_INDEX, AlertStore, alert_key, history_key, index_key
from streams.state.spec import Unstorable
from streams.state.watchlists import entries_key
from streams.state.watchlists import index_key as watchlist_index
from tests.integration.keyed_api import ADMIN, api_settings
from tests.traffic import T0, event

FAR_FUTURE = "9999-12-31T23:59:59-01:00"
FAR_PAST = "0001-01-01T00:00:00+14:00"
BROKEN_ID = "al_" + "e" * 24
OLD_SHAPE_ID = "al_" + "f" * 24


def _store_as_an_older_version_would(settings, client: redis.Redis) -> None:
    """Trace records and alerts for transfers at years 10000 and 0 (UTC), as a worker without
    the event-time bounds wrote them (their windows the state refuses: it holds 1970..2527),
    plus records this version cannot read."""
    transfers = [
        parse_transfer(json.dumps(event(tid, "far-payer", "far-payee", T0, "500.00",
                                        device_id="dev-far", phone="+86 138 0013 8000",
                                        ip="2001:DB8::1") | {"ts": ts}).encode())
        for tid, ts in (("far-future", FAR_FUTURE), ("far-past", FAR_PAST))
    ]  # fmt: skip
    with pytest.raises(Unstorable):
        wiring.redis_state_store(settings, client).apply_transfers(transfers)
    for t in transfers:
        record = [t.src_account, t.dst_account, t.ts_ms, t.amount_minor]
        client.set(keys.transfer_record_key(t.transfer_id), json.dumps(record))
    reason = Reason(rule="fan_out_rapid", title="Rapid fan-out", evidence={"x": 1})
    alerts = [build_alert(t, 0.9, "high", [reason], None, "2026-12-06T00:00:00.000Z")
              for t in transfers]  # fmt: skip
    store = AlertStore(client)
    store.put_alerts(alerts)
    # A damaged body, and one whose values break the contract (score 7, severity unknown).
    for alert_id, body in (
        (BROKEN_ID, b'{"alert_id": "al_ee'),
        (OLD_SHAPE_ID, msgspec.json.encode(alerts[0]).replace(b'"high"', b'"extreme"')
                        .replace(b'"score":0.9', b'"score":7').replace(b"far-future", b"old")),
    ):  # fmt: skip
        client.set(alert_key(alert_id), body)
        for index in (ALL_INDEX, index_key("account", "far-payee"), index_key("status", "open")):
            client.zadd(index, {alert_id: 1})
    client.rpush(history_key(alerts[0].alert_id), b"not json", b'{"action": "escalate"}')
    # Window entries, a profile, a packed state and a trace record of shapes this version
    # does not write.
    client.zadd(keys.account_keys("far-payer")["windows"], {"ono-separators": 5})
    client.hset(keys.account_keys("far-payer")["meta"], mapping={"oa": "1.5e12", "by": "old"})
    client.hset(keys.account_keys("far-damaged")["meta"], "s", b"\x00 not a packed state")
    client.set(keys.transfer_record_key("mangled"), b'{"not": "a list"}')
    client.hset(entries_key("account"), "listed-badly", b"[1, 2]")
    client.zadd(watchlist_index("account"), {"listed-badly": 0})
    client.hset("fw:{keys}:k:" + "0" * 64, mapping={"role": "admin"})


@pytest.fixture
def api(services, redis_client: redis.Redis, tmp_path) -> Iterator[TestClient]:
    settings = api_settings(services, tmp_path, rate_limit_per_minute=0)
    _store_as_an_older_version_would(settings, redis_client)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    "path",
    [
        "/v1/accounts/far-payer/risk",
        "/v1/accounts/far-payee/risk",
        "/v1/accounts/far-payer/transfers?direction=out",
        "/v1/accounts/far-payee/transfers?direction=in",
        "/v1/accounts/far-damaged/risk",
        "/v1/trace/far-future",
        "/v1/trace/far-future?direction=up",
        "/v1/trace/far-past",
        "/v1/trace/far-past?direction=up",
        "/v1/alerts",
        "/v1/alerts?account=far-payee&status=open",
        "/v1/alerts/counts",
        f"/v1/alerts/{OLD_SHAPE_ID}",
        f"/v1/alerts/{BROKEN_ID}/history",
        "/v1/watchlists/account",
        "/v1/keys",
        "/v1/audit",
    ],
)
def test_every_view_survives_whatever_is_stored(api: TestClient, path: str) -> None:
    response = api.get(path, headers=ADMIN)
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")


def test_out_of_range_data_is_shown_as_far_as_it_can_be(api: TestClient) -> None:
    risk = api.get("/v1/accounts/far-payee/risk", headers=ADMIN).json()
    assert risk["facts"]["as_of"] is None  # year 10000: no RFC 3339 time for it
    assert {a["transfer_id"] for a in risk["open_alerts"]} == {"far-future", "far-past"}
    payer = api.get("/v1/accounts/far-payer/risk", headers=ADMIN).json()["facts"]
    assert (payer["holder_birth_year"], payer["account_age_days"]) == (None, None)
    trace = api.get("/v1/trace/far-future", headers=ADMIN).json()
    assert trace["root"]["ts"] == "" and trace["root"]["amount"] == "500.00"
    listed = api.get("/v1/alerts", params={"limit": 500}, headers=ADMIN).json()["items"]
    # The damaged alert and the one outside the contract are left out, the rest shown.
    assert {a["transfer_id"] for a in listed} == {"far-future", "far-past"}
    assert api.get(f"/v1/alerts/{BROKEN_ID}", headers=ADMIN).status_code == 404
    assert api.get(f"/v1/alerts/{OLD_SHAPE_ID}", headers=ADMIN).status_code == 404
    acted = api.post(f"/v1/alerts/{BROKEN_ID}/actions", headers=ADMIN,
                     json={"action": "escalate", "note": "n"})  # fmt: skip
    assert acted.status_code == 404
    alert_id = listed[0]["alert_id"]
    history = api.get(f"/v1/alerts/{alert_id}/history", headers=ADMIN).json()
    assert history["items"] == []  # neither stored entry has the shape of a decision
    assert api.get("/v1/trace/mangled", headers=ADMIN).status_code == 404
    # A key record without its fields admits nobody.
    stray = api.get("/v1/me", headers={"Authorization": "Bearer " + "0" * 64})
    assert stray.status_code == 401


@pytest.mark.parametrize("ts", [FAR_FUTURE, FAR_PAST, "1999-12-31T23:59:59Z"])
def test_screening_refuses_what_the_worker_dead_letters(api: TestClient, ts: str) -> None:
    transfer = event("screen-far", "payer-x", "payee-y", T0, "10.00") | {"ts": ts}
    response = api.post("/v1/screen", json=transfer, headers=ADMIN)
    assert response.status_code == 422
    body = response.json()
    assert (body["parameter"], body["reason_code"]) == ("ts", "ts_out_of_range")


def test_screening_within_the_window_still_scores(api: TestClient) -> None:
    transfer = event("screen-ok", "payer-x", "far-payee", T0, "10.00")
    response = api.post("/v1/screen", json=transfer, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert Decimal(str(response.json()["score"])) >= 0


def test_profile_fields_scoring_cannot_read_are_unknown_not_a_stall(
    services, redis_client: redis.Redis, tmp_path
) -> None:
    """Profile fields written by hand or by another version (not integers) reach the
    features as unknown; applying and screening transfers of that account go on."""
    settings = api_settings(services, tmp_path)
    store = wiring.redis_state_store(settings, redis_client)
    for account in ("odd-payer", "odd-payee"):
        redis_client.hset(keys.account_keys(account)["meta"],
                          mapping={"oa": "soon", "by": "1.5", "ib": "yes"})  # fmt: skip
    transfer = parse_transfer(json.dumps(event("odd", "odd-payer", "odd-payee", T0,
                                               "10.00")).encode())  # fmt: skip
    [peeked] = store.peek([transfer])
    [applied] = store.apply_transfers([transfer])
    for facts in (peeked, applied):
        assert (facts.payer.opened_at, facts.payer.birth_year, facts.payer.is_business) == (
            -1, -1, -1)  # fmt: skip
        assert (facts.payee.opened_at, facts.payee.birth_year, facts.payee.is_business) == (
            -1, -1, -1)  # fmt: skip


def test_an_alert_stored_before_suspects_were_recorded_is_shown_and_decided(
    services, redis_client: redis.Redis, tmp_path
) -> None:
    """Alerts of a release before `suspect_account` existed: shown (not a 500), and a
    confirmation lists the account its reasons suspect, so screening blocks payments to it."""
    settings = api_settings(services, tmp_path, rate_limit_per_minute=0)
    transfer = parse_transfer(json.dumps(event("pre-upgrade", "old-victim", "old-mule", T0,
                                               "5000.00")).encode())  # fmt: skip
    reason = Reason(rule="fan_in_collection", title="Fan-in collection", evidence={"x": 1})
    raised = build_alert(transfer, 0.9, "high", [reason], None, "2026-11-26T00:00:00.000Z")
    old = msgspec.structs.replace(raised, suspect_account=None)  # stored without the field
    AlertStore(redis_client).put_alerts([old])
    stored = redis_client.get(alert_key(old.alert_id))
    assert isinstance(stored, bytes) and b"suspect_account" not in stored
    with TestClient(create_app(settings)) as api:
        shown = api.get(f"/v1/alerts/{old.alert_id}", headers=ADMIN)
        assert (shown.status_code, shown.json()["suspect_account"]) == (200, "old-mule")
        assert api.get("/v1/accounts/old-mule/risk", headers=ADMIN).status_code == 200
        assert api.get("/v1/alerts?status=open", headers=ADMIN).status_code == 200
        confirm = {"action": "confirm_fraud", "note": "rented card, branch confirmed"}
        decided = api.post(f"/v1/alerts/{old.alert_id}/actions", json=confirm, headers=ADMIN)
        assert decided.status_code == 200, decided.text
        assert decided.json()["consequences"]["listed"] == "old-mule"
        payment = event("after-upgrade", "customer", "old-mule", T0, "300.00")
        screened = api.post("/v1/screen", json=payment, headers=ADMIN).json()
        assert screened["decision"] == "block"
