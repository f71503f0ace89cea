"""The HTTP API on a real Redis: auth, parameter errors, alert paging, the account risk view."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import redis
from fastapi.testclient import TestClient

from models.events import parse_transfer
from service import wiring
from service.app import create_app
from tests.integration.conftest import TEST_API_KEY, make_topic_set, settings_of
from tests.integration.harness import committed, produce, wait_for, worker_thread
from tests.traffic import T0, event, fan_out_ring

AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}


@pytest.fixture(scope="module")
def api_with_ring(services, tmp_path_factory: pytest.TempPathFactory):
    """The API over a Redis in which a worker has scored one fan-out ring (read-only tests
    share it; its own Redis database keeps other tests' flushes away)."""
    topics = make_topic_set(services.kafka_bootstrap)
    settings = settings_of(
        services, topics, tmp_path_factory.mktemp("api"),
        redis_url=services.redis_url.rsplit("/", 1)[0] + "/2",
    )  # fmt: skip
    assert settings.redis_url is not None
    redis.Redis.from_url(settings.redis_url).flushdb()
    ring = [json.dumps(e).encode() for e in fan_out_ring()]
    produce(settings.kafka_bootstrap, topics.transfers, ring)
    with worker_thread(settings):
        wait_for(lambda: committed(settings, topics.transfers) == len(ring), what="commit")
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}],
    ids=["missing", "unknown", "not-bearer"],
)
def test_missing_or_wrong_key_is_401_json(api_with_ring: TestClient, headers: dict) -> None:
    response = api_with_ring.get("/v1/alerts", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"severity": "apocalyptic"}, "severity"),
        ({"since": "last tuesday"}, "since"),
        ({"cursor": "not-a-cursor!"}, "cursor"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(
    api_with_ring: TestClient, params: dict, parameter: str
) -> None:
    response = api_with_ring.get("/v1/alerts", params=params, headers=AUTH)
    assert response.status_code == 422
    body = response.json()
    named = body.get("parameter") or [p["parameter"] for p in body["detail"]]
    assert parameter in named


def test_alert_pages_are_newest_first_and_complete(api_with_ring: TestClient) -> None:
    seen: list[dict] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api_with_ring.get("/v1/alerts", params=params, headers=AUTH).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everything = api_with_ring.get("/v1/alerts", params={"limit": 500}, headers=AUTH).json()
    assert [a["alert_id"] for a in seen] == [a["alert_id"] for a in everything["items"]]
    assert len(seen) >= 3
    times = [a["ts"] for a in seen]
    assert times == sorted(times, reverse=True)


def test_filters_and_single_alert(api_with_ring: TestClient) -> None:
    by_account = api_with_ring.get(
        "/v1/alerts", params={"account": "ring-layer2-11"}, headers=AUTH
    ).json()["items"]
    assert [a["dst_account"] for a in by_account] == ["ring-layer2-11"]
    alert_id = by_account[0]["alert_id"]
    one = api_with_ring.get(f"/v1/alerts/{alert_id}", headers=AUTH)
    assert one.status_code == 200 and one.json() == by_account[0]
    missing = api_with_ring.get("/v1/alerts/al_000000000000000000000000", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    none = api_with_ring.get(
        "/v1/alerts", params={"since": "2030-01-01T00:00:00Z"}, headers=AUTH
    ).json()
    assert none == {"items": [], "next_cursor": None}


def test_account_risk_view_of_the_mule(api_with_ring: TestClient) -> None:
    body = api_with_ring.get("/v1/accounts/ring-mule/risk", headers=AUTH).json()
    assert body["risk_level"] in ("high", "critical")
    assert body["facts"]["fan_out"]["distinct_payees_1h"] == 12
    # Observed for over a week: a payee first seen is known to be new.
    assert body["facts"]["fan_out"]["first_time_payees_24h"] == 12
    assert body["facts"]["amount_in_24h"] == "120000.00"
    assert body["facts"]["pass_through_ratio_24h"] == pytest.approx(0.99)
    assert {r["code"] for r in body["reasons"]} >= {"alerts", "fan_out", "pass_through"}
    assert len(body["open_alerts"]) >= 3
    kinds = {i["kind"] for i in body["facts"]["shared_identifiers"]}
    assert kinds == {"device", "phone", "ip"}


def test_first_time_counts_are_unknown_in_the_first_week_of_observation(
    services, tmp_path
) -> None:
    """As for the rules: a counterparty first seen in the first week may have been there all
    along."""
    settings = settings_of(services, make_topic_set(services.kafka_bootstrap), tmp_path,
                           redis_url=services.redis_url.rsplit("/", 1)[0] + "/3")  # fmt: skip
    assert settings.redis_url is not None
    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    payments = [event(f"fresh-{i}", "fresh", f"payee-{i}", T0 + timedelta(minutes=i), "100.00")
                for i in range(3)]  # fmt: skip
    state = wiring.redis_state_store(settings, client)
    state.apply_transfers([parse_transfer(json.dumps(e).encode()) for e in payments])
    with TestClient(create_app(settings)) as api:
        fan_out = api.get("/v1/accounts/fresh/risk", headers=AUTH).json()["facts"]["fan_out"]
    client.close()
    assert fan_out["distinct_payees_24h"] == 3 and fan_out["first_time_payees_24h"] is None


@pytest.mark.parametrize(
    ("shared", "risky"), [("ip", False), ("device_id", True), ("phone", True)]
)
def test_only_a_shared_device_or_phone_makes_an_account_risky(
    services, tmp_path, shared: str, risky: bool
) -> None:
    """Five customers paying from one office network (or one carrier's address) are
    ordinary; five accounts run from one handset or SIM are the two cards."""
    settings = settings_of(services, make_topic_set(services.kafka_bootstrap), tmp_path,
                           redis_url=services.redis_url.rsplit("/", 1)[0] + "/4")  # fmt: skip
    assert settings.redis_url is not None
    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    parties = {"ip": "203.0.113.7", "device_id": "handset-1", "phone": "+8613800138000"}
    payments = [
        event(f"pay-{i}", f"customer-{i}", f"shop-{i}", T0 + timedelta(minutes=i), "86.00",
              **{kind: value if kind == shared else f"{value}-{i}" if kind != "ip"
                 else f"198.51.100.{i}" for kind, value in parties.items()})
        for i in range(5)
    ]  # fmt: skip
    state = wiring.redis_state_store(settings, client)
    state.apply_transfers([parse_transfer(json.dumps(e).encode()) for e in payments])
    with TestClient(create_app(settings)) as api:
        body = api.get("/v1/accounts/customer-0/risk", headers=AUTH).json()
    client.close()
    sharing = {i["kind"]: len(i["other_accounts"]) for i in body["facts"]["shared_identifiers"]}
    assert sharing[{"device_id": "device"}.get(shared, shared)] == 4  # the view shows it
    reasons = {r["code"]: r for r in body["reasons"]}
    assert ("shared_device" in reasons) == risky, body
    assert body["risk_level"] == ("high" if risky else "none"), body


def test_unknown_account_has_no_risk(api_with_ring: TestClient) -> None:
    body = api_with_ring.get("/v1/accounts/nobody/risk", headers=AUTH).json()
    assert body["risk_level"] == "none"
    assert body["facts"]["as_of"] is None


def test_an_account_id_with_a_slash_reaches_its_views(api_with_ring: TestClient) -> None:
    """The contract allows any 1-64 characters in an account id, `/` too (sent as %2F)."""
    risk = api_with_ring.get("/v1/accounts/ACME%2F001/risk", headers=AUTH)
    assert risk.status_code == 200
    assert risk.json()["account_id"] == "ACME/001"
    page = api_with_ring.get("/v1/accounts/ACME%2F001/transfers?direction=in", headers=AUTH)
    assert (page.status_code, page.json()["items"]) == (200, [])


def test_health_readiness_metrics_openapi(api_with_ring: TestClient) -> None:
    assert api_with_ring.get("/healthz").json() == {"status": "ok"}
    ready = api_with_ring.get("/readyz").json()
    assert ready["status"] == "ready" and ready["checks"]["rules"].startswith("ok")
    assert "fraudwatch_http_requests_total" in api_with_ring.get("/metrics").text
    paths = api_with_ring.get("/openapi.json").json()["paths"]
    assert all(p.startswith("/v1/") or p in ("/healthz", "/readyz", "/metrics") for p in paths)


def test_answers_that_may_hold_personal_data_are_not_cached(api_with_ring: TestClient) -> None:
    for path, headers in (("/v1/alerts", AUTH), ("/v1/alerts", {}), ("/v1/nowhere", AUTH)):
        answer = api_with_ring.get(path, headers=headers)
        assert answer.headers["cache-control"] == "no-store", path
        assert answer.headers["x-content-type-options"] == "nosniff"
    health = api_with_ring.get("/healthz")
    assert "cache-control" not in health.headers
    assert health.headers["x-content-type-options"] == "nosniff"


def test_openapi_declares_the_key_and_the_error_body(api_with_ring: TestClient) -> None:
    document = api_with_ring.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["api_key"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    schemas = document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            keyed = path.startswith("/v1/")
            assert (operation.get("security") == [{"api_key": []}]) == keyed, (method, path)
            statuses = {"401", "429", "503"} if keyed else set()
            if "422" in operation["responses"]:
                statuses.add("422")
            for status in statuses:
                content = operation["responses"][status]["content"]["application/json"]
                body = schemas[content["schema"]["$ref"].rsplit("/", 1)[1]]  # ErrorOut or more
                assert body["required"][:2] == ["error", "detail"], (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    limited = document["paths"]["/v1/screen"]["post"]["responses"]["429"]
    assert limited["headers"]["Retry-After"]["schema"] == {"type": "integer"}


def test_a_method_a_route_does_not_take_is_405_naming_the_ones_it_does(
    api_with_ring: TestClient,
) -> None:
    for path, allowed in (("/v1/alerts", "GET"), ("/v1/watchlists/account", "GET, POST")):
        response = api_with_ring.request("PUT", path, headers=AUTH)
        assert response.status_code == 405
        assert response.json()["error"] == "method_not_allowed"
        assert response.headers["allow"] == allowed  # every route of the path, not the first
