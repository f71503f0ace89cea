"""Data kept only as long as needed, on the session's real Redis: closed alerts, the audit
log and expired watchlist entries are purged past retention (work in progress is kept), and
the raw identifiers of an account leave with the windows they explain."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import orjson
import redis

from models.events import AccountProfile, Transfer, parse_transfer
from models.features import MS_PER_DAY
from models.suppression import Suppression
from models.watchlist import WatchlistEntry
from models.workflow import Action, Actor
from service.audit import STREAM, AuditLog
from service.auth import Caller
from service.embedded import EmbeddedServices
from service.retention import LOCK_KEY, PurgeSchedule, RetentionPolicy, purge
from streams.state import keys, spec
from streams.state.alert_store import ALL_INDEX, AlertStore, features_key, history_key
from streams.state.base import EntityHasher, StateLimits
from streams.state.redis_store import RedisStateStore
from streams.state.suppressions import SuppressionStore
from streams.state.watchlists import WatchlistStore
from tests.integration.keyed_api import api_settings, score_ring
from tests.traffic import T0, event

T0_MS = int(T0.timestamp() * 1000)
POLICY = RetentionPolicy(closed_alert_days=365, audit_days=30, expired_watchlist_days=90)
DESK = Actor("k1", "desk 3", "investigator")


def _raw_identifiers(client: redis.Redis, account_id: str) -> set[bytes]:
    """The raw device ids, phones and IPs the account's state keeps (its meta fields)."""
    meta: dict[bytes, bytes] = client.hgetall(keys.account_keys(account_id)["meta"])  # type: ignore[assignment]
    prefix = spec.IDENTIFIER_FIELD.encode()
    return {value for field, value in meta.items() if field.startswith(prefix)}


def _alert_keys(client: redis.Redis) -> set[bytes]:
    return set(client.scan_iter(match="fw:{al}:*"))


def test_closed_alerts_past_retention_are_purged_and_work_in_progress_is_kept(
    services: EmbeddedServices, redis_client: redis.Redis, tmp_path: Path
) -> None:
    outcome = score_ring(api_settings(services, tmp_path), redis_client)
    store = AlertStore(redis_client)
    confirmed, dismissed, appealed, *still_open = [a.alert_id for a in outcome.new_alerts]
    steps: list[tuple[str, list[Action]]] = [
        (confirmed, ["confirm_fraud"]), (dismissed, ["dismiss"]),
        (appealed, ["confirm_fraud", "appeal"]),
    ]  # fmt: skip
    for alert_id, actions in steps:
        for action in actions:
            store.apply(alert_id, action, DESK, "checked", "2026-03-03T10:00:00Z")

    # A year after the ring's event time nothing is past retention yet.
    assert purge(redis_client, POLICY, T0_MS + 364 * MS_PER_DAY).closed_alerts == 0
    report = purge(redis_client, POLICY, T0_MS + 366 * MS_PER_DAY)

    assert report.closed_alerts == 2
    assert store.get(confirmed) is None and store.get(dismissed) is None
    for gone in (confirmed, dismissed):
        assert not redis_client.exists(features_key(gone), history_key(gone))
        assert all(
            redis_client.zscore(index, gone) is None
            for index in redis_client.scan_iter(match="fw:{al}:ix:*")
        )
    assert redis_client.zcard(ALL_INDEX) == 1 + len(still_open)
    appealed_now = store.get(appealed)
    assert appealed_now is not None and appealed_now.status == "appealed"
    assert store.history(appealed, 0, 10)
    # Running it again finds nothing more.
    assert purge(redis_client, POLICY, T0_MS + 366 * MS_PER_DAY).closed_alerts == 0


def test_old_audit_entries_and_long_expired_watchlist_entries_are_purged(
    redis_client: redis.Redis,
) -> None:
    log = AuditLog(redis_client)
    caller = Caller("k1", "desk 3", "investigator")
    for n in range(3):
        redis_client.xadd(STREAM, {"key_id": "k1", "key_name": "desk 3", "role": "investigator",
                                   "method": "GET", "path": "/v1/accounts/a/risk",
                                   "resource": f"account:a{n}"},
                          id=f"{T0_MS + n * MS_PER_DAY}-0")  # fmt: skip
    log.append(caller, "GET", "/v1/accounts/b/risk", "account:b")  # now

    lists = WatchlistStore(redis_client)
    expired_long_ago = WatchlistEntry("account", "acct-1", "acct-1", "police", "case 7",
                                      T0_MS, T0_MS + MS_PER_DAY)  # fmt: skip
    expired_lately = WatchlistEntry("account", "acct-2", "acct-2", "police", "case 8",
                                    T0_MS, T0_MS + 200 * MS_PER_DAY)  # fmt: skip
    never_expires = WatchlistEntry("account", "acct-3", "acct-3", "bank", "mule", T0_MS)
    lists.put([expired_long_ago, expired_lately, never_expires])
    version = lists.version()
    suppressions = SuppressionStore(redis_client)
    suppressions.put([
        Suppression("acct-4", "fan_out_rapid", T0_MS + 30 * MS_PER_DAY, {}, "al_1", T0_MS),
        Suppression("acct-5", "model", T0_MS + 300 * MS_PER_DAY, {}, "al_2", T0_MS),
    ])  # fmt: skip

    report = purge(redis_client, POLICY, T0_MS + 240 * MS_PER_DAY)

    assert report.audit_entries == 3
    assert [e.resource for e in log.query(None, None, None, 10)[0]] == ["account:b"]
    assert report.watchlist_entries == 1
    assert lists.get("account", "acct-1") is None
    assert lists.get("account", "acct-2") is not None
    assert lists.get("account", "acct-3") is not None
    assert lists.version() > version  # workers and API reload their lists
    # A suppression that has ended is dropped; one still in force stays.
    assert report.suppressions == 1
    assert set(suppressions.snapshot().entries) == {("acct-5", "model")}


