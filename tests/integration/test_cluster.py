"""fraudwatch on a real Redis Cluster (the session's: 3 primaries, each with a replica): the
same facts, state and alerts as one Redis over the same input, keys spread over every primary,
slots moved mid-stream absorbed, and the API, screening and the CLI served from it."""

from __future__ import annotations

import json
import random
import subprocess
import threading
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import redis
import redis.cluster
from fastapi.testclient import TestClient

from models.events import Transfer
from models.suppression import Suppression
from service import wiring
from service.app import create_app
from service.cli import main as cli_main
from service.embedded import EmbeddedServices
from service.embedded.redis_cluster import LocalCluster
from streams.batch import BatchProcessor, Message
from streams.state.alert_events import AlertEventLog
from streams.state.base import EntityHasher, StateLimits
from streams.state.redis_store import RedisStateStore
from streams.state.suppressions import SuppressionStore
from streams.state.transport import ClusterTransport
from streams.state.webhooks import Delivery, Webhook, WebhookStore
from tests.integration.conftest import SettingsFactory, TopicFactory
from tests.integration.harness import (
    committed,
    comparable,
    produce,
    redis_dump,
    ring_traffic,
    scored_at_least,
    uninterrupted_run,
    wait_for,
    worker_thread,
)
from tests.integration.keyed_api import ADMIN, api_settings, score_ring
from tests.state_golden import CASES, Case, check
from tests.traffic import fan_out_ring

BASE_MS = 1772374503000


def _many_accounts(seed: int, count: int) -> list[Transfer]:
    """Transfers among 600 accounts with devices, phones and IPs, some late, some twice."""
    rng = random.Random(seed)
    accounts = [f"acct-{i}" for i in range(600)]
    events: list[Transfer] = []
    ts = BASE_MS
    for i in range(count):
        ts += rng.randint(0, 60_000)
        src, dst = rng.sample(accounts, 2)
        amount = rng.randint(100, 10**6)
        events.append(Transfer(
            transfer_id=f"c{i}", ts="-", ts_ms=ts - (rng.randint(0, 600_000) if i % 9 == 0 else 0),
            utc_offset_min=480, src_account=src, dst_account=dst,
            amount=Decimal(amount) / 100, amount_minor=amount, currency="CNY",
            device_id=f"dev-{rng.randint(0, 400)}", phone=f"+8613800{rng.randint(0, 300):06d}",
            ip=f"198.51.100.{rng.randint(1, 200)}",
        ))  # fmt: skip
        if i % 20 == 0:
            events.append(events[rng.randrange(len(events))])  # a redelivery
    return events


def test_state_on_a_cluster_equals_one_redis_and_spreads_over_every_primary(
    redis_client: redis.Redis, cluster_client: redis.cluster.RedisCluster,
    redis_cluster: LocalCluster,
) -> None:  # fmt: skip
    events = _many_accounts(seed=3, count=3000)
    hasher = EntityHasher("cluster")
    single, cluster = RedisStateStore(redis_client, hasher), RedisStateStore(cluster_client, hasher)
    assert isinstance(cluster.transport, ClusterTransport)
    for start in range(0, len(events), 250):
        batch = events[start : start + 250]
        assert cluster.peek(batch[:3]) == single.peek(batch[:3])
        assert cluster.apply_transfers(batch) == single.apply_transfers(batch), start
    assert comparable(redis_dump(cluster_client)) == comparable(redis_dump(redis_client))
    keys_per_primary = [redis.Redis(port=port).dbsize() for port in redis_cluster.primaries()]
    assert len(keys_per_primary) == 3
    assert max(keys_per_primary) <= 1.5 * min(keys_per_primary), keys_per_primary


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_state_on_a_cluster_meets_the_golden_case(
    cluster_client: redis.cluster.RedisCluster, case: Case
) -> None:
    store = RedisStateStore(cluster_client, EntityHasher("golden"), StateLimits(case.window_cap))
    check(case, store)


def test_a_worker_on_a_cluster_ends_with_the_state_and_alerts_of_one_redis(
    services: EmbeddedServices, make_topics: TopicFactory, settings_for: SettingsFactory,
    redis_cluster: LocalCluster, cluster_client: redis.cluster.RedisCluster,
) -> None:  # fmt: skip
    values = ring_traffic(seed=31, count=600, rings=2)
    expected = uninterrupted_run(services, make_topics, settings_for, values)

    topics = make_topics()
    settings = settings_for(topics, batch_size=40, redis_url=redis_cluster.url, redis_cluster=True)
    produce(settings.kafka_bootstrap, topics.transfers, values)
    with worker_thread(settings):
        wait_for(lambda: committed(settings, topics.transfers) == len(values),
                 timeout_s=120, what="the run on the cluster")  # fmt: skip
    assert comparable(redis_dump(cluster_client)) == expected


