"""Cases through the API on a real Redis: one mule's split is one case decided in one call,
a ring is one case, the queue filters and pages like every list, and every alert names its
case."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from fastapi.testclient import TestClient

from service import wiring
from service.app import create_app
from service.settings import Settings
from streams.batch import BatchOutcome, BatchProcessor, Message
from tests.integration.keyed_api import ADMIN, api_settings, key_for
from tests.traffic import T0, event


@pytest.fixture
def settings(services, tmp_path) -> Settings:
    return api_settings(services, tmp_path, rate_limit_per_minute=0)


@pytest.fixture
def api(settings: Settings, redis_client: redis.Redis) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def score(settings: Settings, client: redis.Redis, events: list[dict]) -> BatchOutcome:
    """Score transfers as the worker does (state, alerts, cases), in batches of 10."""
    processor = BatchProcessor(
        wiring.redis_state_store(settings, client), wiring.alert_sink(settings, client),
        wiring.build_scorer(settings),
        watchlists=wiring.watchlist_view(settings, client),
    )  # fmt: skip
    outcome = BatchOutcome()
    values = [json.dumps(e).encode() for e in events]
    for start in range(0, len(values), 10):
        chunk = enumerate(values[start:][:10])
        part = [Message("transfer", "transfers", 0, start + i, v) for i, v in chunk]
        outcome.add(processor.process(part))
    return outcome


def split(mule: str, legs: int, start=T0) -> list[dict]:
    """A victim's money split by one mule over `legs` transfers of 9,900 within minutes."""
    events = [event(f"{mule}-in", f"{mule}-victim", mule, start, f"{legs * 10000}.00")]
    events += [event(f"{mule}-out-{i}", mule, f"{mule}-to-{i}", start + timedelta(minutes=3 + i),
                     "9900.00") for i in range(legs)]  # fmt: skip
    return events


