"""The background stack behind ``driftradar stack up|down|status``, kept in a state directory.

The state directory (default ``./.driftradar``, or ``$DRIFTRADAR_STATE_DIR``) holds
``stack.json`` (pids, start times, ports: the source of truth), ``kafka.pid`` and
``redis.pid`` (plain pids, for humans), and ``kafka.log`` / ``redis.log``. Processes are
recognised by pid *and* start time, so stale files after a crash never hit another process.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from streams.core.kafka import DEFAULT_TOPICS
from streams.core.topics import DEFAULT_PARTITIONS, ensure_topics
from streams.stack.errors import StackStateError
from streams.stack.services import KAFKA, REDIS, RunningService, ServiceKind, start_service

__all__ = [
    "STATE_DIR_ENV",
    "STATE_FILE",
    "StackState",
    "UpResult",
    "clear_state",
    "load_state",
    "render_exports",
    "resolve_state_dir",
    "save_state",
    "stack_down",
    "stack_status",
    "stack_up",
]

STATE_DIR_ENV: Final = "DRIFTRADAR_STATE_DIR"
STATE_FILE: Final = "stack.json"
_FORMAT_VERSION: Final = 1
_KINDS: Final[tuple[ServiceKind, ...]] = (KAFKA, REDIS)

Say = Callable[[str], None]


def _silent(message: str) -> None:
    """Discard a progress message."""


def resolve_state_dir(
    explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """``explicit``, else ``$DRIFTRADAR_STATE_DIR``, else ``./.driftradar`` (made absolute).

    >>> resolve_state_dir("/tmp/x", {})
    PosixPath('/tmp/x')
    >>> resolve_state_dir(None, {"DRIFTRADAR_STATE_DIR": "/srv/dr"})
    PosixPath('/srv/dr')
    >>> resolve_state_dir(None, {}) == Path.cwd() / ".driftradar"
    True
    """
    env = os.environ if environ is None else environ
    chosen = explicit or env.get(STATE_DIR_ENV) or ".driftradar"
    return Path(chosen).absolute()


@dataclass
class StackState:
    """What ``stack up`` started: one record per service, and the topics' partition count."""

    services: dict[str, RunningService]
    partitions: int
    started_at: float = field(default_factory=time.time)

    def is_complete(self) -> bool:
        return all(kind.name in self.services for kind in _KINDS)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _FORMAT_VERSION,
            "started_at": self.started_at,
            "partitions": self.partitions,
            "services": {name: svc.to_json() for name, svc in self.services.items()},
        }


def load_state(state_dir: Path) -> StackState | None:
    """The recorded stack, None if there is none; :class:`StackStateError` if unreadable."""
    path = state_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StackStateError(
            f"cannot read {path}: {exc}; stop the processes named in "
            f"{state_dir}/*.pid by hand, then delete {path}"
        ) from exc
    try:
        if raw["version"] != _FORMAT_VERSION:
            raise ValueError(f"version {raw['version']!r}, expected {_FORMAT_VERSION}")
        kinds = {kind.name: kind for kind in _KINDS}
        services = {
            name: RunningService.from_json(kinds[name], data)
            for name, data in raw["services"].items()
        }
        return StackState(services, int(raw["partitions"]), float(raw["started_at"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StackStateError(f"{path} is not a driftradar stack state file: {exc!r}") from exc


def save_state(state_dir: Path, state: StackState) -> None:
    """Write ``stack.json`` atomically, and one ``<service>.pid`` file per service."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    for name, service in state.services.items():
        (state_dir / f"{name}.pid").write_text(f"{service.ref.pid}\n", encoding="ascii")


def clear_state(state_dir: Path) -> None:
    """Remove the state file, pid files and data dirs; keep the logs for inspection."""
    for kind in _KINDS:
        (state_dir / f"{kind.name}.pid").unlink(missing_ok=True)
        shutil.rmtree(state_dir / f"{kind.name}-data", ignore_errors=True)
    (state_dir / STATE_FILE).unlink(missing_ok=True)


@contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Serialise ``up``/``down`` on one state directory (two shells, two ``make`` targets)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def render_exports(state: StackState) -> str:
    """The shell lines that point clients at the stack (for ``eval "$(driftradar stack up)"``)."""
    return (
        f"export KAFKA_BOOTSTRAP_SERVERS={state.services[KAFKA.name].address}\n"
        f"export REDIS_URL={state.services[REDIS.name].address}\n"
    )


@dataclass(frozen=True)
class UpResult:
    state: StackState
    reused: bool
    seconds: float


def stack_up(
    state_dir: Path,
    *,
    partitions: int = DEFAULT_PARTITIONS,
    topics: tuple[str, ...] = DEFAULT_TOPICS,
    ports: Mapping[str, int] | None = None,
    timeout: float = 30.0,
    say: Say = _silent,
) -> UpResult:
    """Reuse the recorded stack if every service answers, else start a fresh one; create topics.

    ``ports`` maps ``"kafka"``/``"redis"`` to a fixed port (default: free ports).
    """
    began = time.perf_counter()
    with _locked(state_dir):
        state = load_state(state_dir)
        if state is not None and state.is_complete() and _all_healthy(state):
            ensure_topics(state.services[KAFKA.name].address, topics, partitions, timeout=timeout)
            return UpResult(state, True, time.perf_counter() - began)
        if state is not None:
            say("found a stale or partial stack: stopping what is left of it and starting anew")
            _stop_all(state, say)
            clear_state(state_dir)
        state = StackState({}, partitions)
        try:
            for kind in _KINDS:
                port = (ports or {}).get(kind.name, 0)
                service = start_service(kind, state_dir, port=port, timeout=timeout)
                state.services[kind.name] = service
                save_state(state_dir, state)  # at once: a killed `up` leaves it findable
                say(f"{kind.name}: pid {service.ref.pid}, {service.address}")
            ensure_topics(state.services[KAFKA.name].address, topics, partitions, timeout=timeout)
        except BaseException:
            _stop_all(state, say)
            clear_state(state_dir)
            raise
        return UpResult(state, False, time.perf_counter() - began)


def stack_down(state_dir: Path, *, say: Say = _silent) -> dict[str, bool]:
    """Stop the recorded services and clear the state; ``{name: was_running}``.

    Safe after a crash: services that are already gone are only forgotten.
    """
    if not state_dir.is_dir():
        return {}
    with _locked(state_dir):
        state = load_state(state_dir)
        if state is None:
            clear_state(state_dir)
            return {}
        stopped = _stop_all(state, say)
        clear_state(state_dir)
        return stopped


def stack_status(state_dir: Path) -> dict[str, dict[str, Any]]:
    """Per recorded service: pid, port, address, log, and whether it is alive and answering."""
    state = load_state(state_dir)
    if state is None:
        return {}
    report: dict[str, dict[str, Any]] = {}
    for name, service in state.services.items():
        alive = service.ref.is_alive()
        report[name] = {
            "pid": service.ref.pid,
            "address": service.address,
            "log": str(service.log_path),
            "alive": alive,
            "answering": alive and service.is_healthy(),
        }
    return report


def _all_healthy(state: StackState) -> bool:
    return all(service.is_healthy() for service in state.services.values())


def _stop_all(state: StackState, say: Say) -> dict[str, bool]:
    """Stop services in reverse start order; ``{name: was_running}``."""
    stopped: dict[str, bool] = {}
    for name in reversed(list(state.services)):
        service = state.services[name]
        stopped[name] = service.stop()
        say(f"{name}: {'stopped' if stopped[name] else 'was not running'} (pid {service.ref.pid})")
    return stopped
