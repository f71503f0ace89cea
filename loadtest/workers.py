"""Worker processes for a phase: `python -m service.cli worker`, as `fraudwatch up` runs them.

Each worker gets the phase's settings through FRAUDWATCH_* variables, a Prometheus
multiprocess directory (its counters survive its exit for the benchmark to read), and the
round-trip probe in `loadtest/probe` on its PYTHONPATH.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loadtest import procstats
from loadtest.environment import LoadtestError
from loadtest.probe import PROBE_DIR_ENV
from service.embedded import ManagedProcess, spawn
from service.settings import Settings

_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE_DIR.parent
_STOP_TIMEOUT_S = 20.0


def worker_env(settings: Settings, metrics_dir: Path, probe_dir: Path) -> dict[str, str]:
    """The environment of one worker: ours without FRAUDWATCH_*, then the phase's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDWATCH_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"FRAUDWATCH_{name.upper()}"] = str(value)
    paths = [str(_PACKAGE_DIR / "probe"), str(_REPO_ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env[PROBE_DIR_ENV] = str(probe_dir)
    return env


@dataclass
class WorkerGroup:
    """The running workers of one phase and where their counters land."""

    processes: list[ManagedProcess]
    metrics_dir: Path
    probe_dir: Path

    def cpu_seconds(self) -> float:
        """CPU seconds used by all workers so far."""
        return sum(procstats.cpu_seconds(p.pid) for p in self.processes)

    def rss_bytes(self) -> int:
        """The largest resident set among the workers."""
        return max((procstats.rss_bytes(p.pid) for p in self.processes), default=0)

    def check_alive(self) -> None:
        """Raise, with the end of its log, if a worker has died."""
        for proc in self.processes:
            if not proc.alive():
                raise LoadtestError(
                    f"{proc.name} exited with code {proc.popen.returncode}; "
                    f"its log ({proc.log_path}) ends:\n{proc.log_tail()}"
                )

    def stop(self) -> None:
        """SIGTERM every worker (they finish their batch and commit), SIGKILL stragglers."""
        for proc in self.processes:
            if proc.alive():
                proc.popen.terminate()
        for proc in self.processes:
            proc.stop(_STOP_TIMEOUT_S)


@contextlib.contextmanager
def running_workers(settings: Settings, count: int, rundir: Path) -> Iterator[WorkerGroup]:
    """Start `count` workers in one consumer group; stop them all when the block ends."""
    metrics_dir, probe_dir = rundir / "metrics", rundir / "probe"
    for folder in (metrics_dir, probe_dir):
        folder.mkdir(parents=True, exist_ok=True)
    env = worker_env(settings, metrics_dir, probe_dir)
    command = [sys.executable, "-m", "service.cli", "worker"]
    group = WorkerGroup([], metrics_dir, probe_dir)
    try:
        for index in range(count):
            log = rundir / f"worker-{index}.log"
            group.processes.append(spawn(f"worker-{index}", command, log, env=env))
        yield group
    finally:
        group.stop()
