"""Sending a batch's commands to Redis as pipelines whose replies are read later.

A batch is encoded by hiredis's C encoder (a third of the cost of redis-py's pipeline packing)
and written at once; the caller works meanwhile and reads the replies when it needs them.
Against one server that is one pipeline on one pooled connection. Against a Redis Cluster it
is one pipeline per node, each command sent to the node serving the slot of its first key, in
batch order, so every key still sees its updates in the order of the batch.

Reading absorbs what a server answers while it moves or reloads: a command refused because
its slot moved (MOVED), is moving (ASK, TRYAGAIN), its node is failing over (CLUSTERDOWN,
READONLY, a dropped connection) or the server lacks the functions ("Function not found") is
sent again, to where the slot is now, after the functions are loaded. Every command a batch
sends is idempotent, so sending again what a server may already have applied changes nothing;
and a state call refused because the call before it on the same account or entity did not run
(`spec.chain_link`) goes again with it, so no owner ever applies a later transfer first.

A call is also refused when the call before it did run but another writer (another worker's
batch on the same payee or device) wrote the owner in between. Then the owner's calls go
again from its first in the batch: those that ran answer as a redelivery and set the chain
back (their first replies stand), and the refused ones run after them, for a few rounds.
Sending the whole batch again instead would pause the worker, and with several workers on
shared owners every batch would be retried.
Other error replies are raised (the first in batch order) once the batch is settled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import hiredis
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import Connection, ConnectionPool

from streams.state.spec import CHAIN_REFUSED

log = logging.getLogger(__name__)

# One Redis command: its name and arguments.
Command = tuple[str | bytes | int, ...]
# Told how many commands of a batch went again and why: `another_writer` (a chain broken by
# another writer), `redirect` (a cluster slot moved, a node failed over or dropped the link),
# `functions` (the server had lost the functions).
ResendCounter = Callable[[str, int], None]


def _uncounted(reason: str, commands: int) -> None:
    """A `ResendCounter` that keeps no count."""

# Redirects and refusals that mean "not here, not now" while a cluster changes shape (redis-py
# parses most into these types; a script's inner call can fail with the others' text).
_RESEND_ERRORS = (
    redis.exceptions.AskError,  # and MovedError
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,  # and MasterDownError
    redis.exceptions.ReadOnlyError,
    redis.exceptions.BusyLoadingError,
)
_RESEND_REPLIES = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "READONLY", "LOADING", "MASTERDOWN")
# A batch gives up (and the worker retries it whole) after this long without settling. The
# worker passes a third of its poll interval: waiting here it does not poll, and a worker that
# does not poll within max.poll.interval.ms leaves its group; its own retries poll.
SETTLE_TIMEOUT_S = 10.0
_BACKOFF_S = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
# Rounds of sending calls again after another writer broke their chains (see above), after
# the first a little apart; contention that outlasts them (well under a second) fails the
# batch, whose retry keeps the worker in its group while it waits.
_CHAIN_RESTARTS = 5


def packed(commands: Sequence[Command]) -> bytes:
    """The commands in Redis's wire format."""
    return b"".join(hiredis.pack_command(c) for c in commands)  # type: ignore[arg-type]


def first_word(error: BaseException) -> str:
    """The first word of an error reply (Redis's error code: MOVED, OOM, ...), upper-cased."""
    return str(error).split(" ", 1)[0].upper()


def is_missing_function(reply: Any) -> bool:
    """Whether a reply says the server lacks the function (restart, flush, new node)."""
    return isinstance(reply, redis.ResponseError) and "Function not found" in str(reply)


def _resend(reply: Any) -> bool:
    if isinstance(reply, _RESEND_ERRORS):
        return True
    return isinstance(reply, redis.ResponseError) and first_word(reply) in _RESEND_REPLIES


class InFlight(Protocol):
    """Commands written to Redis, replies not read yet."""

    def replies(self) -> list[Any]:
        """Every reply in command order, once the batch settled; raises the first error
        reply that is the command's own (call once)."""
        ...


class Transport(Protocol):
    """Writes a batch's commands now and reads their replies later."""

    def send(self, commands: Sequence[Command]) -> InFlight:
        """Write the commands (each to the server that holds its keys), without waiting."""
        ...

    def describe(self) -> str:
        """The servers this transport sends to, for logs and `fraudwatch up`."""
        ...