def _node_ids(cluster: LocalCluster) -> dict[int, str]:
    """Node id of each primary, by port."""
    return {
        port: redis.Redis(port=port).execute_command("CLUSTER MYID").decode()
        for port in cluster.primaries()
    }


def test_slots_moved_mid_stream_end_like_an_uninterrupted_run(
    services: EmbeddedServices, make_topics: TopicFactory, settings_for: SettingsFactory,
    redis_cluster: LocalCluster, cluster_client: redis.cluster.RedisCluster,
) -> None:  # fmt: skip
    """Resharding while the worker writes: keys of a moving slot answer ASK or TRYAGAIN, a
    moved slot MOVED; the worker sends those calls again where the slot is now."""
    values = ring_traffic(seed=37, count=900, rings=2)
    expected = uninterrupted_run(services, make_topics, settings_for, values)

    topics = make_topics()
    settings = settings_for(topics, batch_size=40, redis_url=redis_cluster.url, redis_cluster=True)
    source, target = list(_node_ids(redis_cluster).items())[:2]
    done = partial(committed, settings, topics.transfers)
    with worker_thread(settings) as worker:
        produce(settings.kafka_bootstrap, topics.transfers, values[:300])
        wait_for(partial(scored_at_least, cluster_client, 150), what="first 150")
        reshard = threading.Thread(target=subprocess.run, kwargs={"args": [
            "redis-cli", "--cluster", "reshard", f"127.0.0.1:{source[0]}",
            "--cluster-from", source[1], "--cluster-to", target[1],
            "--cluster-slots", "600", "--cluster-yes", "--cluster-pipeline", "5"],
            "capture_output": True, "check": True, "timeout": 120})  # fmt: skip
        reshard.start()
        produce(settings.kafka_bootstrap, topics.transfers, values[300:])
        reshard.join(timeout=150)
        wait_for(lambda: done() == len(values), timeout_s=120, what="the rest")
        state = worker.processor.state
    assert isinstance(state, RedisStateStore) and isinstance(state.transport, ClusterTransport)
    slots = {int(port): n for port, n in _slot_counts(redis_cluster).items()}
    assert slots[target[0]] > slots[source[0]] + 1000  # the slots did move
    assert comparable(redis_dump(cluster_client)) == expected


def _slot_counts(cluster: LocalCluster) -> dict[int, int]:
    """How many slots each primary serves."""
    counts: dict[int, int] = {}
    for low, high, primary, *_ in redis.Redis(port=cluster.ports[0]).cluster("SLOTS"):
        port = int(primary[1])
        counts[port] = counts.get(port, 0) + high - low + 1
    return counts


def test_the_api_and_screening_serve_from_a_cluster(
    services: EmbeddedServices, tmp_path: Path, redis_cluster: LocalCluster,
    cluster_client: redis.cluster.RedisCluster,
) -> None:  # fmt: skip
    settings = api_settings(services, tmp_path, redis_url=redis_cluster.url, redis_cluster=True)
    outcome = score_ring(settings, cluster_client)
    alert = outcome.new_alerts[0]
    with TestClient(create_app(settings)) as api:
        listed = api.get("/v1/alerts", params={"account": "ring-mule"}, headers=ADMIN).json()
        assert alert.alert_id in {a["alert_id"] for a in listed["items"]}
        risk = api.get("/v1/accounts/ring-mule/risk", headers=ADMIN).json()
        assert risk["facts"]["fan_out"]["distinct_payees_1h"] == 12
        trace = api.get(f"/v1/trace/{alert.transfer_id}", headers=ADMIN).json()
        assert trace["root"]["transfer_id"] == alert.transfer_id
        moved = api.post(f"/v1/alerts/{alert.alert_id}/actions", headers=ADMIN,
                         json={"action": "escalate", "note": "on the cluster"})  # fmt: skip
        assert moved.status_code == 200, moved.text
        screened = api.post("/v1/screen", headers=ADMIN, json={
            "transfer_id": "pending-1", "ts": "2026-03-02T09:40:00+08:00",
            "src_account": "ring-victim", "dst_account": "ring-mule",
            "amount": "5000.00", "currency": "CNY"})  # fmt: skip
        assert screened.status_code == 200, screened.text
        assert screened.json()["payee_risk"]["account_id"] == "ring-mule"
        listed = api.post("/v1/watchlists/account", headers=ADMIN, json={
            "value": "ring-mule", "source": "test", "reason": "cluster"})  # fmt: skip
        assert listed.status_code in (200, 201), listed.text
        assert api.get("/readyz").status_code == 200