def test_only_one_worker_purges_per_interval(redis_client: redis.Redis) -> None:
    clock = [time.time()]
    first = PurgeSchedule(redis_client, POLICY, interval_s=3600, clock=lambda: clock[0])
    second = PurgeSchedule(redis_client, POLICY, interval_s=3600, clock=lambda: clock[0])
    first.between_batches()
    assert redis_client.ttl(LOCK_KEY) > 3500
    redis_client.xadd(STREAM, {"resource": "x"}, id="1-0")  # long past retention
    second.between_batches()
    assert redis_client.xlen(STREAM) == 1  # the second worker did not purge
    redis_client.delete(LOCK_KEY)  # the interval has passed
    clock[0] += 61
    second.between_batches()
    assert redis_client.xlen(STREAM) == 0


def test_raw_identifiers_leave_with_the_windows_they_explain(redis_client: redis.Redis) -> None:
    store = RedisStateStore(redis_client, EntityHasher("retention"))
    first = event("first", "acct-r", "payee-1", T0, "10.00", device_id="dev-old",
                  phone="13800138000")  # fmt: skip
    store.apply_transfers([_transfer(first)])
    assert _raw_identifiers(redis_client, "acct-r") == {b"dev-old", b"13800138000"}
    # A month later the first transfer's device and phone are past every window.
    later = event("later", "acct-r", "payee-2", T0 + timedelta(days=31), "10.00",
                  device_id="dev-new")  # fmt: skip
    store.apply_transfers([_transfer(later)])
    assert _raw_identifiers(redis_client, "acct-r") == {b"dev-new"}


def test_raw_identifiers_beyond_the_window_cap_are_dropped_with_it(
    redis_client: redis.Redis,
) -> None:
    store = RedisStateStore(redis_client, EntityHasher("retention"), StateLimits(window_cap=10))
    store.apply_transfers([
        _transfer(event(f"t{n}", "acct-c", f"payee-{n}", T0 + timedelta(minutes=n), "10.00",
                        device_id=f"dev-{n}"))
        for n in range(12)
    ])  # fmt: skip
    assert _raw_identifiers(redis_client, "acct-c") == {f"dev-{n}".encode() for n in range(2, 12)}


def test_an_accounts_windows_and_packed_state_expire_together(redis_client: redis.Redis) -> None:
    # The packed state (meta hash) describes the windows: if one outlived the other after a
    # quiet spell, the account would be counted from a state that no longer matches its
    # windows. A profile update refreshes both (it is activity), to the same TTL.
    store = RedisStateStore(redis_client, EntityHasher("retention"))
    account = keys.account_keys("acct-t")
    store.apply_profiles([AccountProfile("acct-t", opened_at_ms=T0_MS - 400 * MS_PER_DAY)])
    assert 0 < redis_client.ttl(account["meta"]) <= 35 * 86400  # a profile-only account
    store.apply_transfers([_transfer(event("t1", "acct-t", "payee-1", T0, "10.00"))])
    redis_client.expire(account["meta"], 3600)  # as if the last refresh were long ago
    redis_client.expire(account["windows"], 3600)
    store.apply_profiles([AccountProfile("acct-t", holder_birth_year=1990)])
    ttls = {redis_client.ttl(account["meta"]), redis_client.ttl(account["windows"])}
    assert len(ttls) == 1 and ttls.pop() > 34 * 86400
    redis_client.expire(account["meta"], 3600)
    redis_client.expire(account["windows"], 3600)
    # A transfer later in the same event week refreshes neither: once per account-week.
    store.apply_transfers([
        _transfer(event("t1b", "acct-t", "payee-3", T0 + timedelta(days=1), "10.00"))
    ])  # fmt: skip
    assert max(redis_client.ttl(account["meta"]), redis_client.ttl(account["windows"])) <= 3600
    # The next event week's transfer refreshes both, to the same TTL.
    store.apply_transfers([
        _transfer(event("t2", "acct-t", "payee-2", T0 + timedelta(days=8), "10.00"))
    ])  # fmt: skip
    ttls = {redis_client.ttl(account["meta"]), redis_client.ttl(account["windows"])}
    assert len(ttls) == 1 and ttls.pop() > 35 * 86400


def test_a_profile_resent_keeps_a_quiet_customer_for_the_state_ttl(
    redis_client: redis.Redis,
) -> None:
    # An elderly customer who rarely pays: the bank sends the profile again (its birth year
    # drives the vulnerable-customer rule); the profile must not expire 35 days after the first.
    store = RedisStateStore(redis_client, EntityHasher("retention"))
    meta = keys.account_keys("acct-quiet")["meta"]
    store.apply_profiles([AccountProfile("acct-quiet", holder_birth_year=1950)])
    redis_client.expire(meta, 3600)  # as if sent a month ago
    store.apply_profiles([AccountProfile("acct-quiet", holder_birth_year=1950)])
    assert redis_client.ttl(meta) > 34 * 86400
    redis_client.expire(meta, 90 * 86400)  # a longer TTL (the state functions') stays
    store.apply_profiles([AccountProfile("acct-quiet", holder_birth_year=1950)])
    assert redis_client.ttl(meta) > 89 * 86400


def _transfer(event_json: dict[str, object]) -> Transfer:
    return parse_transfer(orjson.dumps(event_json))