@dataclass
class _Written:
    """Commands written on one connection, with their positions in the batch."""

    pool: ConnectionPool
    connection: Connection | None
    positions: list[int]
    asking: bool = False


def _write(pool: ConnectionPool, commands: Sequence[Command], positions: list[int],
           asking: bool = False) -> _Written:  # fmt: skip
    """Write the commands at `positions` on a pooled connection of their own."""
    connection = pool.get_connection()
    try:
        wire = [commands[i] for i in positions]
        if asking:  # a slot being imported serves a command preceded by ASKING
            wire = [c for command in wire for c in (("ASKING",), command)]
        connection.send_packed_command([packed(wire)], check_health=False)
    except BaseException:
        connection.disconnect()
        pool.release(connection)
        raise
    return _Written(pool, connection, positions, asking)


def _read(written: _Written, replies: list[Any]) -> None:
    """Read a connection's replies into `replies` (an error reply is kept as the error;
    a dropped connection leaves its commands' replies as that error)."""
    connection = written.connection
    if connection is None:
        raise RuntimeError("the replies of these commands were already read")
    written.connection = None
    try:
        for position in written.positions:
            if written.asking:
                _reply(connection)  # ASKING's +OK
            replies[position] = _reply(connection)
    except (redis.ConnectionError, redis.TimeoutError) as error:
        # Replies left unread would be taken for the next command's: drop the link.
        connection.disconnect()
        for position in written.positions:
            if replies[position] is _PENDING:
                replies[position] = error
    except BaseException:
        connection.disconnect()
        raise
    finally:
        written.pool.release(connection)


def _reply(connection: Connection) -> Any:
    try:
        return connection.read_response()
    except redis.ResponseError as error:
        return error


class _Pending:
    def __repr__(self) -> str:
        return "<no reply yet>"


_PENDING = _Pending()


def _out_of_order(reply: Any) -> bool:
    """A call refused because the call before it on the same owner did not run (see
    `spec.chain_link`): it runs once that one is sent again."""
    return isinstance(reply, redis.ResponseError) and first_word(reply) == CHAIN_REFUSED


def _with_followers(positions: list[int], replies: list[Any]) -> list[int]:
    """`positions` to send again, with the calls refused for waiting on them, in batch order."""
    if not positions:
        return []
    return sorted({*positions, *(i for i, r in enumerate(replies) if _out_of_order(r))})


@dataclass(frozen=True, slots=True)
class _ChainRestart:
    """The calls to send again when the only refusals are for order: each refused call's
    owner's calls from its first in the batch, in batch order; `standing` are the replies of
    those that ran (a redelivery's reply is not its first delivery's: it says redelivered)."""

    positions: list[int]
    standing: dict[int, Any]


def _keep_standing(replies: list[Any], standing: dict[int, Any]) -> None:
    """Put the standing replies back over what a second run answered, unless that was an
    error of its own (sent again if it is a redirect, else raised with the batch)."""
    for position, reply in standing.items():
        again = replies[position]
        if not isinstance(again, (redis.RedisError, _Pending)) or _out_of_order(again):
            replies[position] = reply


def _chain_restart(commands: Sequence[Command], replies: list[Any]) -> _ChainRestart | None:
    """What to send again for calls refused because another writer came between calls of the
    batch on their owner (None: no refusal for order, or another error the batch raises)."""
    refused = [i for i, reply in enumerate(replies) if _out_of_order(reply)]
    if not refused or any(
        isinstance(reply, (redis.RedisError, _Pending)) and not _out_of_order(reply)
        for reply in replies
    ):
        return None
    last_refused: dict[bytes | str, int] = {}
    for i in refused:
        last_refused[_first_key(commands[i])] = i
    positions = [
        i for i, command in enumerate(commands)
        if command[0] == "FCALL" and i <= last_refused.get(_first_key(command), -1)
    ]  # fmt: skip
    standing = {i: replies[i] for i in positions if not _out_of_order(replies[i])}
    return _ChainRestart(positions, standing)


