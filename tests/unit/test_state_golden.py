"""The golden edge cases of tests/state_golden.py on the in-memory state store."""

from __future__ import annotations

import pytest

from streams.state.base import EntityHasher, StateLimits
from streams.state.memory import MemoryStateStore
from tests.state_golden import CASES, Case, check


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_memory_store_meets_the_golden_case(case: Case) -> None:
    store = MemoryStateStore(EntityHasher("golden"), StateLimits(window_cap=case.window_cap))
    check(case, store)
