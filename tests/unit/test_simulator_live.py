"""The live stream: wall-clock stamps, valid events, known accounts, early fraud of all kinds."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta

import orjson

from models.events import parse_account, parse_transfer
from models.simulator import TYPOLOGIES, live_profiles, live_stream
from models.simulator.config import CN_TZ
from models.simulator.live import _live_world

SEED, ACCOUNTS, RATE = 3, 800, 200.0


def _clock(step_ms: int) -> Callable[[], datetime]:
    """A fake wall clock that advances `step_ms` on every call."""
    ticks = itertools.count()
    start = datetime(2026, 5, 1, 9, 0, tzinfo=CN_TZ)
    return lambda: start + timedelta(milliseconds=step_ms * next(ticks))


def test_stream_is_valid_stamped_with_now_and_uses_profiled_accounts() -> None:
    now = _clock(5)
    events = list(itertools.islice(live_stream(SEED, ACCOUNTS, RATE, now), 2000))
    parsed = [parse_transfer(orjson.dumps(e)) for e in events]
    assert len({t.transfer_id for t in parsed}) == len(parsed)
    stamps = [t.ts_ms for t in parsed]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 9_000
    profiles = [parse_account(orjson.dumps(p)) for p in live_profiles(SEED, ACCOUNTS, now)]
    known = {p.account_id for p in profiles}
    assert all(t.src_account in known for t in parsed)


def test_every_typology_shows_up_within_the_first_minute() -> None:
    world = _live_world(SEED, ACCOUNTS)
    first_ring: dict[str, set[str]] = {}
    for typology, rows in zip(world.typologies, world.rings, strict=True):
        first_ring.setdefault(typology, {world.table.ids[r[1]] for _, r in rows})
    minute = int(60 * RATE)
    events = list(itertools.islice(live_stream(SEED, ACCOUNTS, RATE, _clock(5)), minute))
    payers = {e["src_account"] for e in events}
    assert set(first_ring) == set(TYPOLOGIES)
    assert all(accounts & payers for accounts in first_ring.values())
