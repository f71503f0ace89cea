"""`fraudwatch api` serves from FRAUDWATCH_API_WORKERS processes, each a whole app."""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from loadtest.procstats import session_pids
from service.embedded import EmbeddedServices
from service.embedded.process import free_port, spawn
from tests.integration.conftest import TEST_API_KEY


def _status(url: str, key: str | None = None) -> int:
    request = urllib.request.Request(url)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def _served_by(session: int) -> list[int]:
    """uvicorn's worker processes in the API's session (started by multiprocessing's spawn)."""
    served = []
    for pid in session_pids(session):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            served.append(pid)
    return served


def test_api_runs_the_configured_number_of_processes(
    services: EmbeddedServices, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDWATCH_")}
    env.update({
        "FRAUDWATCH_HOME": str(tmp_path / "home"),
        "FRAUDWATCH_REDIS_URL": services.redis_url,
        "FRAUDWATCH_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
        "FRAUDWATCH_API_KEYS": TEST_API_KEY,
        "FRAUDWATCH_API_PORT": str(port),
        "FRAUDWATCH_API_WORKERS": "2",
    })  # fmt: skip
    api = spawn("api", [sys.executable, "-m", "service.cli", "api"], tmp_path / "api.log",
                port=port, env=env)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while _status(f"{url}/readyz") != 200:
            assert api.alive(), api.log_tail()
            assert time.monotonic() < deadline, api.log_tail()
            time.sleep(0.2)
        assert len(_served_by(api.pid)) == 2, api.log_tail()
        # Every process answers as the whole API: authenticated, with its routes.
        for _ in range(8):
            assert _status(f"{url}/v1/rules", TEST_API_KEY) == 200
            assert _status(f"{url}/v1/rules", "not-a-key") == 401
    finally:
        api.stop()
    assert _served_by(api.pid) == []
