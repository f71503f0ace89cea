"""deploy/redis/redis.conf loads in a real redis-server with AOF, without eviction and with the
embedded Redis's tuning of the state layout."""

from __future__ import annotations

import subprocess
import time

from service.embedded.redis_server import STATE_TUNING
from tests.deploy.helpers import REDIS_CONF, require_tool


def test_redis_conf_loads_with_aof_no_eviction_and_the_state_tuning(tmp_path):
    server = require_tool("redis-server", "redis-server")
    cli = require_tool("redis-cli", "redis-tools")
    sock = tmp_path / "redis.sock"
    conf = REDIS_CONF.read_text().replace("dir /data", f"dir {tmp_path}")
    conf += f"\nport 0\nunixsocket {sock}\n"
    (tmp_path / "redis.conf").write_text(conf)
    proc = subprocess.Popen(
        [server, str(tmp_path / "redis.conf"), "--maxmemory", "64mb"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert proc.poll() is None, f"redis-server refused the config:\n{proc.stdout.read()}"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

        def get(key: str) -> str:
            out = subprocess.run(
                [cli, "-s", str(sock), "CONFIG", "GET", key], capture_output=True, text=True
            ).stdout.split()
            return out[1]

        assert get("appendonly") == "yes"
        assert get("appendfsync") == "everysec"
        assert get("maxmemory-policy") == "noeviction"
        assert get("maxmemory") == str(64 * 1024 * 1024)
        # Production runs the state functions on the layout the embedded Redis was measured on.
        option, value = STATE_TUNING
        assert get(option.removeprefix("--")) == value
    finally:
        proc.terminate()
        proc.wait(timeout=10)
