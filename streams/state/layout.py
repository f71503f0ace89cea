"""Which state layout a Redis holds, so that a release never writes into state it cannot read.

A release that changes how the windows are kept (`spec.py`) cannot read what an earlier one
wrote: left alone, it would start every account from empty windows and say nothing, while the
old keys linger until their TTL. The layout in force is therefore recorded in Redis
(`LAYOUT_KEY`), and the worker, `warmup` and `up` check it before they write: state of another
layout is refused, naming what to do (`deploy/RUNBOOK.md`, "Upgrading fraudwatch"), until the
operator adopts this layout with `fraudwatch layout --adopt`.

State written before the marker existed is recognised by its keys: the layout before
2026-12-06 kept an account's windows in several keys beside a `:meta` hash.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from streams.state.eviction import refuse_eviction
from streams.state.pii_key import ensure_pii_key
from streams.state.pipelines import AnyRedis

# Bump when a change to spec.py makes state written before it unreadable (and say so in the
# runbook's upgrade section). 1: the layout before 2026-12-06; 2: spec.py's one sorted set
# and packed meta per account.
LAYOUT_VERSION = 2
LAYOUT_KEY = "fw:layout"
# An account key of layout 1 that layout 2 never writes.
_LAYOUT_1_KEYS = "fw:{a:*}:meta"


class LayoutMismatch(RuntimeError):
    """Redis holds state of a layout this release does not read."""

    def __init__(self, found: int) -> None:
        super().__init__(
            f"Redis holds fraudwatch state of layout {found}; this release keeps layout "
            f"{LAYOUT_VERSION} and cannot read it, so it would score every account from empty "
            "windows. Stop every worker of the earlier release, then either adopt the new "
            "layout and warm it up from history (`fraudwatch layout --adopt`, then `fraudwatch "
            "warmup` with the last 30 days of transfers and the profiles) or adopt it and start "
            "from empty windows: deploy/RUNBOOK.md, 'Upgrading fraudwatch'"
        )
        self.found = found


@dataclass(frozen=True, slots=True)
class LayoutState:
    """What a Redis holds: the layout recorded (or recognised), None for no state at all."""

    found: int | None
    recorded: bool


def read_layout(client: AnyRedis) -> LayoutState:
    """The layout recorded in Redis, or recognised from its keys when none is recorded."""
    stored = client.get(LAYOUT_KEY)
    if stored is not None:
        try:
            return LayoutState(int(stored), True)
        except ValueError:  # written by hand: a layout no release keeps, refused as such
            return LayoutState(0, True)
    # Once per installation (the marker is written after): a scan of the keyspace.
    for _ in client.scan_iter(match=_LAYOUT_1_KEYS, count=1000):
        return LayoutState(1, False)
    return LayoutState(None, False)


def ensure_layout(client: AnyRedis) -> None:
    """Record this release's layout in a Redis that holds no state of another one (a new
    installation, or state of this layout written before the marker existed); raise
    `LayoutMismatch` for one that does, and `EvictingRedis` for one that would evict it."""
    refuse_eviction(client)
    state = read_layout(client)
    if state.found is not None and state.found != LAYOUT_VERSION:
        raise LayoutMismatch(state.found)
    if not state.recorded and not client.set(LAYOUT_KEY, LAYOUT_VERSION, nx=True):
        ensure_layout(client)  # another process recorded one meanwhile: judge that one


def ensure_state_is_ours(client: AnyRedis, pii_key: str) -> None:
    """Before writing: refuse state of another layout (`ensure_layout`) or pseudonymised with
    another key (`ensure_pii_key`), and record this release's layout and `pii_key`'s
    fingerprint in a Redis that holds neither."""
    ensure_layout(client)
    ensure_pii_key(client, pii_key)


def adopt_layout(client: AnyRedis) -> LayoutState:
    """Record this release's layout whatever Redis holds (what it held, returned): from now
    on the windows start from what this layout finds, the earlier layout's keys expire."""
    before = read_layout(client)
    client.set(LAYOUT_KEY, LAYOUT_VERSION)
    return before


class StateWatch:
    """Notices, between batches, that Redis lost fraudwatch's state under a running worker: its
    layout marker gone (a restart without persistence, a flush, a failover to an empty
    replica). The worker would otherwise score on from empty windows without a word; this
    says so (log `state_lost`, `fraudwatch_state_lost_total`, FraudwatchStateLost) and records
    the layout and the PII key's fingerprint again, so the next loss is noticed too and a
    process with another key is refused as before."""

    def __init__(
        self,
        client: AnyRedis,
        pii_key: str,
        on_lost: Callable[[], None],
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._pii_key = pii_key
        self._on_lost = on_lost
        self._interval_s = interval_s
        self._clock = clock
        self._next_check = clock() + interval_s

    def between_batches(self) -> None:
        """Check the marker if a check is due; a Redis that does not answer is the retries'."""
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + self._interval_s
        try:
            if self._client.exists(LAYOUT_KEY):
                return
            self._on_lost()
            ensure_state_is_ours(self._client, self._pii_key)
        except redis.RedisError:
            return
