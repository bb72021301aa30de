"""The demo's child processes: started in their own process group, output to a log file,
and always stopped (SIGTERM, then SIGKILL of the whole group) — even on Ctrl-C.

>>> import sys, tempfile
>>> with tempfile.TemporaryDirectory() as tmp, Children(Path(tmp)) as children:
...     child = children.start("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"])
...     child.running
True
>>> child.running, child.returncode is not None
(False, True)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Self

__all__ = ["Child", "Children", "driftradar_command"]

#: Seconds a child gets to stop after SIGTERM before its group is killed.
STOP_TIMEOUT: Final = 10.0


def driftradar_command(*args: str) -> list[str]:
    """``driftradar ARGS`` run with this interpreter (works without the console script)."""
    return [sys.executable, "-m", "streams.cli", *args]


class Child:
    """One child process (a session leader: its group is its pid)."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, popen: subprocess.Popen[bytes]
    ):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._popen = popen

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or ``None`` if still running after ``timeout`` seconds."""
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the child (not its group: it stops its own helpers)."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(signum)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL the child's whole process group."""
        if self.running:
            self.signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.wait(5.0)
        return self.returncode

    def log_tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of the child's output."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Children:
    """Starts children with logs under ``log_dir``; stops every one still running on exit
    (the latest first), whatever the reason for leaving."""

    def __init__(self, log_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.env = dict(os.environ if env is None else env)
        self.started: list[Child] = []

    def start(self, name: str, argv: Sequence[str]) -> Child:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # Ctrl-C in the terminal reaches only the demo
            )
        child = Child(name, argv, log_path, popen)
        self.started.append(child)
        return child

    def stop_all(self) -> None:
        for child in reversed(self.started):
            child.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # a second Ctrl-C while stopping must not leave children behind
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.stop_all()
        finally:
            signal.signal(signal.SIGINT, previous)
