"""Liveness and readiness verdicts, kept apart from HTTP so they are tested as plain functions.

* **healthz** (liveness): the process answers and the consumer loop is not stuck, i.e. its
  last heartbeat is recent. Before the first heartbeat a start-up grace period applies.
* **readyz** (readiness): every check passes — by default the partitions check, plus the
  runner's callbacks for the broker and Redis. Callbacks must be cheap and non-blocking
  (report cached state, e.g. "last Redis round trip succeeded"): they also run at scrape time.

>>> from prometheus_client import CollectorRegistry
>>> from streams.metrics.monitor import MonitorMetrics
>>> metrics = MonitorMetrics(CollectorRegistry(), process_collectors=False)
>>> liveness(metrics, now=100.0, started_at=90.0, max_age=30.0, startup_grace=60.0)
Verdict(ok=True, reasons={'loop': 'starting: no heartbeat yet'})
>>> metrics.heartbeat(at=100.0)
>>> liveness(metrics, now=200.0, started_at=90.0, max_age=30.0, startup_grace=60.0)
Verdict(ok=False, reasons={'loop': 'last heartbeat 100.0 s ago (limit 30.0 s)'})
>>> readiness({"redis": lambda: True, "kafka": lambda: (False, "no broker answered")})
Verdict(ok=False, reasons={'kafka': 'no broker answered', 'redis': 'ok'})
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "Heartbeat",
    "ReadinessCheck",
    "ReadinessCollector",
    "Verdict",
    "liveness",
    "readiness",
]

#: A readiness callback: True/False, or (ok, reason) to say why.
ReadinessCheck = Callable[[], bool | tuple[bool, str]]


class Heartbeat(Protocol):
    """What liveness reads: the Unix time of the loop's last heartbeat (None before the
    first). :class:`~streams.metrics.monitor.MonitorMetrics` and the retrain worker's
    metrics have it."""

    @property
    def last_heartbeat(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """A health answer: ``ok`` and, per check, ``"ok"`` or why not."""

    ok: bool
    reasons: dict[str, str] = field(default_factory=dict)


def liveness(
    metrics: Heartbeat, *, now: float, started_at: float, max_age: float, startup_grace: float
) -> Verdict:
    """Alive if the loop's heartbeat is at most ``max_age`` s old (grace before the first)."""
    beat = metrics.last_heartbeat
    if beat is None:
        waited = now - started_at
        if waited <= startup_grace:
            return Verdict(True, {"loop": "starting: no heartbeat yet"})
        return Verdict(False, {"loop": f"no heartbeat {waited:.1f} s after start"})
    age = now - beat
    if age > max_age:
        return Verdict(False, {"loop": f"last heartbeat {age:.1f} s ago (limit {max_age} s)"})
    return Verdict(True, {"loop": "ok"})


def _run_check(check: ReadinessCheck) -> tuple[bool, str]:
    try:
        result = check()
    except Exception as exc:  # a failing callback means "not ready", never a crash
        return False, f"check raised {type(exc).__name__}: {exc}"
    if isinstance(result, tuple):
        ok, why = result
        return bool(ok), "ok" if ok else why
    return bool(result), "ok" if result else "not ready"


def readiness(checks: Mapping[str, ReadinessCheck]) -> Verdict:
    """Ready when every check passes; ``reasons`` names each check's answer."""
    reasons: dict[str, str] = {}
    ok = True
    for name in sorted(checks):
        passed, why = _run_check(checks[name])
        ok = ok and passed
        reasons[name] = why
    return Verdict(ok, reasons)


class ReadinessCollector(Collector):
    """``driftradar_ready{check}``: each readiness check, evaluated at scrape time (1/0)."""

    def __init__(self, checks: Mapping[str, ReadinessCheck]) -> None:
        self._checks = dict(checks)

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "driftradar_ready", "Readiness check passes (1) or not (0).", labels=["check"]
        )

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "driftradar_ready", "Readiness check passes (1) or not (0).", labels=["check"]
        )
        for name in sorted(self._checks):
            family.add_metric([name], 1.0 if _run_check(self._checks[name])[0] else 0.0)
        yield family
