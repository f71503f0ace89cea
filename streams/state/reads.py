"""The API's reads of state, in one place: its routes hold this, never a Redis client, so the
key layout (`spec.py`) stays inside `streams/state` whether Redis is one server or a cluster."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from models.currency import ScoringRates
from models.trace import Direction, Edge, FetchLayer
from models.watchlist import Watchlists
from streams.state import keys, trace_graph
from streams.state.alert_store import AlertStore
from streams.state.functions import Library
from streams.state.observation import Observation
from streams.state.pii_key import recorded_fingerprint
from streams.state.pipelines import AnyRedis
from streams.state.risk_read import AccountRisk, read_account_risks
from streams.state.windows import recent_transfers


class StateReads:
    """Account risk, recent transfers and follow-the-money reads over one client."""

    def __init__(self, client: AnyRedis, library: Library) -> None:
        self._client = client
        self._library = library

    def observation(self) -> Observation:
        """When observation began and began again (`streams.state.observation`)."""
        return Observation.decode(self._client.get(keys.OBSERVED_SINCE_KEY))

    def ping(self) -> None:
        """Raise a `redis.RedisError` unless Redis answers (every node of a cluster)."""
        self._client.ping()

    def pii_key_fingerprint(self) -> str | None:
        """The fingerprint of the key the state was pseudonymised with (`streams.state.pii_key`;
        None: none recorded yet)."""
        return recorded_fingerprint(self._client)

    def account_risks(self, lists: Watchlists, account_ids: Sequence[str]) -> list[AccountRisk]:
        """Each account's risk now (see `risk_read`)."""
        return read_account_risks(self._client, lists, account_ids, self._library)

    def recent_transfers(
        self, account_id: str, direction: str, start: int, limit: int
    ) -> tuple[list[Edge], bool]:
        """The account's recent transfers out or in, newest first (see `windows`)."""
        return recent_transfers(self._client, account_id, direction, start, limit)

    def trace_root(self, transfer_id: str, rates: ScoringRates) -> Edge | None:
        """The transfer a trace starts from, if still within the trace TTL."""
        return trace_graph.read_root(self._client, transfer_id, rates)

    def trace_layers(self, direction: Direction) -> FetchLayer:
        """Reads one layer of a trace per round trip."""
        return trace_graph.layer_reader(self._client, direction)

    def node_flags(
        self, alerts: AlertStore, lists: Watchlists, accounts: Iterable[str], at_ms: int
    ) -> dict[str, trace_graph.NodeFlags]:
        """Alert count, worst unresolved alert level and watchlist status per account."""
        return trace_graph.node_flags(self._client, alerts, lists, accounts, at_ms)
