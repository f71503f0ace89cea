"""Counts Redis round trips in a worker process (see `loadtest.probe`).

Python imports this at start-up because its folder is on the worker's PYTHONPATH. It wraps
`AbstractConnection.send_packed_command`, through which every command and pipeline is written,
and `read_response`: a round trip is the writes on a connection up to the first reply read,
so a batch written in several chunks before any reply counts once.
"""

from __future__ import annotations

import atexit
import json
import os

_DIR = os.environ.get("LOADTEST_PROBE_DIR")  # keep in step with loadtest.probe.PROBE_DIR_ENV


def _install(directory: str) -> None:
    from redis.connection import AbstractConnection

    sent = [0]
    original_send = AbstractConnection.send_packed_command
    original_read = AbstractConnection.read_response
    writing: set[int] = set()  # connections written to since their last reply was read

    def counted(self: AbstractConnection, command: object, check_health: bool = True) -> None:
        if id(self) not in writing:
            writing.add(id(self))
            sent[0] += 1
        original_send(self, command, check_health)

    def read(self: AbstractConnection, *args: object, **kwargs: object) -> object:
        writing.discard(id(self))
        return original_read(self, *args, **kwargs)

    def write() -> None:
        path = os.path.join(directory, f"{os.getpid()}.json")
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"round_trips": sent[0]}, out)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    AbstractConnection.read_response = read  # type: ignore[method-assign,assignment]
    atexit.register(write)


if _DIR:
    _install(_DIR)
