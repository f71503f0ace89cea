"""An in-memory copy of something small that investigators and admins change (watchlists,
suppressions) and every scoring process reads, reloaded when its Redis version moves.

The version is checked at most once per `refresh_s` (one GET), so a worker pays O(1) round
trips per batch and a burst of API requests pays one per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Versioned(Protocol):
    """A snapshot that knows the version it was read at."""

    @property
    def version(self) -> int:
        """The change counter the snapshot was read at."""
        ...


S = TypeVar("S", bound=Versioned)


class RefreshedSnapshot(Generic[S]):
    """Holds a snapshot, reloading it (`load`) when `version()` differs from its own."""

    def __init__(
        self, empty: S, version: Callable[[], int], load: Callable[[], S], refresh_s: float
    ) -> None:
        self._snapshot = empty
        self._version = version
        self._load = load
        self._refresh_s = refresh_s
        self._checked_at: float | None = None

    def current(self, *, force: bool = False) -> S:
        """The snapshot, reloaded first if the version changed (checked when due or forced)."""
        now = time.monotonic()
        due = self._checked_at is None or now - self._checked_at >= self._refresh_s
        if force or due:
            self._checked_at = now
            if self._version() != self._snapshot.version:
                self._snapshot = self._load()
        return self._snapshot
