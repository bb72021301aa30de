"""``LocalStack``: a throw-away broker and Redis for tests and the demo, owned by this process.

Usage (ports vary)::

    with LocalStack() as stack:
        print(stack.bootstrap, stack.redis_url)
    # 127.0.0.1:41234 redis://127.0.0.1:40321/0
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from streams.stack.errors import StackError
from streams.stack.services import KAFKA, REDIS, RunningService, ServiceKind, start_service

__all__ = ["LocalStack"]


class LocalStack:
    """Start a tansu broker and/or a Redis on free loopback ports; stop them on ``stop()``.

    :param state_dir: where logs and data go; default: a fresh temporary directory,
        removed again by :meth:`stop`.
    :param kafka: start the broker. :param redis: start Redis.
    :param timeout: seconds each server may take to answer.

    The servers also stop when the interpreter exits normally (``atexit``); a SIGKILL of
    this process leaves them running (they have their own session), like any daemon.
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        kafka: bool = True,
        redis: bool = True,
        timeout: float = 30.0,
    ) -> None:
        if not (kafka or redis):
            raise ValueError("LocalStack: nothing to start (kafka=False and redis=False)")
        self._kinds: tuple[ServiceKind, ...] = tuple(
            kind for kind, wanted in ((KAFKA, kafka), (REDIS, redis)) if wanted
        )
        self._state_dir = state_dir
        self._owns_dir = state_dir is None
        self._timeout = timeout
        self._services: dict[str, RunningService] = {}
        self.startup_seconds: float | None = None

    @property
    def state_dir(self) -> Path:
        if self._state_dir is None:
            raise StackError("LocalStack is not started")
        return self._state_dir

    @property
    def bootstrap(self) -> str:
        """The broker's ``host:port`` (for ``bootstrap.servers``)."""
        return self._service(KAFKA).address

    @property
    def redis_url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return self._service(REDIS).address

    @property
    def services(self) -> tuple[RunningService, ...]:
        return tuple(self._services.values())

    def _service(self, kind: ServiceKind) -> RunningService:
        try:
            return self._services[kind.name]
        except KeyError:
            wanted = kind in self._kinds
            why = "is not started" if wanted else f"was created with {kind.name}=False"
            raise StackError(f"LocalStack {why}: no {kind.name} address") from None

    def start(self) -> Self:
        """Start the servers and wait until each answers; on failure stop what started."""
        if self._services:
            raise StackError("LocalStack is already started")
        if self._state_dir is None:
            self._state_dir = Path(tempfile.mkdtemp(prefix="driftradar-stack-"))
        began = time.perf_counter()
        try:
            for kind in self._kinds:
                self._services[kind.name] = start_service(
                    kind, self._state_dir, timeout=self._timeout
                )
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - began
        atexit.register(self.stop)
        return self

    # -- fault drills: what production does to a broker or a Redis ------------------------

    def pause(self, name: str) -> None:
        """Freeze service ``name`` (``"kafka"``/``"redis"``) with SIGSTOP: its connections
        stay open but nothing answers, like a stalled or overloaded server."""
        os.kill(self._named(name).ref.pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        os.kill(self._named(name).ref.pid, signal.SIGCONT)

    def kill(self, name: str) -> None:
        """SIGKILL service ``name``: it dies without shutting down (a crashed server)."""
        service = self._named(name)
        os.kill(service.ref.pid, signal.SIGKILL)
        if service.popen is not None:
            service.popen.wait(timeout=10)

    def restart(self, name: str) -> RunningService:
        """Start service ``name`` again on its port and data directory (after :meth:`kill`):
        a Redis reloads its append-only file; the in-memory broker starts empty."""
        old = self._named(name)
        old.stop()
        service = start_service(old.kind, self.state_dir, port=old.port, timeout=self._timeout)
        self._services[name] = service
        return service

    def _named(self, name: str) -> RunningService:
        try:
            return self._services[name]
        except KeyError:
            raise StackError(f"LocalStack has no running service {name!r}") from None

    def stop(self) -> None:
        """Stop every server (SIGTERM, then SIGKILL) and remove a temporary state dir."""
        atexit.unregister(self.stop)
        for name in reversed(list(self._services)):
            self._services.pop(name).stop()
        if self._owns_dir and self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
