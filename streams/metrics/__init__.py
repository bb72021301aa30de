"""The monitor's Prometheus metrics, and the server of ``/metrics``, ``/healthz``, ``/readyz``.

The runner owns one :class:`MonitorMetrics` and one :class:`MetricsServer`; see
``docs/observability.md`` for every metric and what it means.
"""

from streams.metrics.health import ReadinessCheck, Verdict, liveness, readiness
from streams.metrics.labels import OTHER, REASON_KINDS, LabelCap, reason_kind
from streams.metrics.monitor import MonitorMetrics
from streams.metrics.server import (
    DEFAULT_PORT,
    PORT_ENV,
    MetricsServer,
    add_arguments,
    resolve_port,
)
from streams.metrics.views import (
    BatchObservation,
    DetectorView,
    EngineView,
    ModelView,
    PerformanceView,
)

__all__ = (
    "DEFAULT_PORT",
    "OTHER",
    "PORT_ENV",
    "REASON_KINDS",
    "BatchObservation",
    "DetectorView",
    "EngineView",
    "LabelCap",
    "MetricsServer",
    "ModelView",
    "MonitorMetrics",
    "PerformanceView",
    "ReadinessCheck",
    "Verdict",
    "add_arguments",
    "liveness",
    "readiness",
    "reason_kind",
    "resolve_port",
)
