"""The API on the session Redis without a broker: alerts scored in-process, keys per role."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr

from service import wiring
from service.auth import Role
from service.embedded import EmbeddedServices
from service.settings import Settings
from streams.batch import BatchOutcome, BatchProcessor, Message
from streams.state.alert_store import AlertStore
from streams.state.pipelines import AnyRedis
from tests.integration.conftest import TEST_API_KEY
from tests.traffic import fan_out_ring

ADMIN = {"Authorization": f"Bearer {TEST_API_KEY}"}
TRANSFERS = "transfers"
ACCOUNTS = "accounts"


def api_settings(services: EmbeddedServices, home: Path, **overrides: Any) -> Settings:
    """Settings for an API on the session Redis (no broker needed)."""
    values: dict[str, Any] = {
        "home": home,
        "redis_url": services.redis_url,
        "api_keys": SecretStr(TEST_API_KEY),
        **overrides,
    }
    return Settings(**values)


def score_ring(settings: Settings, client: AnyRedis, prefix: str = "ring") -> BatchOutcome:
    """Score a fan-out ring as the worker would (state, alerts, features into Redis), with a
    profile giving the mule's holder a birth year."""
    processor = BatchProcessor(
        wiring.redis_state_store(settings, client),
        AlertStore(client),
        wiring.build_scorer(settings),
    )
    profile = {"account_id": f"{prefix}-mule", "holder_birth_year": 2004, "kind": "personal"}
    messages = [Message("profile", ACCOUNTS, 0, 0, json.dumps(profile).encode())]
    for offset, event in enumerate(fan_out_ring(prefix)):
        messages.append(Message("transfer", TRANSFERS, 0, offset, json.dumps(event).encode()))
    return processor.process(messages)


def key_for(api: TestClient, role: Role, name: str = "") -> dict[str, str]:
    """Create a key with `role` through the admin route; its Authorization header."""
    response = api.post("/v1/keys", json={"role": role, "name": name or role}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}
