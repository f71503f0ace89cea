"""Follow the money through a layered mule ring scored by the real worker."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi.testclient import TestClient

from service.app import create_app
from tests.integration.conftest import TEST_API_KEY, SettingsFactory, TopicSet
from tests.integration.harness import committed, produce, wait_for, worker_thread
from tests.traffic import T0, background, event

AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}
DOWNSTREAM = {"mule1", "mule2a", "mule2b", "cash1", "cash2"}


def _at(minutes: int):
    return T0 + timedelta(minutes=minutes)


def layered_ring() -> list[dict]:
    """Victim → mule1 → {mule2a, mule2b} → cash-out accounts, with unrelated traffic."""
    return [
        event("x-old", "mule2b", "old-friend", _at(-90), "300.00"),
        event("x-victim", "victim", "mule1", _at(0), "50000.00"),
        event("x-2a", "mule1", "mule2a", _at(5), "24500.00"),
        event("x-2b", "mule1", "mule2b", _at(6), "24500.00"),
        event("x-grocer", "victim", "grocer", _at(8), "85.00"),
        event("x-c1", "mule2a", "cash1", _at(20), "24000.00"),
        event("x-c2", "mule2b", "cash2", _at(25), "24000.00"),
        event("x-lunch", "neighbour", "cash1", _at(30), "45.00"),
    ]


def test_trace_down_and_up_on_a_layered_ring(
    services, redis_client, topics: TopicSet, settings_for: SettingsFactory
) -> None:
    settings = settings_for(topics)
    events = background(3, 60) + layered_ring()
    events.sort(key=lambda e: e["ts"])
    produce(settings.kafka_bootstrap, topics.transfers, [json.dumps(e).encode() for e in events])
    with worker_thread(settings):
        wait_for(lambda: committed(settings, topics.transfers) == len(events), what="commit")
    with TestClient(create_app(settings)) as api:
        down = api.get("/v1/trace/x-victim", headers=AUTH)
        assert down.status_code == 200, down.text
        graph = down.json()
        assert graph["root"] == {
            "transfer_id": "x-victim",
            "from": "victim",
            "to": "mule1",
            "amount": "50000.00",
            "ts": "2026-03-02T01:00:00.000Z",
        }
        assert {n["account"] for n in graph["nodes"] if n["depth"] >= 1} == DOWNSTREAM
        assert {e["transfer_id"] for e in graph["edges"]} == {"x-victim", "x-2a", "x-2b",
                                                              "x-c1", "x-c2"}  # fmt: skip
        mule1 = next(n for n in graph["nodes"] if n["account"] == "mule1")
        assert (mule1["amount_in"], mule1["amount_out"]) == ("50000.00", "49000.00")
        assert not graph["truncated"]

        up = api.get("/v1/trace/x-c1", params={"direction": "up"}, headers=AUTH).json()
        depths = {n["account"]: n["depth"] for n in up["nodes"]}
        assert depths == {"cash1": 0, "mule2a": 1, "mule1": 2, "victim": 3}

        one = api.get("/v1/trace/x-victim", params={"hops": 1}, headers=AUTH).json()
        assert {n["account"] for n in one["nodes"]} == {"victim", "mule1", "mule2a", "mule2b"}
        short = api.get("/v1/trace/x-victim", params={"window": "10m"}, headers=AUTH).json()
        assert {n["account"] for n in short["nodes"]} == {"victim", "mule1", "mule2a", "mule2b"}

        missing = api.get("/v1/trace/nope", headers=AUTH)
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        for params, name in [({"window": "3 days"}, "window"), ({"hops": 0}, "hops"),
                             ({"direction": "sideways"}, "direction")]:  # fmt: skip
            bad = api.get("/v1/trace/x-victim", params=params, headers=AUTH)
            assert bad.status_code == 422, params
            assert name in json.dumps(bad.json())
