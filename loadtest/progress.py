"""Progress lines on stderr (silenced by `--json`)."""

from __future__ import annotations

import sys
import time

_started = time.monotonic()
_enabled = True


def set_enabled(enabled: bool) -> None:
    """Turn progress output on or off for the whole run."""
    global _enabled
    _enabled = enabled


def say(message: str) -> None:
    """One progress line, stamped with seconds since the run began."""
    if _enabled:
        print(f"[{time.monotonic() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)
