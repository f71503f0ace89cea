"""One phone or IP written several ways is one identifier everywhere: watchlist hits in
screening, "two cards" counts in state, and watchlist entries keyed before normalising."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from fastapi.testclient import TestClient

from models.events import parse_transfer
from service import wiring
from service.app import create_app
from service.settings import Settings
from streams.state.watchlists import entries_key, index_key
from tests.integration.harness import wait_for
from tests.integration.keyed_api import ADMIN, api_settings
from tests.traffic import T0, event


@pytest.fixture
def settings(services, redis_client: redis.Redis, tmp_path) -> Settings:
    return api_settings(services, tmp_path, rate_limit_per_minute=0, model_path=None)


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_listed_phone_and_ip_are_hit_however_a_transfer_writes_them(api: TestClient) -> None:
    for kind, value in (("phone", "+86 138 0013 8000"), ("ip", "2001:db8::7")):
        listing = {"value": value, "source": "anti-fraud centre", "reason": "scam infrastructure"}
        assert api.post(f"/v1/watchlists/{kind}", json=listing, headers=ADMIN).status_code == 201
    for n, (phone, ip) in enumerate(
        [("0086 138 0013 8000", "192.0.2.50"), ("13800138000", "192.0.2.51"),
         ("+10 000 000 0000", "2001:DB8:0::7"), ("+1 202 555 0100", "::ffff:192.0.2.9")]
    ):  # fmt: skip
        transfer = event(f"forms-{n}", f"payer-{n}", "payee-z", T0, "100.00", phone=phone, ip=ip)
        body = api.post("/v1/screen", json=transfer, headers=ADMIN).json()
        # A listed phone or IP of the payer's session suspects the payer.
        hits = [r for r in body["reasons"] if r["rule"] == "watchlist_payer"]
        expected = 0 if n == 3 else 1
        assert len(hits) == expected, (phone, ip, body["reasons"])
        if hits:
            assert hits[0]["evidence"]["watchlist_hits"] == 1


def test_two_cards_counts_do_not_split_over_how_a_phone_or_ip_is_written(
    api: TestClient, settings: Settings, redis_client: redis.Redis
) -> None:
    forms = [("+86 138 0013 8000", "2001:DB8::1"), ("13800138000", "2001:db8::1"),
             ("0086-138-0013-8000", "2001:0db8:0:0::1")]  # fmt: skip
    transfers = [
        parse_transfer(json.dumps(event(f"two-cards-{i}", f"card-{i}", "collector",
                                        T0 + timedelta(minutes=i), "200.00",
                                        phone=phone, ip=ip)).encode())
        for i, (phone, ip) in enumerate(forms)
    ]  # fmt: skip
    facts = wiring.redis_state_store(settings, redis_client).apply_transfers(transfers)
    # The third payer's phone and IP were each used by all three accounts within 7 days.
    assert (facts[-1].entities.phone_accounts_7d, facts[-1].entities.ip_accounts_7d) == (3, 3)
    risk = api.get("/v1/accounts/card-0/risk", headers=ADMIN).json()["facts"]
    shared = {i["kind"]: i["other_accounts"] for i in risk["shared_identifiers"]}
    assert shared == {"phone": ["card-1", "card-2"], "ip": ["card-1", "card-2"]}


def test_entries_listed_before_normalising_are_re_keyed_at_start(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # What an older version stored: the entry under the pseudonym of the raw text.
    value = "+86 139 0013 9000"
    key = settings.pii_key.get_secret_value().encode()
    old_key = hmac.new(key, f"phone:{value}".encode(), hashlib.sha256).hexdigest()[:20]
    entry = json.dumps([value, "police notice", "scam SIM", 1_772_000_000_000, None])
    redis_client.hset(entries_key("phone"), old_key, entry)
    redis_client.zadd(index_key("phone"), {old_key: 0})
    with TestClient(create_app(settings)) as api:
        new_key = wiring.entity_hasher(settings)("phone", value)
        wait_for(lambda: redis_client.hexists(entries_key("phone"), new_key), timeout_s=10,
                 what="the entry moved to its normalised key")  # fmt: skip
        assert not redis_client.hexists(entries_key("phone"), old_key)
        transfer = event("rekeyed", "payer-r", "payee-r", T0, "100.00", phone="13900139000")
        wait_for(
            lambda: any(r["rule"] == "watchlist_payer" for r in
                        api.post("/v1/screen", json=transfer, headers=ADMIN).json()["reasons"]),
            timeout_s=10, what="screening sees the re-keyed entry",
        )  # fmt: skip
        assert api.delete("/v1/watchlists/phone/13900139000", headers=ADMIN).status_code == 204
