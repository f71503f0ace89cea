"""The API's limits on a real Redis: body sizes, the CSV import, cursors, bounded scans."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from fastapi.testclient import TestClient

from models.alerts import Reason, build_alert
from models.events import parse_transfer
from service import wiring
from service.app import create_app
from streams.state.alert_store import AlertStore
from tests.integration.keyed_api import ADMIN, api_settings, score_ring
from tests.traffic import T0, event

MIB = 1024 * 1024


@pytest.fixture
def api(services, redis_client: redis.Redis, tmp_path) -> Iterator[TestClient]:
    settings = api_settings(
        services, tmp_path, rate_limit_per_minute=0, max_import_bytes=512 * 1024, scan_budget=100
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent chunked, without a Content-Length."""
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


@pytest.mark.parametrize("path", ["/v1/screen", "/v1/keys", "/v1/alerts/al_0/actions"])
def test_a_declared_body_over_the_limit_is_413_before_the_key_is_checked(
    api: TestClient, path: str
) -> None:
    body = b'{"a": "' + b"x" * (MIB + 1) + b'"}'
    response = api.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413  # no key at all: the size is judged first
    assert response.json()["error"] == "payload_too_large"


def test_a_chunked_body_over_the_limit_is_413(api: TestClient) -> None:
    response = api.post("/v1/keys", content=_chunks(2 * MIB), headers=ADMIN)
    assert response.status_code == 413 and response.json()["error"] == "payload_too_large"
    assert "content-length" not in response.request.headers


def test_the_csv_import_has_its_own_cap_and_stops_there(api: TestClient) -> None:
    header = b"kind,value,source,reason,expires_at\n"
    row = b"account,acct-%d,police notice,mule,\n"
    small = header + b"".join(row % i for i in range(100))
    ok = api.post("/v1/watchlists/import", content=small, headers=ADMIN)
    assert ok.status_code == 200 and ok.json()["imported"] == 100
    big = header + b"".join(row % i for i in range(20_000))  # ~700 KiB > the 512 KiB cap
    refused = api.post("/v1/watchlists/import", content=_chunks(len(big)), headers=ADMIN)
    assert refused.status_code == 413
    assert api.get("/v1/watchlists/account", headers=ADMIN).json()["items"][0]["value"] == (
        "acct-0"
    )


def test_csv_the_reader_cannot_read_is_422_naming_the_line(api: TestClient) -> None:
    body = b"kind,value,source,reason\naccount,a1,p,r\naccount," + b"x" * 200_000 + b",p,r\n"
    response = api.post("/v1/watchlists/import", content=body, headers=ADMIN)
    assert response.status_code == 422
    assert "line 3" in response.json()["detail"] and "field limit" in response.json()["detail"]
    assert api.get("/v1/watchlists/account", headers=ADMIN).json()["items"] == []


def test_bad_utf8_is_422_naming_the_byte(api: TestClient) -> None:
    body = b"kind,value,source,reason\naccount,\xff\xfe,p,r\n"
    response = api.post("/v1/watchlists/import", content=body, headers=ADMIN)
    assert response.status_code == 422 and "at byte 33" in response.json()["detail"]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


