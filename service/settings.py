"""The one settings object: every knob comes from a `FRAUDWATCH_` environment variable.

The README's configuration table lists each field with its default; keep the two in step.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.events import EARLIEST_EVENT_TIME, MAX_EVENT_AHEAD_HOURS
from streams.dead_letter import DEFAULT_ORIGINAL_MAX_BYTES

DEFAULT_RULES_DIR = Path(__file__).resolve().parent.parent / "rules" / "library"
DEFAULT_MODEL_PATH = (
    Path(__file__).resolve().parent.parent / "models" / "artifacts" / "fraudwatch-gbt.skops"
)
DEV_PII_KEY = "fraudwatch-dev-only-pii-key"


class Settings(BaseSettings):
    """Runtime configuration, read once per process from the environment."""

    model_config = SettingsConfigDict(env_prefix="FRAUDWATCH_", extra="ignore")

    env: Literal["dev", "prod"] = "dev"
    home: Path = Path(".fraudwatch")

    kafka_bootstrap: str | None = None
    redis_url: str | None = None
    partitions: int = Field(3, ge=1, le=256)

    topic_transfers: str = "transfers"
    topic_accounts: str = "accounts"
    topic_alerts: str = "alerts"
    topic_dlq: str = "transfers.dlq"
    # A dead letter keeps this much of the rejected message (with its full length and sha256),
    # so the envelope always fits the broker's record limit.
    dlq_original_max_bytes: int = Field(DEFAULT_ORIGINAL_MAX_BYTES, ge=1024, le=256 * 1024)
    consumer_group: str = "fraudwatch-worker"

    batch_size: int = Field(500, ge=1, le=20000)
    batch_wait_ms: int = Field(10, ge=1, le=10000)
    # Tansu waits this long for group members to (re)join; small keeps rebalances quick.
    max_poll_interval_ms: int = Field(30000, ge=1000)
    session_timeout_ms: int = Field(10000, ge=1000)

    rules_dir: Path = DEFAULT_RULES_DIR
    # The trained model scored alongside the rules; set it empty to score with rules alone.
    model_path: Path | None = DEFAULT_MODEL_PATH
    # The model's share of the combined score (the rules get the rest); see models/scorer.py.
    model_weight: float = Field(0.8, ge=0.0, le=1.0)

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    # Processes serving the API (uvicorn workers); each uses about one core under load.
    api_workers: int = Field(1, ge=1, le=64)
    # Comma-separated bootstrap keys with the admin role; more keys come from `fraudwatch keys`.
    api_keys: SecretStr = SecretStr("")
    # Keys from `fraudwatch keys` are cached this long per API process: a revocation takes
    # effect on every replica within it.
    key_cache_seconds: float = Field(5.0, ge=0.0, le=300.0)
    # Per key, shared by all API replicas (0 = no limit); burst = most requests in one second.
    rate_limit_per_minute: int = Field(6000, ge=0)
    rate_limit_burst: int = Field(200, ge=1)
    # How often a worker checks whether `POST /v1/rules/reload` asked for a reload.
    rules_check_seconds: float = Field(1.0, gt=0.0, le=60.0)

    worker_metrics_port: int = Field(9464, ge=0, le=65535)

    state_ttl_days: int = Field(35, ge=1)
    dedupe_ttl_hours: int = Field(72, ge=1)
    trace_ttl_days: int = Field(30, ge=1)
    # A trace stops (and says `truncated`) at this many transfers.
    trace_max_edges: int = Field(500, ge=10, le=10000)
    # Workers and API processes check the watchlist version at most this often.
    watchlist_refresh_s: float = Field(1.0, ge=0.0, le=60.0)
    window_cap: int = Field(1000, ge=10)
    # Transfers timed outside [ts_earliest, clock + ts_max_ahead_hours] are dead-lettered
    # (`ts_out_of_range`) and screening answers 422 for them.
    ts_earliest: datetime = EARLIEST_EVENT_TIME
    ts_max_ahead_hours: int = Field(MAX_EVENT_AHEAD_HOURS, ge=0, le=24 * 365)

    alert_threshold: float = Field(0.5, ge=0.0, le=1.0)
    severity_medium: float = Field(0.65, ge=0.0, le=1.0)
    severity_high: float = Field(0.8, ge=0.0, le=1.0)
    severity_critical: float = Field(0.92, ge=0.0, le=1.0)

    # Retention: closed (confirmed or dismissed) alerts with their history and features, the
    # audit log, and watchlist entries after their expiry; purged by the workers at most once
    # per interval across all of them (0 = only `fraudwatch purge`).
    alert_retention_days: int = Field(1825, ge=1)
    audit_retention_days: int = Field(1095, ge=1)
    watchlist_expired_retention_days: int = Field(365, ge=1)
    purge_interval_minutes: int = Field(60, ge=0)

    # Keys personal data (device ids, phones, IPs) before they reach Redis or logs.
    pii_key: SecretStr = SecretStr(DEV_PII_KEY)

    log_level: str = "INFO"

    @field_validator("model_path", mode="before")
    @classmethod
    def _empty_means_no_model(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("ts_earliest")
    @classmethod
    def _earliest_has_offset(cls, value: datetime) -> datetime:
        if value.utcoffset() is None:
            raise ValueError("must carry a UTC offset, e.g. 2000-01-01T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_prod(self) -> Settings:
        if self.env == "prod" and self.pii_key.get_secret_value() == DEV_PII_KEY:
            raise ValueError("FRAUDWATCH_PII_KEY must be set to a secret when FRAUDWATCH_ENV=prod")
        if not (
            self.alert_threshold
            <= self.severity_medium
            <= self.severity_high
            <= self.severity_critical
        ):
            raise ValueError(
                "severity bands must rise: alert_threshold <= severity_medium "
                "<= severity_high <= severity_critical"
            )
        return self

    @property
    def run_file(self) -> Path:
        """Where `fraudwatch up` records the running stack's addresses and key."""
        return self.home / "run.json"

    def bootstrap_api_keys(self) -> list[str]:
        """The admin keys given by configuration."""
        raw = self.api_keys.get_secret_value()
        return [k.strip() for k in raw.split(",") if k.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings (read once; tests build their own `Settings`)."""
    return Settings()
