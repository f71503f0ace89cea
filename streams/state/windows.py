"""Reading one band of an account's windows (see `spec.BANDS`) for the API's views: recent
transfers, trace layers, counterparties. Queued on a pipeline (sync or asyncio) and decoded
from its reply, so a view reads many accounts in one round trip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from models.trace import Direction, Edge
from streams.state import keys
from streams.state.base import split_member
from streams.state.pipelines import AnyRedis, Pipeline
from streams.state.spec import BAND, Band


def queue_band(
    pipe: Pipeline,
    account_id: str,
    band: Band,
    low_ts: int | None = None,
    high_ts: int | None = None,
    *,
    newest_first: bool = False,
    start: int = 0,
    count: int | None = None,
) -> None:
    """Queue a read of the band's members stored at `low_ts`..`high_ts` (None: open end),
    oldest first (or newest first), from position `start`, at most `count`."""
    low, high = band.scores(low_ts, high_ts)
    # An `earliest` band stores later times at lower scores.
    descending = newest_first != band.earliest
    window = keys.account_keys(account_id)["windows"]
    first, number = (start, count) if count is not None else (None, None)
    if descending:
        pipe.zrevrangebyscore(window, high, low, first, number, withscores=True)
    else:
        pipe.zrangebyscore(window, low, high, first, number, withscores=True)


def band_entries(band: Band, rows: Sequence[tuple[bytes, float]]) -> list[tuple[str, int]]:
    """(member, time) of each row a `queue_band` read returned, the band's prefix removed;
    a member this version cannot read (not UTF-8, another prefix) is left out."""
    entries = []
    prefix = band.prefix.encode()
    for member, score in rows:
        if not member.startswith(prefix):
            continue
        try:
            entries.append((member[1:].decode(), band.ts(int(score))))
        except UnicodeDecodeError:
            continue
    return entries


def members(reply: Any, band: Band) -> list[str]:
    """The members (prefix removed) of a `queue_band` reply."""
    return [member for member, _ in band_entries(band, reply)]


def recent_transfers(
    client: AnyRedis, account_id: str, direction: str, start: int, limit: int
) -> tuple[list[Edge], bool]:
    """The account's transfers out (it paid) or in (it was paid), newest event time first,
    from position `start`: at most `limit`, and whether more follow. State keeps what the
    windows need (about 30 days, at most `window_cap` per direction), not a statement."""
    band = BAND["out"] if direction == "out" else BAND["in"]
    pipe = client.pipeline(transaction=False)
    queue_band(pipe, account_id, band, newest_first=True, start=start, count=limit + 1)
    (rows,) = pipe.execute()
    trace_direction: Direction = "down" if direction == "out" else "up"
    edges = []
    for member, ts_ms in band_entries(band, rows[:limit]):
        edge = window_edge(account_id, member, ts_ms, trace_direction)
        if edge is not None:  # an entry of a shape this version does not write
            edges.append(edge)
    return edges, len(rows) > limit


def window_edge(account: str, member: str, ts_ms: int, direction: Direction) -> Edge | None:
    """The transfer a window entry of `account` records (None for an entry of another shape)."""
    try:
        tid, party, amount = split_member(member)
    except ValueError:
        return None
    src, dst = (account, party) if direction == "down" else (party, account)
    return Edge(tid, src, dst, amount, ts_ms)


def applied_transfers(client: AnyRedis) -> int:
    """Distinct transfers whose payer side is applied: the entries of every account's
    outgoing band (within the retention and the window cap; SCAN, every primary of a
    cluster; for tests and the load test, not for a busy production server)."""
    low, high = BAND["out"].scores(None, None)
    total = 0
    batch: list[Any] = []

    def flush() -> int:
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.zcount(key, low, high)
        counted = sum(int(n) for n in pipe.execute())
        batch.clear()
        return counted

    for key in client.scan_iter(match=keys.account_keys("*")["windows"], count=10_000):
        batch.append(key)
        if len(batch) >= 1000:
            total += flush()
    return total + flush() if batch else total
