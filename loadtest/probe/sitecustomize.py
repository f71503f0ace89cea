"""Counts Redis round trips in a worker process (see `loadtest.probe`).

Python imports this at start-up because its folder is on the worker's PYTHONPATH. It wraps
`AbstractConnection.send_packed_command`, through which redis-py sends every command and every
pipeline: one call per request written, each answered before the next is sent.
"""

from __future__ import annotations

import atexit
import json
import os

_DIR = os.environ.get("LOADTEST_PROBE_DIR")  # keep in step with loadtest.probe.PROBE_DIR_ENV


def _install(directory: str) -> None:
    from redis.connection import AbstractConnection

    sent = [0]
    original = AbstractConnection.send_packed_command

    def counted(self: AbstractConnection, command: object, check_health: bool = True) -> None:
        sent[0] += 1
        original(self, command, check_health)

    def write() -> None:
        path = os.path.join(directory, f"{os.getpid()}.json")
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"round_trips": sent[0]}, out)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    atexit.register(write)


if _DIR:
    _install(_DIR)
