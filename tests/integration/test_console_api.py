"""The API routes the console relies on, on a real Redis: who am I, the glossary, alert
counts, an account's transfers, and the CSV watchlist import; plus the console's files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from models.features import FEATURE_DESCRIPTIONS
from models.workflow import MOVES
from service.app import create_app
from tests.integration.console_browser import rules_only
from tests.integration.keyed_api import ADMIN, api_settings, key_for, score_ring


@pytest.fixture
def api(services, redis_client: redis.Redis, tmp_path) -> Iterator[tuple[TestClient, list]]:
    """The API over a scored fan-out ring, and the ring's alerts."""
    settings = rules_only(api_settings(services, tmp_path))
    outcome = score_ring(settings, redis_client)
    with TestClient(create_app(settings)) as client:
        yield client, outcome.new_alerts


def test_me_and_glossary_for_every_role(api) -> None:
    client, _ = api
    assert client.get("/v1/me", headers=ADMIN).json()["role"] == "admin"
    for role in ("investigator", "analyst", "bank"):
        headers = key_for(client, role, f"{role} one")
        me = client.get("/v1/me", headers=headers).json()
        assert (me["name"], me["role"]) == (f"{role} one", role)
        assert me["key_id"].startswith("key_")
        assert client.get("/v1/glossary", headers=headers).status_code == 200
    assert client.get("/v1/me").status_code == 401
    glossary = client.get("/v1/glossary", headers=ADMIN).json()
    assert glossary["features"] == FEATURE_DESCRIPTIONS
    rule_ids = {rule["id"] for rule in glossary["rules"]}
    assert {"fan_out_rapid", "watchlist_retro"} <= rule_ids  # the retro-hunt's alerts too
    moves = {m["action"]: (m["from"], m["to"]) for m in glossary["actions"]}
    assert moves == {a: (list(m.sources), m.target) for a, m in MOVES.items()}


def test_counts_follow_the_workflow(api) -> None:
    client, alerts = api
    desk = key_for(client, "investigator")
    counts = client.get("/v1/alerts/counts", headers=desk).json()
    assert counts == {"counts": {"open": len(alerts), "escalated": 0, "confirmed": 0,
                                 "appealed": 0, "dismissed": 0}, "total": len(alerts)}  # fmt: skip
    action = {"action": "confirm_fraud", "note": "seen"}
    done = client.post(f"/v1/alerts/{alerts[0].alert_id}/actions", json=action, headers=desk)
    # Confirming lists the mule, whose past transfers the retro-hunt flags as new alerts.
    retro = done.json()["consequences"]["retro_alerts"]
    counts = client.get("/v1/alerts/counts", headers=key_for(client, "analyst")).json()
    assert (counts["counts"]["open"], counts["counts"]["confirmed"]) == (len(alerts) - 1 + retro, 1)
    assert counts["total"] == len(alerts) + retro
    assert client.get("/v1/alerts/counts", headers=key_for(client, "bank")).status_code == 403


def test_account_transfers_newest_first_paged(api) -> None:
    client, _ = api
    desk = key_for(client, "investigator")
    first = client.get("/v1/accounts/ring-mule/transfers", params={"limit": 5}, headers=desk)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [t["counterparty"] for t in page["items"]] == [
        f"ring-layer2-{i}" for i in range(11, 6, -1)
    ]
    assert page["items"][0] == {"transfer_id": "ring-out-11", "direction": "out",
                                "counterparty": "ring-layer2-11", "amount": "9900.00",
                                "currency": "CNY", "ts": "2026-03-02T01:08:30.000Z"}  # fmt: skip
    params = {"limit": 50, "cursor": page["next_cursor"]}
    rest = client.get("/v1/accounts/ring-mule/transfers", params=params, headers=desk).json()
    assert len(rest["items"]) == 7 and rest["next_cursor"] is None
    incoming = client.get("/v1/accounts/ring-mule/transfers", params={"direction": "in"},
                          headers=desk).json()  # fmt: skip
    assert [(t["counterparty"], t["amount"]) for t in incoming["items"]] == [
        ("ring-victim", "120000.00")
    ]
    assert client.get("/v1/accounts/nobody/transfers", headers=desk).json()["items"] == []
    for role in ("analyst", "bank"):
        refused = client.get("/v1/accounts/ring-mule/transfers", headers=key_for(client, role))
        assert refused.status_code == 403
    bad = client.get("/v1/accounts/ring-mule/transfers", params={"cursor": "zz"}, headers=desk)
    assert bad.status_code == 422


CSV = """kind,value,source,reason,expires_at
account,6222020000000777,police notice 2026-0311,collection account,
phone,+8613800138000,telecom notice 7,GoIP SIM,
account,,police notice,no value,
ip,not-an-ip,police notice,bad address,
"""


def test_watchlist_import_reports_rows_by_line(api) -> None:
    client, _ = api
    csv_headers = {**ADMIN, "Content-Type": "text/csv"}
    answer = client.post("/v1/watchlists/import", content=CSV, headers=csv_headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["imported"], body["new"], body["replaced"]) == (2, 2, 0)
    assert [e["line"] for e in body["errors"]] == [4, 5]
    again = client.post("/v1/watchlists/import", content=CSV, headers=csv_headers).json()
    assert (again["new"], again["replaced"]) == (0, 2)
    listed = client.get("/v1/watchlists/phone", headers=ADMIN).json()["items"]
    assert [e["value"] for e in listed] == ["+8613800138000"]
    only_ips = client.post("/v1/watchlists/import", params={"kind": "ip"},
                           content="value,source,reason\n203.0.113.9,notice,proxy\n",
                           headers=csv_headers).json()  # fmt: skip
    assert only_ips["imported"] == 1 and only_ips["errors"] == []
    # Not a watchlist file at all (its header lacks the columns): 422, nothing imported.
    header = client.post("/v1/watchlists/import", content="a,b\n1,2\n", headers=csv_headers)
    assert header.status_code == 422 and header.json()["detail"].startswith("line 1: header")
    binary = client.post("/v1/watchlists/import", content=b"\xff\xfe\x00", headers=csv_headers)
    assert binary.status_code == 422
    desk = {**key_for(client, "investigator"), "Content-Type": "text/csv"}
    assert client.post("/v1/watchlists/import", content=CSV, headers=desk).status_code == 403
    # The import route does not shadow the list routes.
    assert client.get("/v1/watchlists/account", headers=ADMIN).status_code == 200


def test_console_is_served_with_its_security_headers(api) -> None:
    client, _ = api
    redirect = client.get("/console", follow_redirects=False)
    assert redirect.status_code == 308 and redirect.headers["location"] == "/console/"
    page = client.get("/console/")
    assert page.status_code == 200 and "<main" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = client.get("/console/main.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert client.get("/console/nope.js").status_code == 404
    assert "/console/" not in client.get("/openapi.json").text
