"""Reads for the retro-hunt: the retained transfers of newly listed accounts.

An account's own windows (its `out` and `in` bands) name every transfer it made or received
within the retention period (at most `FRAUDWATCH_WINDOW_CAP` each way); the transfer records
(kept for `FRAUDWATCH_TRACE_TTL_DAYS`) give each one's time, amount and currency. Two round
trips for any number of accounts.
"""

from __future__ import annotations

from collections.abc import Sequence

from streams.state.base import split_member
from streams.state.pipelines import AnyRedis
from streams.state.redis_store import TransferRecord, read_transfer_records
from streams.state.spec import BAND
from streams.state.windows import band_entries, queue_band

_BANDS = (BAND["out"], BAND["in"])


def past_transfers(
    client: AnyRedis, accounts: Sequence[str]
) -> dict[str, list[TransferRecord]]:
    """Each account's retained transfers, in and out, oldest first."""
    pipe = client.pipeline(transaction=False)
    for account in accounts:
        for band in _BANDS:
            queue_band(pipe, account, band)
    replies = pipe.execute()
    wanted: dict[str, list[str]] = {}
    for index, account in enumerate(accounts):
        ids = wanted.setdefault(account, [])
        for offset, band in enumerate(_BANDS):
            for member, _ in band_entries(band, replies[len(_BANDS) * index + offset]):
                try:
                    ids.append(split_member(member)[0])
                except ValueError:
                    continue  # an entry of another shape names no transfer
    records = read_transfer_records(
        client, list(dict.fromkeys(t for ids in wanted.values() for t in ids))
    )
    found: dict[str, list[TransferRecord]] = {}
    for account, ids in wanted.items():
        own = (records[t] for t in dict.fromkeys(ids) if t in records)
        found[account] = sorted(
            (r for r in own if account in (r.src, r.dst)), key=lambda r: (r.ts_ms, r.transfer_id)
        )
    return found
