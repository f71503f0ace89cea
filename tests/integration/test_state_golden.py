"""The golden edge cases of tests/state_golden.py on the Redis state store (the session's
real Redis), each transfer as its own batch."""

from __future__ import annotations

import pytest
import redis

from streams.state.base import EntityHasher, StateLimits
from streams.state.redis_store import RedisStateStore
from tests.state_golden import CASES, Case, check


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_redis_store_meets_the_golden_case(redis_client: redis.Redis, case: Case) -> None:
    limits = StateLimits(window_cap=case.window_cap)
    store = RedisStateStore(redis_client, EntityHasher("golden"), limits)
    check(case, store)
