"""A measuring probe loaded into each worker process through its PYTHONPATH.

`sitecustomize.py` in this folder counts redis-py round trips (the writes of a command or a
pipeline up to its first reply read) and, when the worker exits, writes the count to
`$LOADTEST_PROBE_DIR/<pid>.json`. The worker's own code is not touched.
"""

from __future__ import annotations

import json
from pathlib import Path

PROBE_DIR_ENV = "LOADTEST_PROBE_DIR"


def read_round_trips(probe_dir: Path, expected_files: int) -> int | None:
    """Total round trips of the workers that wrote to `probe_dir`; None unless all wrote."""
    files = sorted(probe_dir.glob("*.json"))
    if len(files) < expected_files:
        return None
    return sum(int(json.loads(f.read_text())["round_trips"]) for f in files)