def _raise_first(replies: list[Any]) -> list[Any]:
    """The replies, unless one is an error: then the first that is a command's own (a call
    refused for order only follows an error before it)."""
    errors = [reply for reply in replies if isinstance(reply, redis.RedisError)]
    if errors:
        raise next((e for e in errors if not _out_of_order(e)), errors[0])
    return replies


class SingleNodeTransport:
    """One server: one pipeline per batch on a pooled connection of its own."""

    def __init__(self, client: redis.Redis, reload: Callable[[], None],
                 on_resend: ResendCounter | None = None) -> None:  # fmt: skip
        self._client = client
        self._reload = reload
        self.count_resent: ResendCounter = on_resend or _uncounted

    def describe(self) -> str:
        """Host and port of the server."""
        kwargs = self._client.connection_pool.connection_kwargs
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"

    def send(self, commands: Sequence[Command]) -> _SingleInFlight:
        """Write every command on one connection."""
        batch = list(commands)
        written = _write(self._client.connection_pool, batch, list(range(len(batch))))
        return _SingleInFlight(self, batch, written)


@dataclass
class _SingleInFlight:
    transport: SingleNodeTransport
    commands: list[Command]
    written: _Written

    def replies(self) -> list[Any]:
        """The replies; a server that lost the functions gets them and the batch again, and
        an owner whose chain another writer broke gets its calls again."""
        replies: list[Any] = [_PENDING] * len(self.commands)
        _read(self.written, replies)
        pool = self.transport._client.connection_pool
        missing = [i for i, reply in enumerate(replies) if is_missing_function(reply)]
        if missing:
            self.transport._reload()
            again = _with_followers(missing, replies)
            self.transport.count_resent("functions", len(again))
            _read(_write(pool, self.commands, again), replies)
        for attempt in range(_CHAIN_RESTARTS):
            restart = _chain_restart(self.commands, replies)
            if restart is None:
                break
            if attempt:
                time.sleep(_BACKOFF_S[attempt - 1])
            self.transport.count_resent("another_writer", len(restart.positions))
            _read(_write(pool, self.commands, restart.positions), replies)
            _keep_standing(replies, restart.standing)
        for reply in replies:
            if isinstance(reply, (redis.ConnectionError, redis.TimeoutError)):
                raise reply
        return _raise_first(replies)


class ClusterTransport:
    """A Redis Cluster: one pipeline per node, commands routed by the slot of their first key."""

    def __init__(self, cluster: RedisCluster, reload: Callable[[], None],
                 settle_timeout_s: float = SETTLE_TIMEOUT_S,
                 on_resend: ResendCounter | None = None) -> None:  # fmt: skip
        self._cluster = cluster
        self._reload = reload
        self._settle_timeout_s = settle_timeout_s
        self.count_resent: ResendCounter = on_resend or _uncounted

    def describe(self) -> str:
        """The primaries the cluster has now."""
        nodes = self._cluster.get_primaries()
        return f"Redis Cluster, {len(nodes)} primaries: " + ", ".join(n.name for n in nodes)

    def node_of(self, command: Command) -> ClusterNode:
        """The primary that serves the slot of the command's first key."""
        key = _first_key(command)
        slot = self._cluster.keyslot(key)
        return self._cluster.nodes_manager.get_node_from_slot(slot)

    def send(self, commands: Sequence[Command]) -> _ClusterInFlight:
        """Write each node's commands (in batch order) on a connection of its own."""
        batch = list(commands)
        inflight = _ClusterInFlight(self, batch)
        inflight.write(list(range(len(batch))))
        return inflight

    def _pool(self, node: ClusterNode) -> ConnectionPool:
        connection = self._cluster.get_redis_connection(node)
        return connection.connection_pool

    def refresh(self) -> None:
        """Learn the slots' owners again (after MOVED, a failover or a lost node)."""
        self._cluster.nodes_manager.initialize()


def _first_key(command: Command) -> bytes | str:
    """The first key of a command this package sends: FCALL/FCALL_RO name numkeys key...,
    or a plain keyed command."""
    name = str(command[0]).upper()
    key = command[3] if name in ("FCALL", "FCALL_RO") else command[1]
    return key if isinstance(key, (bytes, str)) else str(key)


