"""``/metrics``, ``/healthz`` and ``/readyz``, served from a thread through WSGI.

``/metrics`` is the Prometheus client's exposition (content negotiation, gzip when the
scraper asks for it) with the per-model families written from cached text
(:mod:`streams.metrics.exposition`); :func:`health_app` adds the two health paths in
front of it, and :class:`MetricsServer` runs the result on the client's
``ThreadingWSGIServer`` in a daemon thread. The port comes from ``--metrics-port``, else
``DRIFTRADAR_METRICS_PORT``, else 9108 (:func:`resolve_port`); port 0 picks a free one
(tests). Health answers are JSON with a reason per check, 200 when fine and 503 when not,
so probes and humans read the same thing.

>>> from prometheus_client import CollectorRegistry
>>> import urllib.request
>>> from streams.metrics.monitor import MonitorMetrics
>>> metrics = MonitorMetrics(CollectorRegistry(), process_collectors=False)
>>> with MetricsServer(metrics, host="127.0.0.1", port=0) as server:
...     metrics.heartbeat()
...     body = urllib.request.urlopen(server.url + "/healthz").read()
>>> body
b'{"ok": true, "reasons": {"loop": "ok"}}'
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, Protocol, Self
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import CollectorRegistry

from streams.core.errors import ConfigError
from streams.core.settings import DEFAULT_METRICS_PORT
from streams.metrics.exposition import metrics_app as make_metrics_app
from streams.metrics.health import (
    ReadinessCheck,
    ReadinessCollector,
    Verdict,
    liveness,
    readiness,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "HOST_ENV",
    "PORT_ENV",
    "MetricsServer",
    "ServedMetrics",
    "add_arguments",
    "health_app",
    "resolve_port",
]

#: A WSGI application (PEP 3333).
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

DEFAULT_PORT: Final = DEFAULT_METRICS_PORT
DEFAULT_HOST: Final = "0.0.0.0"
PORT_ENV: Final = "DRIFTRADAR_METRICS_PORT"
HOST_ENV: Final = "DRIFTRADAR_METRICS_HOST"


def resolve_port(cli_value: int | None, environ: Mapping[str, str] = os.environ) -> int:
    """The metrics port: the CLI value, else ``$DRIFTRADAR_METRICS_PORT``, else 9108.

    >>> resolve_port(None, {}), resolve_port(None, {"DRIFTRADAR_METRICS_PORT": "9200"})
    (9108, 9200)
    >>> resolve_port(None, {"DRIFTRADAR_METRICS_PORT": "http"})
    Traceback (most recent call last):
    ...
    streams.core.errors.ConfigError: DRIFTRADAR_METRICS_PORT: 'http' is not a port number (0-65535)
    """
    if cli_value is not None:
        source, raw = "--metrics-port", str(cli_value)
    elif environ.get(PORT_ENV):
        source, raw = PORT_ENV, environ[PORT_ENV]
    else:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(source, f"{raw!r} is not a port number (0-65535)")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--metrics-port`` and ``--metrics-host`` to a command (``driftradar run``)."""
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help=f"port of /metrics, /healthz, /readyz (env {PORT_ENV}, default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--metrics-host",
        default=os.environ.get(HOST_ENV, DEFAULT_HOST),
        help=f"address to bind (env {HOST_ENV}, default {DEFAULT_HOST})",
    )


class ServedMetrics(Protocol):
    """What :class:`MetricsServer` serves and checks: a registry, the loop's heartbeat, and
    the partitions assigned (:class:`~streams.metrics.monitor.MonitorMetrics`, or the
    retrain worker's :class:`~producers.retrain.metrics.RetrainMetrics`); a ``snapshots``
    attribute (:class:`~streams.metrics.snapshots.SnapshotGauges`) is served from its
    cached text."""

    @property
    def registry(self) -> CollectorRegistry: ...

    @property
    def last_heartbeat(self) -> float | None: ...

    @property
    def assigned_partitions(self) -> int: ...


class MetricsServer:
    """Serve ``metrics.registry`` and the health endpoints from a daemon thread.

    ``readiness`` adds checks (e.g. ``{"kafka": …, "redis": …}``) to the built-in
    ``partitions`` check (at least one partition assigned). ``heartbeat_timeout`` is the
    oldest heartbeat still counted as alive; ``startup_grace`` how long to wait for the first.
    """

    def __init__(
        self,
        metrics: ServedMetrics,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        readiness: Mapping[str, ReadinessCheck] | None = None,
        heartbeat_timeout: float = 30.0,
        startup_grace: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self.heartbeat_timeout = heartbeat_timeout
        self.startup_grace = startup_grace
        self._clock = clock
        self._started_at = clock()
        self.checks: dict[str, ReadinessCheck] = {
            "partitions": lambda: (
                metrics.assigned_partitions > 0,
                "no partition assigned to this replica",
            ),
            **(readiness or {}),
        }
        self._collector = ReadinessCollector(self.checks)
        self._httpd: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server (``http://host:port``)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def health(self) -> Verdict:
        return liveness(
            self.metrics,
            now=self._clock(),
            started_at=self._started_at,
            max_age=self.heartbeat_timeout,
            startup_grace=self.startup_grace,
        )

    def ready(self) -> Verdict:
        return readiness(self.checks)

    def start(self) -> int:
        """Bind and serve in a daemon thread; returns the bound port."""
        if self._httpd is not None:
            raise RuntimeError("metrics server already started")
        self.metrics.registry.register(self._collector)
        app = health_app(self.metrics, self.health, self.ready)
        self._httpd = make_server(
            self.host, self.port, app, ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.port = int(self._httpd.server_address[1])
        self._started_at = self._clock()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="driftradar-metrics", daemon=True
        )
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.metrics.registry.unregister(self._collector)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def health_app(
    metrics: ServedMetrics, health: Callable[[], Verdict], ready: Callable[[], Verdict]
) -> WsgiApp:
    """A WSGI app: ``/healthz`` and ``/readyz`` as JSON verdicts, ``/metrics`` by
    :func:`~streams.metrics.exposition.metrics_app`; anything else is 404 with the paths
    to try."""
    metrics_app = make_metrics_app(metrics.registry, getattr(metrics, "snapshots", None))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path in ("/healthz", "/readyz"):
            verdict = health() if path == "/healthz" else ready()
            body = json.dumps({"ok": verdict.ok, "reasons": verdict.reasons}).encode()
            status = HTTPStatus.OK if verdict.ok else HTTPStatus.SERVICE_UNAVAILABLE
            return _respond(start_response, status, "application/json", body)
        body = b"try /metrics, /healthz, /readyz\n"
        return _respond(start_response, HTTPStatus.NOT_FOUND, "text/plain", body)

    return app


def _respond(
    start_response: Callable[..., Any], status: HTTPStatus, content_type: str, body: bytes
) -> list[bytes]:
    start_response(
        f"{status.value} {status.phrase}",
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    return [body]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood stderr: stay quiet."""
