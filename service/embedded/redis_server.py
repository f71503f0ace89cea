"""The embedded Redis: Debian's `redis-server` on loopback, without persistence unless asked."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import redis

from service.embedded.process import (
    ManagedProcess,
    ServiceStartError,
    spawn,
    start_with_port_retry,
    wait_ready,
)


def debian_binary(name: str, package: str) -> str:
    """The path of a program Debian's `package` installs, or a clear error saying how to
    install it."""
    # Root's PATH under some sudo setups lacks /usr/sbin and friends; look there too.
    found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin:/usr/local/bin")
    if found is None:
        raise ServiceStartError(
            f"{name} is not installed; install it: apt-get install -y {package}"
        )
    return found


def redis_binary() -> str:
    """The path of `redis-server`, or a clear error saying how to install it."""
    return debian_binary("redis-server", "redis-server")


def _pings(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


# Account windows of more than 64 entries kept as skip lists rather than listpacks, which
# Redis scans end to end for every member it looks up: 5-6 % fewer Redis instructions per
# transfer for 4-6 % more memory per account (README, Performance). redis.conf says the same.
STATE_TUNING = ("--zset-max-listpack-entries", "64")


def start_redis(
    workdir: Path,
    port: int | None = None,
    *,
    durable: bool = False,
    timeout_s: float = 15.0,
    tuning: Sequence[str] = STATE_TUNING,
    launcher: Sequence[str] = (),
) -> ManagedProcess:
    """Start `redis-server` on 127.0.0.1 (`port`, or a free one) and wait until it PINGs.

    `durable` keeps an append-only file in `workdir/redis`, synced on every write, so a
    restart on the same directory finds every acknowledged write (as production's AOF does).
    `tuning` replaces the state layout's settings (benchmarks compare them); `launcher` runs
    the server under another program (a profiler), which then owns the process id.
    """
    persistence = ["--appendonly", "yes", "--appendfsync", "always"] if durable else []
    binary = redis_binary()
    data_dir = workdir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)

    def start(p: int) -> ManagedProcess:
        argv = [*launcher, binary, "--port", str(p), "--bind", "127.0.0.1", "--save", ""]
        argv += persistence or ["--appendonly", "no"]
        argv += [*tuning, "--daemonize", "no", "--dir", str(data_dir)]
        proc = spawn("redis-server", argv, workdir / "redis.log", port=p)
        wait_ready(proc, lambda: _pings(p), timeout_s=timeout_s, what=f"redis-server on port {p}")
        return proc

    return start_with_port_retry(start, port)
