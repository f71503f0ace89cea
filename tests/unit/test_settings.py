"""Settings: production refuses placeholder secrets; derived rules (four eyes, time window)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from service.settings import DEV_PII_KEY, Settings, unknown_variables

REAL: dict[str, Any] = {
    "env": "prod",
    "pii_key": SecretStr("9f2c" * 16),
    "api_keys": SecretStr("kV3nq0f8s2Jc1x7L"),
    "redis_password": SecretStr("e1b77c4a90d2f6b3"),
}


def test_prod_starts_with_real_secrets() -> None:
    assert Settings(**REAL).unsafe_secrets() == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"pii_key": SecretStr(DEV_PII_KEY)}, "FRAUDWATCH_PII_KEY"),
        ({"pii_key": SecretStr("replace-me-pii-key")}, "FRAUDWATCH_PII_KEY"),
        ({"pii_key": SecretStr("")}, "FRAUDWATCH_PII_KEY"),
        ({"pii_key": SecretStr("x" * 31)}, "FRAUDWATCH_PII_KEY"),  # guessable: too short
        ({"pii_key": SecretStr("REPLACE-ME" + "9f2c" * 8)}, "FRAUDWATCH_PII_KEY"),
        ({"pii_key": SecretStr(f" {DEV_PII_KEY} ")}, "FRAUDWATCH_PII_KEY"),
        ({"api_keys": SecretStr("a")}, "FRAUDWATCH_API_KEYS"),
        ({"api_keys": SecretStr("good-key-1234567,replace-me-admin-key")}, "FRAUDWATCH_API_KEYS"),
        ({"redis_password": SecretStr("replace-me-redis-password")}, "FRAUDWATCH_REDIS_PASSWORD"),
        (
            {"redis_url": "redis://:replace-me-redis-password@redis:6379/0"},
            "FRAUDWATCH_REDIS_PASSWORD",
        ),
    ],
)
def test_prod_refuses_each_placeholder_secret_by_name(change: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(**{**REAL, **change})
    Settings(**{**REAL, **change, "env": "dev"})  # development takes them


def test_four_eyes_is_on_in_prod_unless_switched_off() -> None:
    assert Settings(**REAL).four_eyes_rule
    assert not Settings(**REAL, four_eyes=False).four_eyes_rule
    assert not Settings().four_eyes_rule
    assert Settings(four_eyes=True).four_eyes_rule


def test_event_time_window_from_settings() -> None:
    bounds = Settings().event_time_bounds()
    assert (bounds.earliest_ms, bounds.max_ahead_ms) == (946_684_800_000, 86_400_000)
    custom = Settings(event_time_earliest="2010-01-01T08:00:00+08:00", event_time_max_ahead_hours=2)
    assert custom.event_time_bounds().earliest_ms == 1_262_304_000_000
    assert custom.event_time_bounds().max_ahead_ms == 7_200_000
    with pytest.raises(ValidationError, match="UTC offset"):
        Settings(event_time_earliest="2010-01-01T00:00:00")


def test_phone_region_must_have_a_numbering_plan() -> None:
    assert Settings(phone_region="it").phone_region == "IT"
    with pytest.raises(ValidationError, match="numbering plan"):
        Settings(phone_region="XX")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_poll_interval_ms", 2**31),  # Kafka's int32: the worker never joined its group
        ("session_timeout_ms", 2**31),
        ("state_ttl_days", 10_001),  # reaches before 1970: Redis refused, blamed on Redis
        ("audit_retention_days", 99_999_999),
    ],
)
def test_timeouts_and_retentions_beyond_what_kafka_and_redis_take_are_refused(
    name: str, value: int
) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings.model_validate({name: value})


def test_a_misspelt_variable_is_named_with_the_setting_it_meant() -> None:
    environ = {"FRAUDWATCH_BATCHSIZE": "3", "FRAUDWATCH_BATCH_SIZE": "3", "FRAUDWATCH_ZZZ": "1",
               "FRAUDWATCH_IMAGE_TAG": "0.1.0", "PATH": "/bin"}  # fmt: skip
    assert unknown_variables(environ) == [
        "FRAUDWATCH_BATCHSIZE (did you mean FRAUDWATCH_BATCH_SIZE?)",
        "FRAUDWATCH_ZZZ",
    ]


def test_every_variable_the_project_names_is_a_setting_or_known_to_be_none() -> None:
    root = Path(__file__).resolve().parents[2]
    named = set()
    for folder in ("service", "streams", "models", "loadtest", "deploy", "tests"):
        for path in (root / folder).rglob("*"):
            mentioned = path.suffix in {".py", ".sh", ".yml", ".md", ""} and path.is_file()
            if mentioned and path != Path(__file__).resolve():  # this file misspells on purpose
                named |= set(
                    re.findall(r"FRAUDWATCH_[A-Z_]*[A-Z]", path.read_text("utf-8", "replace"))
                )
    for path in (root / "docker-compose.yml", root / ".env.example", root / "README.md"):
        named |= set(re.findall(r"FRAUDWATCH_[A-Z_]*[A-Z]", path.read_text()))
    assert unknown_variables(dict.fromkeys(named, "")) == []


def test_local_timezone_is_an_iana_zone_or_none() -> None:
    assert Settings().local_zone() is None
    zone = Settings(local_timezone="Asia/Shanghai").local_zone()
    assert zone is not None and str(zone) == "Asia/Shanghai"
    for bad in ("Mars/Base", "../etc/localtime", "+08:00"):
        with pytest.raises(ValidationError, match="IANA time zone"):
            Settings(local_timezone=bad)


def test_an_empty_variable_leaves_a_setting_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDWATCH_FOUR_EYES", "")
    monkeypatch.setenv("FRAUDWATCH_MODEL_PATH", "")
    settings = Settings()
    assert (settings.four_eyes, settings.model_path) == (None, None)
