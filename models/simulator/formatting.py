"""Rendering of timestamps and money in the contract's text forms (no float arithmetic)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from models.simulator.config import CN_OFFSET_MS, MS_PER_DAY

_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


@lru_cache(maxsize=4096)
def _local_date(day: int) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + day).isoformat()


def format_ts(ts_ms: int) -> str:
    """RFC 3339 in China Standard Time with milliseconds, e.g. 2026-03-01T22:15:03.120+08:00."""
    local = ts_ms + CN_OFFSET_MS
    day, in_day = divmod(local, MS_PER_DAY)
    seconds, ms = divmod(in_day, 1000)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return f"{_local_date(day)}T{h:02d}:{m:02d}:{s:02d}.{ms:03d}+08:00"


def format_amount(minor: int) -> str:
    """Minor units (fen) → decimal string with two places, e.g. 125000 → "1250.00"."""
    return f"{minor // 100}.{minor % 100:02d}"


def transfer_id(seed: int, rank: int) -> str:
    """The id of the event with event-time rank `rank` in the run with `seed`."""
    return f"tx-{seed}-{rank:09d}"
