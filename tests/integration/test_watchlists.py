"""Watchlists end to end: CSV import with bad rows, the admin API, expiry, the worker's
`watchlist_hit`, and the elevated risk of an account one hop from a listed one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.watchlist import WatchlistEntry, now_ms
from service.app import create_app
from service.audit import STREAM
from service.cli import main
from streams.state.watchlists import WatchlistStore
from tests.integration.conftest import TEST_API_KEY, SettingsFactory, TopicSet
from tests.integration.harness import committed, produce, wait_for, worker_thread
from tests.traffic import event

AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}
NOW = datetime.now(UTC).replace(microsecond=0)
IN_A_DAY = (NOW + timedelta(days=1)).isoformat()

CSV = f"""kind,value,source,reason,expires_at
account,listed-mule,police notice 11,collection account of an investment scam,
device,bad-device,anti-fraud centre,GoIP box,
phone,+8613800000000,bank B,,
account,short-lived,bank B,mule,{IN_A_DAY}
ip,300.1.1.1,bank B,bad address,
"""


@pytest.fixture
def imported(services, redis_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """The CSV above imported with `fraudwatch watchlist import`; yields its stderr."""
    path = tmp_path / "lists.csv"
    path.write_text(CSV)
    monkeypatch.setenv("FRAUDWATCH_REDIS_URL", services.redis_url)
    monkeypatch.setenv("FRAUDWATCH_HOME", str(tmp_path / "no-stack"))
    assert main(["watchlist", "import", str(path)]) == 0
    captured = capsys.readouterr()
    assert "imported 3 entries (3 new, 0 replaced), skipped 2 bad rows" in captured.out
    return captured.err


def test_import_reports_bad_rows_by_line(imported: str, tmp_path: Path) -> None:
    lines = imported.splitlines()
    assert [line.split(":")[1] for line in lines] == ["4", "6"]
    assert "`reason`" in lines[0] and "IPv4 or IPv6" in lines[1]


def test_changes_from_the_command_line_are_audited(
    imported: str, redis_client, capsys: pytest.CaptureFixture[str]
) -> None:
    """As through the API: the import (counts and kinds, no phone or device), and a purge,
    which could otherwise erase the audit log without a trace of its own."""
    assert main(["purge"]) == 0
    capsys.readouterr()
    entries = [fields for _, fields in redis_client.xrange(STREAM)]
    done = [(e[b"key_id"], e[b"path"], e[b"resource"].decode()) for e in entries]
    assert done[0][:2] == (b"cli", b"fraudwatch watchlist import")
    assert done[0][2] == "watchlist import: 3 entries (account, device)"
    assert done[1][:2] == (b"cli", b"fraudwatch purge")
    assert b"+8613800000000" not in b"".join(e[b"resource"] for e in entries)


def test_import_with_only_bad_rows_fails(imported: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("value,source,reason\n,police,empty value\n")
    assert main(["watchlist", "import", str(path), "--kind", "phone"]) == 1


def test_admin_api_adds_lists_pages_and_deletes(
    imported: str, topics: TopicSet, settings_for: SettingsFactory
) -> None:
    with TestClient(create_app(settings_for(topics))) as api:
        entry = {"value": "203.0.113.66", "source": "bank C", "reason": "bot"}
        added = api.post("/v1/watchlists/ip", headers=AUTH, json=entry)
        assert added.status_code == 201 and added.json()["active"]
        replaced = api.post("/v1/watchlists/ip", headers=AUTH, json={**entry, "reason": "botnet"})
        assert replaced.status_code == 200 and replaced.json()["reason"] == "botnet"
        bad = api.post("/v1/watchlists/ip", headers=AUTH,
                       json={"value": "1.2.3.4", "source": "x", "reason": "y",
                             "expires_at": "2001-01-01T00:00:00Z"})  # fmt: skip
        assert bad.status_code == 422 and bad.json()["parameter"] == "expires_at"

        values, cursor = [], None
        while True:
            params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = api.get("/v1/watchlists/account", params=params, headers=AUTH).json()
            values += [item["value"] for item in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert values == ["listed-mule", "short-lived"]
        devices = api.get("/v1/watchlists/device", headers=AUTH).json()["items"]
        assert [(d["value"], d["source"]) for d in devices] == [("bad-device", "anti-fraud centre")]

        assert api.delete("/v1/watchlists/ip/203.0.113.66", headers=AUTH).status_code == 204
        gone = api.delete("/v1/watchlists/ip/203.0.113.66", headers=AUTH)
        assert gone.status_code == 404 and gone.json()["error"] == "not_found"
        assert api.get("/v1/watchlists/card", headers=AUTH).status_code == 422
        assert api.get("/v1/watchlists/account").status_code == 401


def test_worker_fires_watchlist_hit_and_neighbours_get_elevated_risk(
    imported: str, redis_client, topics: TopicSet, settings_for: SettingsFactory
) -> None:
    settings = settings_for(topics)
    # Listed once, expired since: matches nothing and raises no risk.
    WatchlistStore(redis_client).put(
        [WatchlistEntry("account", "lapsed", "lapsed", "bank B", "old", 0, now_ms() - 1000)]
    )
    later = NOW + timedelta(days=2)  # after `short-lived` expires
    events = [
        event("w-1", "neighbour", "listed-mule", NOW, "800.00"),
        event("w-2", "someone", "friend", NOW, "20.00", device_id="bad-device"),
        event("w-3", "other", "short-lived", NOW, "30.00"),
        event("w-4", "other", "short-lived", later, "30.00"),
        event("w-5", "lapsed-payer", "lapsed", later, "30.00"),
        event("w-6", "quiet", "friend", NOW, "30.00"),
    ]
    produce(settings.kafka_bootstrap, topics.transfers, [json.dumps(e).encode() for e in events])
    with worker_thread(settings):
        wait_for(lambda: committed(settings, topics.transfers) == len(events), what="commit")
    with TestClient(create_app(settings)) as api:
        alerts = api.get("/v1/alerts", params={"rule": "watchlist_hit"}, headers=AUTH).json()
        hit = {a["transfer_id"]: a for a in alerts["items"]}
        assert set(hit) == {"w-1", "w-3"}
        assert hit["w-1"]["severity"] == "high"
        assert hit["w-1"]["reasons"][0]["evidence"]["watchlist_hits"] == 1
        assert hit["w-1"]["suspect_account"] == "listed-mule"
        # A listed device suspects the payer who used it.
        alerts = api.get("/v1/alerts", params={"rule": "watchlist_payer"}, headers=AUTH).json()
        assert [(a["transfer_id"], a["suspect_account"]) for a in alerts["items"]] == [
            ("w-2", "someone")
        ]

        listed = api.get("/v1/accounts/listed-mule/risk", headers=AUTH).json()
        assert listed["risk_level"] == "critical"
        assert listed["reasons"][0]["code"] == "watchlisted"
        assert "police notice 11" in listed["reasons"][0]["text"]
        neighbour = api.get("/v1/accounts/neighbour/risk", headers=AUTH).json()
        assert neighbour["risk_level"] in ("high", "critical")
        assert "watchlist_neighbour" in {r["code"] for r in neighbour["reasons"]}
        lapsed = api.get("/v1/accounts/lapsed-payer/risk", headers=AUTH).json()
        assert lapsed["risk_level"] == "none"
        entries = api.get("/v1/watchlists/account", headers=AUTH).json()["items"]
        assert {e["value"]: e["active"] for e in entries}["lapsed"] is False

        probe = event("w-9", "anyone", "listed-mule", NOW, "10.00")
        screened = api.post("/v1/screen", headers=AUTH, json=probe).json()
        assert screened["would_alert"] and screened["payee_risk"]["risk_level"] == "critical"
