"""Reads for follow-the-money: the root transfer, one layer of edges per round trip, and the
cheap per-account flags (alerts, watchlist) a trace shows on each node."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from models.account_risk import alerts_reason
from models.currency import SCORING_CURRENCY, ScoringRates
from models.trace import Direction, Edge, FetchLayer
from models.watchlist import Watchlists
from streams.state.alert_store import AlertStore, index_key
from streams.state.pipelines import AnyRedis
from streams.state.redis_store import read_transfer_record
from streams.state.spec import BAND
from streams.state.windows import band_entries, queue_band, window_edge

# Alerts read per node to judge its level; the count covers all of them.
ALERTS_PER_NODE = 20


def read_root(client: AnyRedis, transfer_id: str, rates: ScoringRates) -> Edge | None:
    """The transfer a trace starts from, if it is still within the trace TTL (and readable:
    a record of another shape counts as none), its amount in the scoring currency as the
    windows the rest of the trace comes from hold it."""
    record = read_transfer_record(client, transfer_id)
    if record is None:
        return None
    amount = rates.scoring_minor(record.amount_minor, record.currency or SCORING_CURRENCY)
    return Edge(transfer_id, record.src, record.dst, amount, record.ts_ms)


def layer_reader(client: AnyRedis, direction: Direction) -> FetchLayer:
    """Reads a layer's edges in one pipeline: outgoing (down) or incoming (up) windows, at
    most `limit` per account, earliest first."""
    band = BAND["out"] if direction == "down" else BAND["in"]

    def fetch(ranges: Mapping[str, tuple[int, int]], limit: int) -> dict[str, list[Edge]]:
        accounts = list(ranges)
        pipe = client.pipeline(transaction=False)
        for account in accounts:
            low, high = ranges[account]
            queue_band(pipe, account, band, low, high, count=limit)
        layer: dict[str, list[Edge]] = {}
        for account, rows in zip(accounts, pipe.execute(), strict=True):
            entries = band_entries(band, rows)
            found = (window_edge(account, member, ts, direction) for member, ts in entries)
            layer[account] = [edge for edge in found if edge is not None]
        return layer

    return fetch


@dataclass(frozen=True, slots=True)
class NodeFlags:
    """What a trace shows of an account's risk without computing its full risk view."""

    risk_level: str
    alert_count: int
    watchlisted: bool


def node_flags(
    client: AnyRedis, alerts: AlertStore, lists: Watchlists, accounts: Iterable[str], at_ms: int
) -> dict[str, NodeFlags]:
    """Alert count, worst unresolved alert level and watchlist status of each account."""
    names = list(accounts)
    pipe = client.pipeline(transaction=False)
    for account in names:
        pipe.zcard(index_key("account", account))
        pipe.zrevrange(index_key("account", account), 0, ALERTS_PER_NODE - 1)
    replies = pipe.execute()
    recent = {account: [m.decode() for m in replies[2 * i + 1]] for i, account in enumerate(names)}
    wanted = dict.fromkeys(i for ids in recent.values() for i in ids)
    by_id = {a.alert_id: a for a in alerts.get_many(wanted)}
    flags = {}
    for i, account in enumerate(names):
        listed = lists.listed("account", account, at_ms)
        reason = alerts_reason([by_id[a] for a in recent[account] if a in by_id])
        level = "critical" if listed else (reason.level if reason else "none")
        flags[account] = NodeFlags(level, int(replies[2 * i]), listed)
    return flags
