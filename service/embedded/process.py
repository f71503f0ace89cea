"""Child processes that never outlive us: spawn, wait until ready, stop cleanly.

Every child runs in its own session (so a Ctrl-C in the terminal reaches only us, and we stop
the children in order) and asks the kernel to SIGTERM it when its parent dies, so that even a
SIGKILLed parent leaves no broker or Redis behind. An atexit hook stops whatever is still
running when the interpreter exits normally.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

_PR_SET_PDEATHSIG = 1
# Loaded once here: loading a library in the forked child could deadlock on the loader lock.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

_running: set[ManagedProcess] = set()
_running_lock = threading.Lock()


class ServiceStartError(RuntimeError):
    """An embedded service did not come up; the message says why and shows its log."""

    def __init__(self, message: str, *, exited: bool = False) -> None:
        super().__init__(message)
        # True when the child died on its own (e.g. its port was taken): worth a retry.
        self.exited = exited


@dataclass(eq=False)
class ManagedProcess:
    """A child process in its own process group, with its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        """The child's pid (also its process-group id)."""
        return self.popen.pid

    def alive(self) -> bool:
        """Whether the child is still running."""
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the child's log, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the child's process group, SIGKILL it after `timeout_s`; return the exit code."""
        if not self._stopped:
            self._stopped = True
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.popen.wait()
            # Members of the group that outlived the leader must not linger either.
            _signal_group(self.pid, signal.SIGKILL)
            with _running_lock:
                _running.discard(self)
        return self.popen.returncode


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _die_with(parent_pid: int) -> Callable[[], None]:
    """A preexec hook: the kernel SIGTERMs the child when the spawning thread's process dies."""

    def hook() -> None:
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        # The parent may have died between fork and prctl; then no signal would ever come.
        if os.getppid() != parent_pid:
            os._exit(1)

    return hook


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> ManagedProcess:
    """Start `argv` as a managed child writing stdout and stderr to `log_path`.

    Spawn from the main thread: the kernel's parent-death signal follows the spawning thread.
    With `port`, refuses to start when something already listens there: our readiness probe
    would otherwise be answered by that other server.
    """
    if port is not None and port_open(port):
        raise ServiceStartError(f"{name}: port {port} on 127.0.0.1 is already in use", exited=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with(os.getpid()),
        )
    proc = ManagedProcess(name=name, popen=popen, log_path=log_path, port=port)
    with _running_lock:
        _running.add(proc)
    return proc


def wait_ready(
    proc: ManagedProcess, probe: Callable[[], bool], *, timeout_s: float, what: str
) -> None:
    """Poll `probe` until it returns True; stop `proc` and raise if it dies or times out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not proc.alive():
            proc.stop()
            raise ServiceStartError(
                f"{what} exited with code {proc.popen.returncode} while starting; "
                f"last lines of {proc.log_path}:\n{proc.log_tail()}",
                exited=True,
            )
        if probe():
            return
        if time.monotonic() >= deadline:
            proc.stop()
            raise ServiceStartError(
                f"{what} was not ready after {timeout_s:.0f}s; "
                f"last lines of {proc.log_path}:\n{proc.log_tail()}"
            )
        time.sleep(0.05)


def start_with_port_retry(
    start: Callable[[int], ManagedProcess], port: int | None, *, attempts: int = 3
) -> ManagedProcess:
    """Start a service on `port`, or on a free port, retrying if another process grabbed it.

    A free port can be taken between our probe and the child's bind; only then do we retry.
    """
    if port is not None:
        return start(port)
    for _ in range(attempts - 1):
        try:
            return start(free_port())
        except ServiceStartError as exc:
            if not exc.exited:
                raise
    return start(free_port())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def stop_all(timeout_s: float = 10.0) -> None:
    """Stop every managed child still running (newest first)."""
    with _running_lock:
        procs = sorted(_running, key=lambda p: p.pid, reverse=True)
    for proc in procs:
        proc.stop(timeout_s)


atexit.register(stop_all)


@contextlib.contextmanager
def exit_on_termination_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into SystemExit while inside, so `finally` blocks stop children.

    Only installs where nobody else handles the signal, and only from the main thread (the
    one place Python allows it); the previous handlers come back on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[signal.Signals, object] = {}

    def raise_exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            previous[sig] = signal.signal(sig, raise_exit)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
