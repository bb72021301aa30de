"""Start, watch and stop server processes by pid, safely against pid reuse and zombies.

A process is named by its pid *and* its start time (:class:`ProcessRef`), so a pid file
left behind by a crash never makes us signal an unrelated process that reused the pid. On
Linux the start time compared is the kernel's, in clock ticks since boot: the one in seconds
since the epoch (psutil's ``create_time``) moves when the wall clock is stepped, and a stack
started before a step would then read as gone and be left running by ``stack down``.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "ProcessRef",
    "boot_id",
    "free_port",
    "listens_on",
    "spawn",
    "start_ticks",
    "stop_process",
    "tail",
    "wait_until",
]

#: Start times read twice from /proc agree to the clock tick (10 ms); allow a margin.
_START_TIME_TOLERANCE = 0.05


@dataclass(frozen=True)
class ProcessRef:
    """One process, identified by pid and start time: ``start_ticks`` (clock ticks after
    boot ``boot_id``, Linux) when known, else ``create_time`` (seconds since the epoch, to
    50 ms)."""

    pid: int
    create_time: float
    start_ticks: int | None = None
    boot_id: str | None = None

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        """The running process ``pid`` (raises :class:`psutil.NoSuchProcess` if gone).

        >>> ProcessRef.of(os.getpid()).is_alive()
        True
        """
        return cls(pid, psutil.Process(pid).create_time(), start_ticks(pid), boot_id())

    def _same_start(self, proc: psutil.Process) -> bool:
        if self.start_ticks is not None:
            ticks = start_ticks(self.pid)
            if ticks is not None:  # (ticks count from one boot: a process of another is gone)
                return ticks == self.start_ticks and self.boot_id in (None, boot_id())
        return abs(proc.create_time() - self.create_time) <= _START_TIME_TOLERANCE

    def process(self) -> psutil.Process | None:
        """The process, or None once it has fully exited (zombie included) or its pid was reused.

        A zombie counts as exited only when its last thread is gone: the leader of a
        multi-threaded server turns zombie while its other threads still tear down and
        hold its sockets.
        """
        try:
            proc = psutil.Process(self.pid)
            if not self._same_start(proc):
                return None
            if proc.status() == psutil.STATUS_ZOMBIE and proc.num_threads() <= 1:
                return None
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
        return proc

    def is_alive(self) -> bool:
        return self.process() is not None


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks after boot (``/proc/<pid>/stat`` field 22): a
    number no clock step changes; None where there is no ``/proc`` or no such process.

    >>> start_ticks(os.getpid()) == start_ticks(os.getpid())
    True
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after
    # the last ")"; starttime is the 20th field from there
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


@functools.cache  # (it cannot change while this process runs)
def boot_id() -> str | None:
    """This boot's random id (``/proc/sys/kernel/random/boot_id``), or None without it."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the kernel's pick).

    >>> 1024 <= free_port() <= 65535
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def listens_on(ref: ProcessRef, port: int, host: str = "127.0.0.1") -> bool:
    """True if process ``ref`` itself holds a listening TCP socket on ``host:port``."""
    proc = ref.process()
    if proc is None:
        return False
    try:
        connections = proc.net_connections(kind="tcp4")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return any(
        conn.status == psutil.CONN_LISTEN and conn.laddr and tuple(conn.laddr) == (host, port)
        for conn in connections
    )


def spawn(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session (no terminal signals), output appended to ``log_path``.

    Its own session means a Ctrl-C in the terminal reaches the caller, which then stops the
    servers in order, and that a detached server survives the CLI that started it.
    """
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ if env is None else env),
            start_new_session=True,
            close_fds=True,
        )


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll ``condition`` until it is true (True) or ``timeout`` seconds pass (False).

    >>> wait_until(lambda: True, timeout=0.1)
    True
    >>> wait_until(lambda: False, timeout=0.05)
    False
    """
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def stop_process(
    ref: ProcessRef,
    timeout: float = 5.0,
    popen: subprocess.Popen[bytes] | None = None,
) -> bool:
    """SIGTERM ``ref``, wait up to ``timeout`` s, then SIGKILL. False if it was already gone.

    Pass the ``popen`` that started it (if this process did) so that it is reaped. Our own
    child is signalled through ``popen`` whatever its start time reads now: that reading
    moves with the wall clock (psutil derives it from the boot time), and a clock stepped
    during a long run must not make us leave our servers running.
    """
    if popen is not None:
        if popen.poll() is not None:
            return False
        signaller: Any = popen
    else:
        signaller = ref.process()
        if signaller is None:
            return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        try:
            signaller.send_signal(sig)
        except (psutil.NoSuchProcess, ProcessLookupError):
            break
        if wait_until(lambda: _exited(ref, popen), wait, interval=0.01):
            break
    return True


def _exited(ref: ProcessRef, popen: subprocess.Popen[bytes] | None) -> bool:
    """Our child: reaped (waitpid, the only certain sign); any other process: gone."""
    return popen.poll() is not None if popen is not None else not ref.is_alive()


def _reap(popen: subprocess.Popen[bytes] | None) -> None:
    """Collect our child's exit status if it has one, so it leaves no zombie."""
    if popen is not None:
        popen.poll()


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ('' if missing), for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