@dataclass
class _ClusterInFlight:
    transport: ClusterTransport
    commands: list[Command]
    written: list[_Written] = field(default_factory=list)
    failed_writes: list[tuple[list[int], BaseException]] = field(default_factory=list)

    def write(self, positions: list[int], asking_at: dict[int, str] | None = None) -> None:
        """Write the commands at `positions`, one pipeline per node (ASK: to the node named)."""
        by_node: dict[str, tuple[ConnectionPool, list[int], bool]] = {}
        for position in positions:
            target = (asking_at or {}).get(position)
            if target is not None:
                host, port = target.rsplit(":", 1)
                node = self.transport._cluster.get_node(host, int(port))
                if node is None:
                    self.transport.refresh()
                    node = self.transport._cluster.get_node(host, int(port))
            else:
                node = self.transport.node_of(self.commands[position])
            if node is None:
                self.failed_writes.append(([position], redis.ConnectionError(f"no node {target}")))
                continue
            group = f"{node.name}{'/ask' if target else ''}"
            if group not in by_node:
                by_node[group] = (self.transport._pool(node), [], target is not None)
            by_node[group][1].append(position)
        for pool, group_positions, asking in by_node.values():
            try:
                self.written.append(_write(pool, self.commands, group_positions, asking))
            except (redis.ConnectionError, redis.TimeoutError) as error:
                self.failed_writes.append((group_positions, error))

    def replies(self) -> list[Any]:
        """Every reply, once each command has one that is not a redirect or a failover's
        refusal; raises the first other error reply."""
        replies: list[Any] = [_PENDING] * len(self.commands)
        deadline = time.monotonic() + self.transport._settle_timeout_s
        attempt = 0
        standing: dict[int, Any] = {}  # first replies of calls run again for a chain
        restarts = 0
        while True:
            self._collect(replies)
            _keep_standing(replies, standing)
            retry = [i for i, r in enumerate(replies) if _resend(r) or _dropped(r)]
            missing = [i for i, r in enumerate(replies) if is_missing_function(r)]
            if not retry and not missing:
                restart = _chain_restart(self.commands, replies)
                if restart is None or restarts == _CHAIN_RESTARTS:
                    return _raise_first(replies)
                if restarts:
                    time.sleep(_BACKOFF_S[restarts - 1])
                restarts += 1
                self.transport.count_resent("another_writer", len(restart.positions))
                standing.update(restart.standing)
                for i in restart.positions:
                    replies[i] = _PENDING
                self.write(restart.positions)
                continue
            if time.monotonic() > deadline:
                raise next(replies[i] for i in sorted(retry + missing))
            # ASK names the node importing the slot: the call goes there, after ASKING.
            asking_at = {
                i: f"{replies[i].host}:{replies[i].port}"
                for i in retry
                if type(replies[i]) is redis.exceptions.AskError
            }
            if missing:
                self.transport._reload()
            if len(asking_at) < len(retry):
                # Not only ASK: the slots moved or a node failed; wait a little, look again.
                time.sleep(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])
                self.transport.refresh()
            attempt += 1
            self.transport.count_resent("redirect", len(retry))
            self.transport.count_resent("functions", len(missing))
            log.info(
                "cluster batch resent",
                extra={"event": "cluster_resend", "commands": len(retry) + len(missing),
                       "reason": type(replies[(retry + missing)[0]]).__name__},
            )  # fmt: skip
            positions = _with_followers(retry + missing, replies)
            for i in positions:
                replies[i] = _PENDING
            self.write(positions, asking_at)

    def _collect(self, replies: list[Any]) -> None:
        written, self.written = self.written, []
        for each in written:
            _read(each, replies)
        failed, self.failed_writes = self.failed_writes, []
        for positions, error in failed:
            for position in positions:
                replies[position] = error


def _dropped(reply: Any) -> bool:
    return isinstance(reply, (redis.ConnectionError, redis.TimeoutError))


def transport_for(
    client: Any,
    reload: Callable[[], None],
    settle_timeout_s: float = SETTLE_TIMEOUT_S,
    on_resend: ResendCounter | None = None,
) -> Transport:
    """The transport for a client: a cluster's (a batch that has not settled within
    `settle_timeout_s` fails) or a single server's; `on_resend` counts what went again."""
    if isinstance(client, RedisCluster):
        return ClusterTransport(client, reload, settle_timeout_s, on_resend)
    return SingleNodeTransport(client, reload, on_resend)
