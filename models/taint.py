"""Alert propagation: money that reached an account through a transfer that alerted.

When a transfer alerts, its payee gets a *mark* (the transfer's id, event time, amount and
where it sits in its input: partition and offset). A later transfer out of that account is
scored knowing how much marked money reached the payer shortly before, so a ring is followed
along the path its money takes, not only caught at its first hop.

A mark counts for a transfer only if its source came before the transfer in the input (on
the same partition: a lower offset; from another partition: any mark already stored, since
the order between partitions is not fixed) and its event time lies within `TAINT_WINDOW_MS`
before the transfer's. So a transfer's taint never depends on where batches were cut, on
whether a worker restarted, or on marks that later transfers wrote meanwhile.

Pure logic; the state stores keep the marks (`streams/state`), the batch processor applies
them (`streams/batch.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from models.features import MS_PER_HOUR, NO_TAINT, Taint

# How far back marked money counts for a transfer out of the account it reached.
TAINT_WINDOW_MS = 24 * MS_PER_HOUR
# An account keeps the marks of at most this many transfers (the newest by event time), and
# none older than the window plus an hour of slack for late events before its newest mark.
TAINT_CAP = 32
TAINT_KEEP_MS = TAINT_WINDOW_MS + MS_PER_HOUR


class TaintMark(NamedTuple):
    """A transfer that alerted, as its payee keeps it."""

    transfer_id: str
    ts_ms: int
    amount_minor: int
    partition: int
    offset: int


def encode_marks(marks: Iterable[TaintMark]) -> str:
    """The stored text of marks: `id,ts,amount,partition,offset` joined by `;` (transfer ids
    hold neither)."""
    return ";".join(",".join(map(str, mark)) for mark in marks)


def decode_marks(text: str | bytes | None) -> tuple[TaintMark, ...]:
    """Marks from their stored text, ordered by (event time, transfer id); unreadable
    entries (written by hand or another version) are skipped."""
    if not text:
        return ()
    if isinstance(text, bytes):
        text = text.decode()
    marks = []
    for entry in text.split(";"):
        parts = entry.split(",")
        if len(parts) != 5:
            continue
        try:
            marks.append(TaintMark(parts[0], *(int(p) for p in parts[1:])))
        except ValueError:
            continue
    return tuple(sorted(marks, key=_order))


def _order(mark: TaintMark) -> tuple[int, str]:
    return mark.ts_ms, mark.transfer_id


def _kept(marks: Iterable[TaintMark]) -> tuple[TaintMark, ...]:
    """What an account keeps of these marks (distinct ids), whatever order they came in: the
    `TAINT_CAP` newest within `TAINT_KEEP_MS` of the newest, ordered by (event time, id)."""
    marks = list(marks)
    if not marks:
        return ()
    newest = max(mark.ts_ms for mark in marks)
    kept = sorted((mark for mark in marks if mark.ts_ms >= newest - TAINT_KEEP_MS), key=_order)
    return tuple(kept[-TAINT_CAP:])


def keep_marks(stored: Iterable[TaintMark], new: TaintMark) -> tuple[TaintMark, ...] | None:
    """The marks an account keeps after `new` arrives, or None when nothing changes (it is
    there already, or older than what is kept). The Lua function `mark` does the same."""
    marks = {mark.transfer_id: mark for mark in stored}
    if new.transfer_id in marks:
        return None
    newest = max([new.ts_ms, *(mark.ts_ms for mark in marks.values())])
    if new.ts_ms < newest - TAINT_KEEP_MS:
        return None
    marks[new.transfer_id] = new
    return _kept(marks.values())


# A transfer screened before it is sent has no place in the input: every mark its payer holds
# from before its event time counts.
OUTSIDE_INPUT = (-1, 0)


def taint_of(
    transfer_id: str, ts_ms: int, partition: int, offset: int, marks: Iterable[TaintMark]
) -> Taint:
    """The taint of a transfer (its id, event time and place in the input) from the marks of
    its payer; each mark counted once, whatever path it came by.

    Of the marks from before the transfer in the input, only those its payer would keep
    count (`keep_marks`): the stored ones are capped, and counting more of the ones that
    arrive uncapped (from the batch before, or earlier in the batch) would make the taint
    depend on where batches are cut."""
    before = {
        mark.transfer_id: mark
        for mark in marks
        if mark.transfer_id != transfer_id
        and (mark.partition != partition or mark.offset < offset)
    }
    counted = [
        mark for mark in _kept(before.values()) if ts_ms - TAINT_WINDOW_MS <= mark.ts_ms <= ts_ms
    ]
    if not counted:
        return NO_TAINT
    return Taint(
        sum(mark.amount_minor for mark in counted),
        len(counted),
        max(mark.ts_ms for mark in counted),
    )
