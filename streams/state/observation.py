"""When the state began observing the stream, and when it began again.

Whether a payee is new, or an account only just opened, is known only after a week of
observation (`models.features.COLD_START_MS`). Observation begins with the first transfer ever
applied, and begins again at a transfer that comes after a silence longer than every window
(`GAP_MS`): nothing the state held before it still counts, so the state is as new as on a new
installation. Without the restart, one stray old event (a back-dated correction, a terminal
with a wrong clock) as an installation's first made every account look observed for years.

Each transfer is judged by the observation in force at its own event time (the latest start
at or before it), so a batch applied again after a crash, whose starts are already recorded,
gets what its first delivery got, and a batch cut anywhere gets what one transfer at a time
would. A batch is applied as its segments: its times sorted and cut at every silence longer
than `GAP_MS`. Both stores apply the same update (the Redis function `observe` in
`lua/state.lua`, atomically in one key, and `Observation.after` here); the stored text is
`latest,start,start,...` (a lone number: a start recorded before restarts existed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from models.features import UNKNOWN
from streams.state.spec import ACCOUNT_RETENTION_MS

# A silence longer than this (every account window with its slack) begins observation again.
GAP_MS = ACCOUNT_RETENTION_MS
# Starts kept: the newest; a transfer older than all of them counts as unobserved.
KEPT_STARTS = 4
_INTEGER = re.compile(r"-?[0-9]+")


def segments(times: Iterable[int]) -> list[tuple[int, int]]:
    """The first and last time of each run of `times` (sorted) without a silence longer than
    `GAP_MS`, in order."""
    ordered = sorted(times)
    if not ordered:
        return []
    runs = [[ordered[0], ordered[0]]]
    for ts in ordered[1:]:
        if ts > runs[-1][1] + GAP_MS:
            runs.append([ts, ts])
        else:
            runs[-1][1] = ts
    return [(first, last) for first, last in runs]


@dataclass(frozen=True, slots=True)
class Observation:
    """The starts of observation kept (ascending) and the latest event time applied."""

    starts: tuple[int, ...] = ()
    latest: int = UNKNOWN

    @classmethod
    def decode(cls, stored: bytes | str | None) -> Observation:
        """An observation as stored (None: nothing applied yet). A part that is not a number
        (a value written by hand) is skipped, as the Redis function skips it."""
        if stored is None:
            return cls()
        text = stored.decode(errors="replace") if isinstance(stored, bytes) else stored
        numbers = [int(part) for part in text.split(",") if _INTEGER.fullmatch(part.strip())]
        if not numbers:
            return cls()
        if len(numbers) == 1:
            return cls((numbers[0],))
        return cls(tuple(numbers[1:]), numbers[0])

    def encode(self) -> str:
        """The stored text."""
        return ",".join(str(n) for n in (self.latest, *self.starts))

    def after(self, first: int, last: int) -> Observation:
        """This observation once a segment from `first` to `last` is applied: a first
        segment, or one after a silence longer than `GAP_MS`, begins observation."""
        starts = self.starts
        if not starts or (self.latest != UNKNOWN and first > self.latest + GAP_MS):
            starts = (*starts, first)[-KEPT_STARTS:]
        latest = last if self.latest == UNKNOWN else max(self.latest, last)
        return Observation(starts, latest)

    def applied(self, times: Iterable[int]) -> Observation:
        """This observation once transfers at `times` are applied."""
        observation = self
        for first, last in segments(times):
            observation = observation.after(first, last)
        return observation

    def since(self, ts_ms: int) -> int:
        """When the observation in force at `ts_ms` began: the latest start at or before it,
        else `ts_ms` itself (a transfer before any start kept is not observed at all)."""
        return max((start for start in self.starts if start <= ts_ms), default=ts_ms)

    @property
    def current_start(self) -> int | None:
        """When the newest observation began (None before any transfer)."""
        return self.starts[-1] if self.starts else None
