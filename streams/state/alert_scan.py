"""The alert queue's (and the case queue's) filtered listing, highest score first, with a
bounded cost per request.

Every filter value has its own index (a sorted set of alert ids scored by event time), and all
indexes share one order: score descending, then id descending. A request
- picks the smallest index the filters name, counted within the time range (`ZCOUNT`, O(log N));
- jumps to where the cursor left off by rank (`ZREVRANK` or `ZCOUNT`, O(log N): no
  `LIMIT offset` that walks every entry before the page);
- reads ids from there in chunks and keeps those that every other filter's index also holds
  (`ZMSCORE`, no alert bodies read), then reads the bodies of the page alone;
- examines at most `budget` index entries. A rare filter combination can thus answer a short,
  even empty, page with a cursor to continue from where the scan stopped, and never pages
  through the whole index in one request.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from streams.state.pipelines import AnyRedis

# Alert ids are `al_` and 24 hex digits, case ids `cs_`; scores (event times in ms, case
# priorities in hours) are inside ±2^53.
ALERT_ID = re.compile(r"^al_[0-9a-f]{24}$")
CASE_ID = re.compile(r"^cs_[0-9a-f]{24}$")
MAX_SCORE_MS = 2**53
CHUNK = 1000
T = TypeVar("T")


class BadCursor(ValueError):
    """A cursor that this store did not issue."""


def encode_cursor(score: float, member: str) -> str:
    """Opaque position after (score, member) in highest-first order."""
    return base64.urlsafe_b64encode(f"{score}:{member}".encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str, member: re.Pattern[str] = ALERT_ID, number: type[int] | type[float] = int
) -> tuple[float, str]:
    """Inverse of `encode_cursor` for members matching `member` and scores of type `number`;
    raises `BadCursor` on anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        score_text, member_id = base64.urlsafe_b64decode(padded).decode().split(":", 1)
        score = number(score_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadCursor("cursor is not one this API issued") from None
    if (
        not member.match(member_id)
        or not abs(score) <= MAX_SCORE_MS
        or encode_cursor(score, member_id) != cursor
    ):
        raise BadCursor("cursor is not one this API issued")
    return score, member_id


@dataclass(frozen=True, slots=True)
class Scan:
    """One request's scan: the indexes to honour, the score range, where to start."""

    indexes: list[str]
    low: int | None
    high: int | None
    after: tuple[float, str] | None
    budget: int
    # What a stored score reads as: event times are whole ms, case priorities fractions.
    number: type[int] | type[float] = int

    def score_range(self) -> tuple[str, str]:
        """The index score range (event time, ms) as Redis reads it."""
        return (
            "-inf" if self.low is None else str(self.low),
            "+inf" if self.high is None else str(self.high),
        )


def _position_commands(pipe: Any, scan: Scan, index: str) -> None:
    """Queue, for one index: entries in range, the first rank to read, the rank to stop at."""
    low, high = scan.score_range()
    pipe.zcount(index, low, high)
    # The first rank at or below `high` (entries above it), and the first rank below `low`.
    pipe.zcount(index, f"({high}", "+inf")
    pipe.zcount(index, low, "+inf")
    if scan.after is not None:
        score, alert_id = scan.after
        pipe.zrevrank(index, alert_id)
        pipe.zscore(index, alert_id)
        pipe.zcount(index, f"({score}", "+inf")


def _start_rank(scan: Scan, above_high: int, replies: Sequence[Any]) -> int:
    """Where reading starts: after the cursor's entry when the index still holds it, else at
    the first entry with the cursor's score (ties already seen are skipped while reading)."""
    if scan.after is None:
        return above_high
    rank, score, above_cursor = replies
    if rank is not None and score is not None and scan.number(score) == scan.after[0]:
        return max(above_high, int(rank) + 1)
    return max(above_high, int(above_cursor))


def scan_alerts(
    client: AnyRedis,
    scan: Scan,
    limit: int,
    fetch: Callable[[Sequence[str]], list[T]],
) -> tuple[list[T], tuple[float, str] | None]:
    """Up to `limit` items (alerts, cases) in every index of `scan`, highest score first,
    and the position to continue from (None when the range is exhausted). `fetch` reads them
    by id (and may leave out those other filters refuse)."""
    pipe = client.pipeline(transaction=False)
    for index in scan.indexes:
        _position_commands(pipe, scan, index)
    replies = pipe.execute()
    per_index = len(replies) // len(scan.indexes)
    counts = [int(replies[i * per_index]) for i in range(len(scan.indexes))]
    driver = counts.index(min(counts))
    own = replies[driver * per_index : (driver + 1) * per_index]
    position = _start_rank(scan, int(own[1]), own[3:])
    end = int(own[2])
    others = [index for i, index in enumerate(scan.indexes) if i != driver]
    page: list[T] = []
    last: tuple[float, str] | None = None
    examined = 0
    while len(page) < limit and position < end and examined < scan.budget:
        need = limit - len(page)
        size = min(end - position, scan.budget - examined, CHUNK if others else need)
        rows = cast(
            list[tuple[bytes, float]],
            client.zrevrange(scan.indexes[driver], position, position + size - 1, withscores=True),
        )
        if not rows:
            break
        read = [(scan.number(score), member.decode()) for member, score in rows]
        entries = read
        if scan.after is not None:  # ties with the cursor's entry that came before it
            seen_score, seen_id = scan.after
            entries = [(s, i) for s, i in entries if not (s == seen_score and i >= seen_id)]
        keep = _in_every(client, others, [alert_id for _, alert_id in entries])
        taken = [entry for entry, kept in zip(entries, keep, strict=True) if kept][:need]
        page += fetch([alert_id for _, alert_id in taken])
        if len(taken) == need:
            # The page is full up to this entry: continue right after it.
            last = taken[-1]
            position += read.index(last) + 1
            break
        position += len(read)
        examined += len(read)
        last = read[-1]
    return page, (last if position < end else None)


def _in_every(client: AnyRedis, indexes: Sequence[str], ids: list[str]) -> list[bool]:
    """For each id, whether every one of `indexes` holds it (one round trip)."""
    if not indexes or not ids:
        return [True] * len(ids)
    pipe = client.pipeline(transaction=False)
    for index in indexes:
        pipe.zmscore(index, ids)
    scores = pipe.execute()
    return [all(column[k] is not None for column in scores) for k in range(len(ids))]