HUGE = "9" * 40


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/v1/alerts", _b64(f"{HUGE}:al_{'0' * 24}")),
        ("/v1/alerts", _b64("1:not-an-alert-id")),
        ("/v1/alerts", "%%%"),
        ("/v1/audit", _b64(f"{HUGE[:20]}-{HUGE[:20]}")),
        ("/v1/audit", _b64("99999999999999999999-0")),
        ("/v1/keys", _b64(f"o:{HUGE}")),
        ("/v1/keys", _b64("o:１２")),  # full-width digits
        ("/v1/accounts/a1/transfers", _b64("o:99999999999")),
        ("/v1/accounts/a1/transfers", _b64("o:-1")),
    ],
)
def test_malformed_or_huge_cursors_are_422(api: TestClient, path: str, cursor: str) -> None:
    response = api.get(path, params={"cursor": cursor}, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["parameter"] == "cursor"


def test_a_huge_history_cursor_is_422(api: TestClient, redis_client: redis.Redis) -> None:
    score_ring(api.app.state.settings, redis_client)  # type: ignore[attr-defined]
    alert_id = api.get("/v1/alerts", headers=ADMIN).json()["items"][0]["alert_id"]
    response = api.get(f"/v1/alerts/{alert_id}/history", params={"cursor": _b64(f"o:{HUGE}")},
                       headers=ADMIN)  # fmt: skip
    assert response.status_code == 422 and response.json()["parameter"] == "cursor"


def _store_alerts(client: redis.Redis, rare_every: int, total: int) -> list[str]:
    """`total` alerts one second apart, every `rare_every`-th also raised by rule `rare`;
    returns the rare ones' ids, newest first."""
    store = AlertStore(client)
    rare = []
    alerts = []
    for i in range(total):
        at = T0 + timedelta(seconds=i)
        raw = json.dumps(event(f"t-{i}", f"p{i}", f"q{i}", at, "10.00")).encode()
        transfer = parse_transfer(raw)
        rules = ["fan_out_rapid"] + (["rare"] if i % rare_every == 0 else [])
        reasons = [Reason(rule=r, title=r, evidence={}) for r in rules]
        alert = build_alert(transfer, 0.7, "medium", reasons, None, "2026-12-06T00:00:00.000Z")
        alerts.append(alert)
        if "rare" in rules:
            rare.append(alert.alert_id)
    store.put_alerts(alerts)
    return rare[::-1]


def _every_page(api: TestClient, params: dict) -> list[list[str]]:
    """The alert ids of each page, following `next_cursor` to the end."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        body = api.get("/v1/alerts", params=query, headers=ADMIN).json()
        pages.append([a["alert_id"] for a in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_filtered_lists_start_from_the_smallest_index(
    api: TestClient, redis_client: redis.Redis
) -> None:
    rare = _store_alerts(redis_client, rare_every=150, total=600)  # 4 alerts of rule `rare`
    # `rare` and `medium`: the rule's 4 entries are read, not the 600 medium ones.
    assert _every_page(api, {"rule": "rare", "severity": "medium", "limit": 2}) == [
        rare[:2], rare[2:]
    ]
    # No dismissed alert at all: the empty status index answers at once.
    assert _every_page(api, {"severity": "medium", "status": "dismissed"}) == [[]]


def test_no_request_examines_more_than_the_scan_budget(
    api: TestClient, redis_client: redis.Redis
) -> None:
    _store_alerts(redis_client, rare_every=150, total=600)
    # Budget 100 here: a page of 500 asked for holds at most the 100 entries examined, and
    # the cursor carries on from there until all 600 have been listed, once each.
    pages = _every_page(api, {"rule": "fan_out_rapid", "limit": 500})
    assert [len(page) for page in pages] == [100] * 6
    listed = [alert_id for page in pages for alert_id in page]
    assert len(set(listed)) == 600


def test_a_trace_reads_no_more_than_its_edge_limit(
    services, redis_client: redis.Redis, tmp_path
) -> None:
    settings = api_settings(services, tmp_path, trace_max_edges=10)
    fan = [event("fan-in", "victim", "hub", T0, "5000.00")]
    fan += [event(f"fan-{i}", "hub", f"leaf-{i}", T0.replace(minute=i + 1), "10.00")
            for i in range(40)]  # fmt: skip
    store = wiring.redis_state_store(settings, redis_client)
    store.apply_transfers([parse_transfer(json.dumps(e).encode()) for e in fan])
    with TestClient(create_app(settings)) as api:
        graph = api.get("/v1/trace/fan-in", headers=ADMIN).json()
    assert graph["truncated"] and len(graph["edges"]) == 10
    assert [e["transfer_id"] for e in graph["edges"][1:]] == [f"fan-{i}" for i in range(9)]
