"""The one settings object: every knob comes from a `FRAUDWATCH_` environment variable.

The README's configuration table lists each field with its default; keep the two in step.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.currency import parse_rates
from models.events import EventTimeBounds
from models.identifiers import DEFAULT_PHONE_REGION, is_phone_region
from streams.dead_letter import DEFAULT_ORIGINAL_MAX_BYTES

DEFAULT_RULES_DIR = Path(__file__).resolve().parent.parent / "rules" / "library"
DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "rules" / "policy.yaml"
DEFAULT_MODEL_PATH = (
    Path(__file__).resolve().parent.parent / "models" / "artifacts" / "fraudwatch-gbt.skops"
)
DEV_PII_KEY = "fraudwatch-dev-only-pii-key"
# What .env.example ships in place of every secret: never a real one.
PLACEHOLDER = "replace-me"
# The shortest secrets production takes: the PII key guards every pseudonym (a short one is
# guessed, and then every phone and IP with it), an API key an admin's access.
MIN_PII_KEY_CHARS = 32
MIN_API_KEY_CHARS = 16
MIB = 1024 * 1024


def shown_url(url: str | None) -> str:
    """A service URL as it may be printed: a password in it masked."""
    parts = urlsplit(url or "")
    if not parts.password:
        return url or ""
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


_INT32_MAX = 2**31 - 1
# Longest TTL or retention (about 27 years): a longer one reaches back before 1970, which Redis
# refuses as an expiry or a stream id, blamed on Redis rather than on the setting.
_MAX_DAYS = 10_000


# FRAUDWATCH_* variables that are no setting of the service: those only docker-compose.yml
# reads (the services get the whole env file, so these reach them too), the image's
# health-check URL and the test suite's knobs.
OTHER_VARIABLES = frozenset({
    "FRAUDWATCH_ENV_FILE", "FRAUDWATCH_IMAGE_TAG", "FRAUDWATCH_API_PUBLISH_PORT",
    "FRAUDWATCH_REPLICATION_FACTOR", "FRAUDWATCH_MIN_INSYNC_REPLICAS",
    "FRAUDWATCH_HEALTHCHECK_URL",
    "FRAUDWATCH_FUZZ_EXAMPLES", "FRAUDWATCH_FUZZ_HOSTILE", "FRAUDWATCH_UPDATE_SCREENSHOTS",
})  # fmt: skip


class Settings(BaseSettings):
    """Runtime configuration, read once per process from the environment."""

    model_config = SettingsConfigDict(env_prefix="FRAUDWATCH_", extra="ignore")

    env: Literal["dev", "prod"] = "dev"
    home: Path = Path(".fraudwatch")

    kafka_bootstrap: str | None = None
    redis_url: str | None = None
    # The URL names one node of a Redis Cluster (any node: clients find the others).
    redis_cluster: bool = False
    # Redis's `requirepass`, for every client fraudwatch makes (a password in the URL wins).
    redis_password: SecretStr = SecretStr("")
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
    # A worker reads its partitions merged in event time; it holds the others back at most
    # this long for one whose records are on the broker but have not arrived (or, in a replay
    # of history, for one that ran dry while its next records may be on their way).
    partition_wait_ms: int = Field(1000, ge=0, le=600_000)
    # Tansu waits this long for group members to (re)join; small keeps rebalances quick.
    # Kafka carries both as 32-bit integers: a larger one never joins the group.
    max_poll_interval_ms: int = Field(30000, ge=1000, le=_INT32_MAX)
    session_timeout_ms: int = Field(10000, ge=1000, le=_INT32_MAX)

    rules_dir: Path = DEFAULT_RULES_DIR
    # What screening answers (allow, warn, hold, block) and the customer's warning.
    policy_path: Path = DEFAULT_POLICY_PATH
    # The trained model scored alongside the rules; set it empty to score with rules alone.
    model_path: Path | None = DEFAULT_MODEL_PATH
    # The model's share of the combined score (the rules get the rest); see models/scorer.py.
    model_weight: float = Field(0.8, ge=0.0, le=1.0)
    # Units of the scoring currency (CNY) per unit of other currencies, replacing or adding to
    # the reference rates (`models.currency`): `USD=7.12,EUR=7.74`.
    currency_rates: str = ""
    # IANA zone (`Asia/Shanghai`) whose clock the model reads a transfer's hour of day on,
    # whatever offset the event carries: for feeds that send every time in UTC. Empty: the
    # offset each event carries (the payer's own clock).
    local_timezone: str = ""

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    # Processes serving the API (uvicorn workers); each uses about one core under load.
    api_workers: int = Field(1, ge=1, le=64)
    # Screening requests that may wait for a batch in one API process; more are answered 503.
    screen_max_waiting: int = Field(512, ge=1)
    # Comma-separated bootstrap keys with the admin role; more keys come from `fraudwatch keys`.
    api_keys: SecretStr = SecretStr("")
    # Keys from `fraudwatch keys` are cached this long per API process: a revocation takes
    # effect on every replica within it.
    key_cache_seconds: float = Field(5.0, ge=0.0, le=300.0)
    # Per key, shared by all API replicas (0 = no limit); burst = most requests in one second.
    rate_limit_per_minute: int = Field(6000, ge=0)
    rate_limit_burst: int = Field(200, ge=1)
    # Request bodies: larger ones get 413 before anything parses them or checks the key; a
    # body that stops arriving for `body_timeout_s`, or is not whole after `body_deadline_s`
    # (a drip of a byte every few seconds), gets 408. The CSV import has its own cap.
    max_body_bytes: int = Field(MIB, ge=1024, le=64 * MIB)
    max_import_bytes: int = Field(5 * MIB, ge=1024, le=256 * MIB)
    body_timeout_s: float = Field(4.0, gt=0.0, le=300.0)
    body_deadline_s: float = Field(60.0, gt=0.0, le=3600.0)
    # Most index entries one alert-list or audit request examines; a rare filter then answers
    # a short (even empty) page with a cursor to continue, never a scan of the whole index.
    scan_budget: int = Field(10_000, ge=100, le=1_000_000)
    # The key that confirmed an alert, or appealed it, may not restore it. Unset: on in prod.
    four_eyes: bool | None = None
    # How often a worker checks whether `POST /v1/rules/reload` asked for a reload.
    rules_check_seconds: float = Field(1.0, gt=0.0, le=60.0)

    worker_metrics_port: int = Field(9464, ge=0, le=65535)

    state_ttl_days: int = Field(35, ge=1, le=_MAX_DAYS)
    # How long (event time) a transfer's facts are kept for its redeliveries; within the
    # 30-day windows that hold its entries.
    dedupe_ttl_hours: int = Field(72, ge=1, le=720)
    trace_ttl_days: int = Field(30, ge=1, le=_MAX_DAYS)
    # A trace stops (and says `truncated`) at this many transfers.
    trace_max_edges: int = Field(500, ge=10, le=10000)
    # Workers and API processes check the watchlist (and suppression) version at most this often.
    watchlist_refresh_s: float = Field(1.0, ge=0.0, le=60.0)
    # A dismissed alert's pattern (its rules, for its suspect account) raises no alert for this
    # long, unless its evidence grows by half again.
    suppress_days: int = Field(30, ge=0, le=3650)
    # The alert event log (alert.created / alert.updated, read by webhooks and the update
    # publisher) keeps about this many entries; readers that fall further behind lose the oldest.
    alert_events_max: int = Field(200_000, ge=1000, le=100_000_000)
    # Webhook deliveries: how long a receiver may take to answer, the pause before the first
    # retry (it doubles, up to an hour), and how long after the first attempt to give up.
    webhook_timeout_s: float = Field(5.0, gt=0.0, le=60.0)
    # Deliveries to this machine's own addresses (a receiver beside it in development).
    webhook_allow_loopback: bool = False
    webhook_retry_first_s: float = Field(10.0, gt=0.0, le=3600.0)
    webhook_retry_hours: float = Field(24.0, gt=0.0, le=24 * 14)
    window_cap: int = Field(1000, ge=10, le=32_000)
    # Event times accepted (worker and screening): not before this, not further ahead of the
    # receiver's clock than this many hours. Outside: DLQ `ts_out_of_range`, or 422.
    event_time_earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    event_time_max_ahead_hours: float = Field(24.0, ge=0.0, le=24 * 366)

    # Cases: a suspect account's alerts within this many hours of its case's events join it;
    # suspects linked by alerted money flows within this many hours are one ring case.
    case_window_hours: float = Field(72.0, gt=0.0, le=24 * 90)
    case_link_hours: float = Field(24.0, gt=0.0, le=24 * 30)

    alert_threshold: float = Field(0.5, ge=0.0, le=1.0)
    severity_medium: float = Field(0.65, ge=0.0, le=1.0)
    severity_high: float = Field(0.8, ge=0.0, le=1.0)
    severity_critical: float = Field(0.92, ge=0.0, le=1.0)

    # Retention: closed (confirmed or dismissed) alerts with their history and features, the
    # audit log, and watchlist entries after their expiry; purged by the workers at most once
    # per interval across all of them (0 = only `fraudwatch purge`).
    alert_retention_days: int = Field(1825, ge=1, le=_MAX_DAYS)
    audit_retention_days: int = Field(1095, ge=1, le=_MAX_DAYS)
    watchlist_expired_retention_days: int = Field(365, ge=1, le=_MAX_DAYS)
    purge_interval_minutes: int = Field(60, ge=0)

    # Keys personal data (device ids, phones, IPs) before they reach Redis or logs.
    pii_key: SecretStr = SecretStr(DEV_PII_KEY)
    # Phone numbers written without `+` or an international prefix are read as numbers of
    # this region (ISO 3166-1), so `13800138000` and `+86 138 0013 8000` are one phone.
    phone_region: str = DEFAULT_PHONE_REGION

    log_level: str = "INFO"

    @field_validator("model_path", "four_eyes", mode="before")
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        # No model; the four-eyes rule by environment.
        return None if value in ("", None) else value

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if not is_phone_region(value):
            raise ValueError(f"{value!r} is not an ISO 3166-1 region with a phone numbering plan")
        return value.upper()

    @field_validator("redis_url")
    @classmethod
    def _redis_url_reads(cls, value: str | None) -> str | None:
        # What the client would fail on later, with a traceback: said here, in one line.
        if value is None:
            return value
        try:
            parts = urlsplit(value)
            _ = parts.port  # raises for a port out of range or not a number
        except ValueError as error:
            raise ValueError(f"not a Redis URL: {error}") from None
        if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
            raise ValueError("must look like redis://HOST:PORT/DB (or rediss://, unix://)")
        # redis-py reads a database that is not a number as 0, silently.
        if parts.scheme != "unix" and not re.fullmatch(r"/?(\d+)?", parts.path):
            raise ValueError(
                f"the database must be a number (redis://HOST:PORT/0), not {parts.path!r}"
            )
        return value

    @field_validator("topic_transfers", "topic_accounts", "topic_alerts", "topic_dlq")
    @classmethod
    def _topic_name_legal(cls, value: str) -> str:
        # Kafka's own rule: the worker otherwise starts and fails on every call, again and again.
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", value) or value in (".", ".."):
            raise ValueError("a Kafka topic name: 1-249 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_reads(cls, value: str | None) -> str | None:
        if not value:  # unset: `up` embeds a broker
            return value
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"must be HOST:PORT[,HOST:PORT...], not {server.strip()!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level_known(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    @field_validator("currency_rates")
    @classmethod
    def _currency_rates_parse(cls, value: str) -> str:
        parse_rates(value)
        return value

    @field_validator("rules_dir", "policy_path", "home", mode="before")
    @classmethod
    def _path_named(cls, value: object) -> object:
        # An empty variable would be the current directory: the rules read from wherever the
        # command runs (docker-compose.yml parsed as a rule file).
        if isinstance(value, str) and not value.strip():
            raise ValueError("must name a path (unset it for the default)")
        return value

    @field_validator("local_timezone")
    @classmethod
    def _local_timezone_known(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    "must be an IANA time zone such as Asia/Shanghai, or empty"
                ) from None
        return value

    @field_validator("event_time_earliest")
    @classmethod
    def _earliest_has_offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2000-01-01T00:00:00Z")
        if value > datetime.now(UTC):  # every transfer would be dead-lettered
            raise ValueError("must be in the past: every transfer before it is refused")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_prod(self) -> Settings:
        if self.env == "prod":
            unsafe = self.unsafe_secrets()
            if unsafe:
                raise ValueError(
                    f"{', '.join(unsafe)} must be set to real secrets when FRAUDWATCH_ENV=prod "
                    f"(not the development default or a '{PLACEHOLDER}' value from .env.example; "
                    f"a PII key of at least {MIN_PII_KEY_CHARS} characters, API keys of at least "
                    f"{MIN_API_KEY_CHARS}: e.g. `openssl rand -base64 32`)"
                )
        if not (
            self.alert_threshold
            <= self.severity_medium
            <= self.severity_high
            <= self.severity_critical
        ):
            raise ValueError(
                "severity bands must rise: FRAUDWATCH_ALERT_THRESHOLD <= "
                "FRAUDWATCH_SEVERITY_MEDIUM <= FRAUDWATCH_SEVERITY_HIGH <= "
                "FRAUDWATCH_SEVERITY_CRITICAL"
            )
        return self

    def unsafe_secrets(self) -> list[str]:
        """The variables whose secret is the development default, a placeholder (in any
        case), or too short to be one."""

        def placeholder(secret: str) -> bool:
            return PLACEHOLDER in secret.lower() or secret.strip() == DEV_PII_KEY

        pii = self.pii_key.get_secret_value()
        unsafe = []
        if placeholder(pii) or len(pii.strip()) < MIN_PII_KEY_CHARS:
            unsafe.append("FRAUDWATCH_PII_KEY")
        keys = self.bootstrap_api_keys()
        if any(placeholder(key) or len(key) < MIN_API_KEY_CHARS for key in keys):
            unsafe.append("FRAUDWATCH_API_KEYS")
        url_password = unquote(urlsplit(self.redis_url or "").password or "")
        if placeholder(self.redis_password.get_secret_value()) or placeholder(url_password):
            unsafe.append("FRAUDWATCH_REDIS_PASSWORD")
        return unsafe

    @property
    def four_eyes_rule(self) -> bool:
        """Whether the four-eyes rule is in force (`four_eyes`, or by default in prod)."""
        return self.env == "prod" if self.four_eyes is None else self.four_eyes

    def local_zone(self) -> ZoneInfo | None:
        """The zone hours of day are read in, or None for each event's own offset."""
        return ZoneInfo(self.local_timezone) if self.local_timezone else None

    def event_time_bounds(self) -> EventTimeBounds:
        """The accepted event-time window, for the worker and for screening."""
        return EventTimeBounds(
            earliest_ms=int(self.event_time_earliest.timestamp() * 1000),
            max_ahead_ms=int(self.event_time_max_ahead_hours * 3_600_000),
        )

    def topics(self) -> list[str]:
        """The topic names the service uses: transfers, accounts, alerts and the dead letters."""
        return [self.topic_transfers, self.topic_accounts, self.topic_alerts, self.topic_dlq]

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


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`FRAUDWATCH_*` variables that name no setting (a misspelt one is otherwise ignored
    without a word), each with the setting it most likely meant."""
    known = {f"FRAUDWATCH_{name.upper()}" for name in Settings.model_fields}
    accepted = known | OTHER_VARIABLES
    said = []
    for name in sorted(environ):
        if name.startswith("FRAUDWATCH_") and name not in accepted:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
            said.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return said