def test_cli_commands_use_the_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_cluster: LocalCluster,
    cluster_client: redis.cluster.RedisCluster, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("FRAUDWATCH_REDIS_URL", redis_cluster.url)
    monkeypatch.setenv("FRAUDWATCH_REDIS_CLUSTER", "true")
    monkeypatch.setenv("FRAUDWATCH_HOME", str(tmp_path))
    assert cli_main(["keys", "create", "--role", "analyst", "--name", "desk"]) == 0
    capsys.readouterr()
    assert cli_main(["keys", "list"]) == 0
    assert "desk" in capsys.readouterr().out
    listing = tmp_path / "list.csv"
    listing.write_text("kind,value,source,reason,expires_at\naccount,acct-9,test,cluster,\n")
    assert cli_main(["watchlist", "import", str(listing)]) == 0
    assert cli_main(["purge"]) == 0


def test_cases_decisions_and_webhooks_on_a_cluster(
    services: EmbeddedServices, tmp_path: Path, redis_cluster: LocalCluster,
    cluster_client: redis.cluster.RedisCluster,
) -> None:  # fmt: skip
    """The alert and case functions (one `{al}` slot), the suppressions, listings and
    webhooks (each in a slot of its own) work on a cluster as on one Redis."""
    settings = api_settings(services, tmp_path, redis_url=redis_cluster.url, redis_cluster=True,
                            webhook_allow_loopback=True)
    processor = BatchProcessor(
        wiring.redis_state_store(settings, cluster_client),
        wiring.alert_sink(settings, cluster_client),
        wiring.build_scorer(settings),
    )
    values = [json.dumps(event).encode() for event in fan_out_ring("case")]
    outcome = processor.process([Message("transfer", settings.topic_transfers, 0, n, value)
                                 for n, value in enumerate(values)])  # fmt: skip
    alert = outcome.new_alerts[-1]
    assert alert.case_id is not None
    with TestClient(create_app(settings)) as api:
        cases = api.get("/v1/cases", params={"account": alert.suspect_account},
                        headers=ADMIN).json()["items"]  # fmt: skip
        assert [c["case_id"] for c in cases] == [alert.case_id]
        detail = api.get(f"/v1/cases/{alert.case_id}", headers=ADMIN).json()
        assert alert.alert_id in {a["alert_id"] for a in detail["alerts"]}
        done = api.post(f"/v1/cases/{alert.case_id}/actions", headers=ADMIN,
                        json={"action": "confirm_fraud", "note": "on the cluster"})  # fmt: skip
        assert done.status_code == 200, done.text
        assert len(done.json()["moved"]) == detail["alert_count"]
        risk = api.get(f"/v1/accounts/{alert.suspect_account}/risk", headers=ADMIN).json()
        assert risk["listing"]["source"] == "investigation"
        hook = api.post("/v1/webhooks", headers=ADMIN, json={
            "url": "http://127.0.0.1:9/hook", "events": ["alert.updated"]})  # fmt: skip
        assert hook.status_code == 201, hook.text
        hook_id = hook.json()["webhook_id"]
        assert [h["webhook_id"] for h in api.get("/v1/webhooks", headers=ADMIN).json()["items"]
                ] == [hook_id]  # fmt: skip
        assert api.delete(f"/v1/webhooks/{hook_id}", headers=ADMIN).status_code == 204


def test_export_queues_and_suppressions_on_a_cluster(
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    """The alert event log, the webhook delivery queue (a claim script in the `{wh}` slot,
    transactions of one slot) and the suppressions (`{sp}`) work on a cluster."""
    events = AlertEventLog(cluster_client, "cluster-test", "reader-1")
    assert events.read(10, block_ms=1) == []  # creates the group on an empty log
    hooks = WebhookStore(cluster_client)
    hooks.add(Webhook("wh_cluster", "http://127.0.0.1:9/hook", ("alert.created",), "n", 1, "t"))
    hooks.enqueue([Delivery("d1", "wh_cluster", "alert.created", "al_x", 1, 0)], due_ms=5)
    (claimed,) = hooks.claim(now_ms=10, limit=5, lease_ms=1000)
    assert claimed.delivery_id == "d1" and hooks.claim(now_ms=10, limit=5, lease_ms=1000) == []
    hooks.retry_at("d1", due_ms=20)
    hooks.record("wh_cluster", {"delivery_id": "d1", "outcome": "retried"}, "retried")
    assert hooks.counts("wh_cluster") == {"retried": 1}
    hooks.finish("d1")
    assert hooks.pending() == 0 and hooks.remove("wh_cluster")
    store = SuppressionStore(cluster_client)
    assert store.put([Suppression("acct-1", "fan_out_rapid", 10**13, {"src_distinct_payees_1h": 9},
                                  "al_y", 1)]) == 1  # fmt: skip
    assert [s.rule for s in store.snapshot().of_account("acct-1")] == ["fan_out_rapid"]
