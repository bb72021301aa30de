"""The two services of the local stack: how to start each one and how to ask if it answers.

``start_service`` picks a free loopback port, starts the binary with a log file in the state
directory, and returns once the process listens on that port *and* answers its protocol
(Kafka: a metadata request; Redis: PING). A lost race for the port is retried on another.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streams.core.kafka import admin_config
from streams.stack.binaries import find_redis_server, find_tansu
from streams.stack.errors import StackStartupError
from streams.stack.process import ProcessRef, free_port, listens_on, spawn, stop_process, tail

__all__ = [
    "HOST",
    "KAFKA",
    "REDIS",
    "RunningService",
    "ServiceKind",
    "kafka_answers",
    "redis_answers",
    "start_service",
]

HOST = "127.0.0.1"

#: Environment variables tansu reads as settings; dropped so a user's shell cannot leak in.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_PORT_TAKEN = ("Address in use", "Address already in use", "AddrInUse")
_PORT_ATTEMPTS = 3


def kafka_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """True if a Kafka API broker at ``bootstrap`` answers a metadata request."""
    admin = AdminClient(admin_config(bootstrap))
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


def redis_answers(url: str, timeout: float = 2.0) -> bool:
    """True if the Redis at ``url`` answers PING."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _tansu_argv(binary: str, port: int, data_dir: Path) -> list[str]:
    url = f"tcp://{HOST}:{port}"
    return [
        binary,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def _redis_argv(binary: str, port: int, data_dir: Path) -> list[str]:
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        HOST,
        "--dir",
        str(data_dir),
        # Checkpoints survive a Redis restart: append-only file, fsync once a second (what
        # docker-compose's Redis runs too); no RDB snapshots.
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--daemonize",
        "no",
        "--logfile",
        "",
    ]


def _tansu_env(environ: Mapping[str, str]) -> dict[str, str]:
    env = {key: value for key, value in environ.items() if key not in _TANSU_ENV}
    env["NO_COLOR"] = "1"  # plain-text log file
    return env


@dataclass(frozen=True)
class ServiceKind:
    """One server: its binary, command line, address format and readiness probe."""

    name: str
    find_binary: Callable[[Mapping[str, str] | None], str]
    argv: Callable[[str, int, Path], list[str]]
    address: Callable[[int], str]
    answers: Callable[[str], bool]
    env: Callable[[Mapping[str, str]], dict[str, str]] = dict


KAFKA = ServiceKind(
    name="kafka",
    find_binary=find_tansu,
    argv=_tansu_argv,
    address=lambda port: f"{HOST}:{port}",
    answers=kafka_answers,
    env=_tansu_env,
)

REDIS = ServiceKind(
    name="redis",
    find_binary=find_redis_server,
    argv=_redis_argv,
    address=lambda port: f"redis://{HOST}:{port}/0",
    answers=redis_answers,
)


@dataclass
class RunningService:
    """A started server: its process, port, client address and log file."""

    kind: ServiceKind
    ref: ProcessRef
    port: int
    log_path: Path
    binary: str
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def address(self) -> str:
        """``host:port`` for Kafka, ``redis://host:port/0`` for Redis."""
        return self.kind.address(self.port)

    def is_healthy(self) -> bool:
        """Alive, listening on its port, and answering its protocol."""
        return listens_on(self.ref, self.port, HOST) and self.kind.answers(self.address)

    def stop(self, timeout: float = 5.0) -> bool:
        """SIGTERM, wait, SIGKILL; False if it had already exited."""
        return stop_process(self.ref, timeout, self.popen)

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.ref.pid,
            "create_time": self.ref.create_time,
            "start_ticks": self.ref.start_ticks,
            "boot_id": self.ref.boot_id,
            "port": self.port,
            "address": self.address,
            "log": str(self.log_path),
            "binary": self.binary,
        }

    @classmethod
    def from_json(cls, kind: ServiceKind, data: Mapping[str, Any]) -> RunningService:
        """Rebuild from :meth:`to_json` output (raises KeyError/TypeError/ValueError if bad)."""
        return cls(
            kind=kind,
            ref=ProcessRef(
                int(data["pid"]),
                float(data["create_time"]),
                None if data.get("start_ticks") is None else int(data["start_ticks"]),
                None if data.get("boot_id") is None else str(data["boot_id"]),
            ),
            port=int(data["port"]),
            log_path=Path(str(data["log"])),
            binary=str(data["binary"]),
        )


def start_service(
    kind: ServiceKind,
    state_dir: Path,
    *,
    port: int = 0,
    timeout: float = 30.0,
    environ: Mapping[str, str] | None = None,
) -> RunningService:
    """Start ``kind`` on ``port`` (0: a free one) and return once it answers.

    The log goes to ``state_dir/<name>.log`` (truncated), data to ``state_dir/<name>-data``.
    Raises :class:`StackStartupError` with the log tail if the server exits or stays silent.
    """
    env = dict(os.environ if environ is None else environ)
    binary = kind.find_binary(env)
    data_dir = state_dir / f"{kind.name}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / f"{kind.name}.log"
    attempts = 1 if port else _PORT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        chosen = port or free_port(HOST)
        log_path.write_bytes(b"")
        popen = spawn(kind.argv(binary, chosen, data_dir), log_path, kind.env(env))
        service = RunningService(kind, ProcessRef.of(popen.pid), chosen, log_path, binary, popen)
        failure = _wait_ready(service, timeout)
        if failure is None:
            return service
        service.stop()
        log = tail(log_path)
        if attempt < attempts and any(marker in log for marker in _PORT_TAKEN):
            continue
        raise StackStartupError(
            f"{kind.name} ({binary}) on port {chosen} {failure}; last lines of {log_path}:\n{log}"
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _wait_ready(service: RunningService, timeout: float) -> str | None:
    """None once ``service`` listens and answers; else why it failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.popen is not None and service.popen.poll() is not None:
            return f"exited with code {service.popen.returncode} before answering"
        if listens_on(service.ref, service.port, HOST) and service.kind.answers(service.address):
            return None
        time.sleep(0.005)
    return f"did not answer within {timeout:g} s"
