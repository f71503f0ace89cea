"""Per-key rate limits, counted in Redis so that every API replica shares one budget.

Two fixed-window counters per key: one per minute (the sustained budget) and one per second
(the burst cap, so a key cannot spend its minute in one instant). Both are an INCR plus an
EXPIRE queued on the pipeline that authentication sends anyway: no extra round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streams.state.pipelines import AsyncPipeline

PREFIX = "fw:rl"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Requests allowed per key: `per_minute` sustained, at most `burst` in one second."""

    per_minute: int
    burst: int


def retry_after_s(limit: RateLimit, in_second: int, in_minute: int, now_s: float) -> int | None:
    """Seconds to wait when a request is the `in_second`-th of its second and `in_minute`-th
    of its minute; None when it is within the limit."""
    if in_minute > limit.per_minute:
        return max(1, 60 - int(now_s) % 60)
    if in_second > limit.burst:
        return 1
    return None


class RateLimiter:
    """Queues a key's counters on a pipeline and judges the replies."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit

    def queue(self, pipe: AsyncPipeline, subject: str, now_s: float) -> None:
        """Add the four counter commands for `subject` (a key's digest prefix) to `pipe`."""
        second = int(now_s)
        tag = f"{PREFIX}:{{{subject}}}"
        pipe.incr(f"{tag}:s:{second}")
        pipe.expire(f"{tag}:s:{second}", 2)
        pipe.incr(f"{tag}:m:{second // 60}")
        pipe.expire(f"{tag}:m:{second // 60}", 120)

    def judge(self, replies: Sequence[Any], now_s: float) -> int | None:
        """Retry-After seconds from the four replies `queue` asked for, or None if allowed."""
        in_second, _, in_minute, _ = replies
        return retry_after_s(self.limit, int(in_second), int(in_minute), now_s)
