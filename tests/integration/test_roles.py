"""Keys and roles on a real Redis: 401/403 per role, hashed keys, revocation, rate limits, CLI."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import ROLES, Role, key_digest
from service.cli import main
from tests.integration.keyed_api import ADMIN, api_settings, key_for, score_ring

# Every route of this items 2, 5 and 6 (plus the account view and alert queue), with
# the roles besides admin that may call it.
ROUTES: dict[tuple[str, str], tuple[Role, ...]] = {
    ("GET", "/v1/alerts"): ("investigator", "analyst"),
    ("GET", "/v1/alerts/{alert}"): ("investigator", "analyst"),
    ("GET", "/v1/alerts/{alert}/history"): ("investigator", "analyst"),
    ("POST", "/v1/alerts/{alert}/actions"): ("investigator",),
    ("GET", "/v1/accounts/ring-mule/risk"): ("bank", "investigator"),
    ("GET", "/v1/rules"): ("analyst",),
    ("POST", "/v1/rules/reload"): (),
    ("GET", "/v1/keys"): (),
    ("POST", "/v1/keys"): (),
    ("DELETE", "/v1/keys/key_000000000000"): (),
    ("GET", "/v1/audit"): (),
}
BODIES = {
    "/v1/alerts/{alert}/actions": {"action": "escalate", "note": "role check"},
    "/v1/keys": {"role": "bank", "name": "role check"},
}


@pytest.fixture
def api(services, redis_client: redis.Redis, tmp_path) -> Iterator[TestClient]:
    """The API over a scored ring, with the session's admin key."""
    settings = api_settings(services, tmp_path)
    score_ring(settings, redis_client)
    with TestClient(create_app(settings)) as client:
        yield client


def test_each_role_gets_403_outside_its_routes(api: TestClient) -> None:
    alert_id = api.get("/v1/alerts", headers=ADMIN).json()["items"][0]["alert_id"]
    headers = {role: key_for(api, role) for role in ROLES}
    for (method, template), allowed in ROUTES.items():
        path = template.replace("{alert}", alert_id)
        for role in ROLES:
            response = api.request(method, path, headers=headers[role], json=BODIES.get(template))
            may = role == "admin" or role in allowed
            assert (response.status_code == 403) != may, (method, path, role, response.text)
            if not may:
                assert response.json()["error"] == "forbidden"


def test_every_versioned_route_wants_a_key(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    routes = [(m.upper(), p) for p, ops in paths.items() if p.startswith("/v1/") for m in ops]
    assert len(routes) >= len(ROUTES)
    for method, template in routes:
        path = template.replace("{", "").replace("}", "")
        response = api.request(method, path, headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401, (method, template)
        assert response.json()["error"] == "unauthorized"


def test_keys_are_hashed_listed_without_secrets_and_revocable(
    services, api: TestClient, redis_client: redis.Redis, tmp_path
) -> None:
    created = api.post("/v1/keys", json={"role": "analyst", "name": "risk team"}, headers=ADMIN)
    secret, key_id = created.json()["key"], created.json()["id"]
    bearer = {"Authorization": f"Bearer {secret}"}
    everything = json.dumps(
        {k.decode(): repr(redis_client.dump(k)) for k in redis_client.scan_iter()}
    )
    assert secret not in everything and key_digest(secret) in everything
    listed = api.get("/v1/keys", headers=ADMIN).json()["items"]
    assert [k for k in listed if k["id"] == key_id] == [
        {"id": key_id, "name": "risk team", "role": "analyst",
         "created_at": created.json()["created_at"], "revoked_at": None}
    ]  # fmt: skip
    assert all("key" not in k for k in listed)
    settings = api_settings(services, tmp_path, key_cache_seconds=60)
    with TestClient(create_app(settings)) as replica:
        assert replica.get("/v1/rules", headers=bearer).status_code == 200  # now cached there
        revoked = api.delete(f"/v1/keys/{key_id}", headers=ADMIN)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        assert api.get("/v1/rules", headers=bearer).status_code == 401  # at once where revoked
        assert replica.get("/v1/rules", headers=bearer).status_code == 200  # until its TTL
    assert api.delete("/v1/keys/key_000000000000", headers=ADMIN).status_code == 404


def test_rate_limit_per_key_is_429_with_retry_after(
    services, redis_client: redis.Redis, tmp_path
) -> None:
    if time.time() % 60 > 58:  # the minute counter must not roll over mid-test
        time.sleep(2.5)
    settings = api_settings(services, tmp_path, rate_limit_per_minute=5, rate_limit_burst=100)
    with TestClient(create_app(settings)) as api:
        other = key_for(api, "analyst")  # the admin's 1st request
        codes = [api.get("/v1/rules", headers=ADMIN).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 200, 429]
        limited = api.get("/v1/rules", headers=ADMIN)
        assert limited.json()["error"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert api.get("/v1/rules", headers=other).status_code == 200  # its own budget
    bursty = api_settings(services, tmp_path, rate_limit_per_minute=1000, rate_limit_burst=3)
    with TestClient(create_app(bursty)) as api:
        responses = [api.get("/v1/rules", headers=ADMIN) for _ in range(10)]
        assert [r.headers["retry-after"] for r in responses if r.status_code == 429][:1] == ["1"]


def test_keys_cli_finds_the_running_stack(
    services, redis_client: redis.Redis, tmp_path, monkeypatch, capsys
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "run.json").write_text(json.dumps({"redis_url": services.redis_url}))
    monkeypatch.setenv("FRAUDWATCH_HOME", str(home))
    assert main(["keys", "create", "--role", "bank", "--name", "branch 0417"]) == 0
    secret = capsys.readouterr().out
    assert secret.count("\n") == 1 and secret.startswith("fw_")
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    key_id = listing.split()[0]
    assert "bank" in listing and "branch 0417" in listing and secret.strip() not in listing
    settings = api_settings(services, tmp_path)
    with TestClient(create_app(settings)) as api:
        bearer = {"Authorization": f"Bearer {secret.strip()}"}
        assert api.get("/v1/accounts/nobody/risk", headers=bearer).status_code == 200
        assert main(["keys", "revoke", key_id]) == 0
        assert api.get("/v1/accounts/nobody/risk", headers=bearer).status_code == 200  # cached
    with TestClient(create_app(settings)) as api:
        assert api.get("/v1/accounts/nobody/risk", headers=bearer).status_code == 401
        # Both changes are in the audit log, by the command line's user.
        audited = api.get("/v1/audit", params={"key_id": "cli"}, headers=ADMIN).json()["items"]
    assert [(e["path"], e["resource"]) for e in audited] == [
        ("fraudwatch keys revoke", f"key {key_id} revoked"),
        ("fraudwatch keys create", f"key {key_id} created"),
    ]