def _cases(api: TestClient, **params: object) -> dict:
    response = api.get("/v1/cases", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_24_transfer_split_by_one_mule_is_one_case_confirmed_in_one_call(
    api: TestClient, settings: Settings, redis_client: redis.Redis
) -> None:
    # The police listed the mule: the victim's payment to it alerts (watchlist_hit, the payee
    # suspected) and so does each leg of its split (watchlist_payer, the payer suspected):
    # 25 alerts about one account, one case.
    listing = {"value": "mule-1", "source": "police notice 7", "reason": "rented card"}
    assert api.post("/v1/watchlists/account", json=listing, headers=ADMIN).status_code == 201
    outcome = score(settings, redis_client, split("mule-1", 24))
    legs = [a for a in outcome.new_alerts if a.src_account == "mule-1"]
    assert len(legs) == 24
    assert len({a.case_id for a in legs}) == 1
    case_id = legs[0].case_id
    alert = api.get(f"/v1/alerts/{legs[5].alert_id}", headers=ADMIN).json()
    assert alert["case_id"] == case_id and alert["suspect_account"] == "mule-1"

    page = _cases(api)
    (mine,) = [c for c in page["items"] if "mule-1" in c["suspects"]]
    assert mine["case_id"] == case_id and mine["alert_count"] == 25
    assert mine["amount_at_risk"][0]["currency"] == "CNY"
    detail = api.get(f"/v1/cases/{case_id}", headers=ADMIN).json()
    assert {a["alert_id"] for a in detail["alerts"]} >= {a.alert_id for a in legs}
    assert detail["accounts"][0] == {
        "account_id": "mule-1", "role": "suspect", "listed": True,
        "amount_in": "240000.00", "amount_out": "237600.00",
    }  # fmt: skip
    assert len(detail["flows"]) == detail["alert_count"]

    desk = key_for(api, "investigator", "desk 3")
    done = api.post(f"/v1/cases/{case_id}/actions", headers=desk,
                    json={"action": "confirm_fraud", "note": "rented card, victim called"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert len(body["moved"]) == detail["alert_count"] and body["skipped"] == []
    assert body["case"]["status"] == "confirmed"
    for leg in legs:
        history = api.get(f"/v1/alerts/{leg.alert_id}/history", headers=desk).json()["items"]
        assert [(h["action"], h["to"]) for h in history] == [("confirm_fraud", "confirmed")]
    # The same decision again moves nothing: each alert is listed with why.
    again = api.post(f"/v1/cases/{case_id}/actions", headers=desk,
                     json={"action": "confirm_fraud", "note": "again"}).json()
    assert again["moved"] == [] and len(again["skipped"]) == detail["alert_count"]
    assert _cases(api, status="confirmed")["items"][0]["case_id"] == case_id


def test_a_ring_is_one_case_and_the_queue_filters_and_pages(
    api: TestClient, settings: Settings, redis_client: redis.Redis
) -> None:
    for mule in ("mule-a", "mule-b", "mule-c"):
        listing = {"value": mule, "source": "bank B", "reason": "mule"}
        api.post("/v1/watchlists/account", json=listing, headers=ADMIN)
    later = T0 + timedelta(days=5)
    events = split("mule-a", 3) + split("mule-c", 2, later)
    # mule-a pays mule-b, which passes it on: one ring.
    events += [event("a-to-b", "mule-a", "mule-b", T0 + timedelta(minutes=20), "5000.00"),
               event("b-on", "mule-b", "cash-1", T0 + timedelta(minutes=40), "4900.00")]
    outcome = score(settings, redis_client, sorted(events, key=lambda e: e["ts"]))
    ring = {a.case_id for a in outcome.new_alerts if {"mule-a", "mule-b"} & {a.suspect_account}}
    assert len(ring) == 1
    (ring_id,) = ring
    everything = _cases(api)["items"]
    assert ring_id in {c["case_id"] for c in everything}
    ring_case = next(c for c in everything if c["case_id"] == ring_id)
    assert {"mule-a", "mule-b"} <= set(ring_case["suspects"])

    by_account = _cases(api, account="cash-1")["items"]
    assert [c["case_id"] for c in by_account] == [ring_id]
    recent = _cases(api, since=(later - timedelta(hours=1)).isoformat())["items"]
    assert ring_id not in {c["case_id"] for c in recent} and recent
    early = _cases(api, until=(T0 + timedelta(hours=1)).isoformat())["items"]
    assert ring_id in {c["case_id"] for c in early}
    assert _cases(api, severity="low")["items"] == [] or all(
        c["severity"] == "low" for c in _cases(api, severity="low")["items"]
    )

    first = _cases(api, limit=1)
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = _cases(api, limit=1, cursor=first["next_cursor"])
    assert second["items"][0]["case_id"] != first["items"][0]["case_id"]
    ordered = [c["priority"] for c in everything]
    assert ordered == sorted(ordered, reverse=True)
    bad = api.get("/v1/cases", params={"cursor": "nonsense"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["parameter"] == "cursor"
    assert api.get("/v1/cases/cs_" + "0" * 24, headers=ADMIN).status_code == 404
    bank = key_for(api, "bank")
    assert api.get("/v1/cases", headers=bank).status_code == 403
    analyst = key_for(api, "analyst")
    assert api.get(f"/v1/cases/{ring_id}", headers=analyst).status_code == 200
    refused = api.post(f"/v1/cases/{ring_id}/actions", headers=analyst,
                       json={"action": "escalate", "note": "x"})  # fmt: skip
    assert refused.status_code == 403

    metrics = api.get("/metrics").text
    open_line = next(line for line in metrics.splitlines()
                     if line.startswith("fraudwatch_cases_open "))  # fmt: skip
    assert float(open_line.split()[1]) == len(everything)


def test_case_decisions_keep_the_four_eyes_rule(
    settings: Settings, redis_client: redis.Redis
) -> None:
    strict = settings.model_copy(update={"four_eyes": True})
    with TestClient(create_app(strict)) as api:
        api.post("/v1/watchlists/account", headers=ADMIN,
                 json={"value": "mule-q", "source": "bank B", "reason": "mule"})  # fmt: skip
        legs = score(strict, redis_client, split("mule-q", 3)).new_alerts
        case_id = legs[0].case_id
        first, second = key_for(api, "investigator", "one"), key_for(api, "investigator", "two")

        def act(key: dict, action: str) -> object:
            return api.post(f"/v1/cases/{case_id}/actions", headers=key,
                            json={"action": action, "note": action})  # fmt: skip

        assert act(first, "confirm_fraud").status_code == 200  # type: ignore[attr-defined]
        assert act(second, "appeal").status_code == 200  # type: ignore[attr-defined]
        barred = act(first, "restore")
        assert barred.status_code == 403  # type: ignore[attr-defined]
        assert "four-eyes" in barred.json()["detail"]  # type: ignore[attr-defined]
        third = key_for(api, "investigator", "three")
        restored = act(third, "restore").json()  # type: ignore[attr-defined]
        assert len(restored["moved"]) == len(legs) and restored["case"]["status"] == "dismissed"
