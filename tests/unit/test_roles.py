"""Keys and limits without Redis: the key cache, rate-limit arithmetic, query parameters."""

from __future__ import annotations

import pytest

from service.auth import Caller, ConfiguredKeys, KeyCache, key_digest
from service.errors import InvalidParameter
from service.params import cursor_offset, offset_cursor
from service.rate_limit import RateLimit, retry_after_s

INVESTIGATOR = Caller("key_000000000001", "desk", "investigator")


def test_bootstrap_keys_are_admins() -> None:
    keys = ConfiguredKeys(["first", "second"])
    second = Caller(f"config-{key_digest('second')[:8]}", "configured admin", "admin")
    assert keys.by_digest(key_digest("second")) == second
    assert keys.by_digest(key_digest("other")) is None


def test_cache_expires_and_forgets_revoked_keys() -> None:
    now = [100.0]
    cache = KeyCache(5.0, clock=lambda: now[0])
    cache.put("d1", INVESTIGATOR)
    cache.put("d2", None)
    assert cache.get("d1") == (True, INVESTIGATOR)
    assert cache.get("d2") == (True, None)
    cache.forget(INVESTIGATOR.key_id)
    assert cache.get("d1") == (False, None)
    now[0] += 5.0
    assert cache.get("d2") == (False, None)


@pytest.mark.parametrize(
    ("in_second", "in_minute", "now_s", "retry"),
    [
        (10, 100, 1000.0, None),
        (11, 100, 1000.0, 1),
        (5, 601, 1000.0, 20),  # 1000 s is 40 s into its minute
        (5, 601, 1019.5, 1),
    ],
)
def test_retry_after(in_second: int, in_minute: int, now_s: float, retry: int | None) -> None:
    limit = RateLimit(per_minute=600, burst=10)
    assert retry_after_s(limit, in_second, in_minute, now_s) == retry


def test_offset_cursors_round_trip_and_foreign_ones_are_422() -> None:
    assert cursor_offset(offset_cursor(150)) == 150
    assert cursor_offset(None) == 0
    for foreign in ("not-a-cursor!", "eHl6", offset_cursor(-1)):
        with pytest.raises(InvalidParameter):
            cursor_offset(foreign)
