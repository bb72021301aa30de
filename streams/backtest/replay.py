"""Replay recorded events through the monitor engine, keeping alerts and detector traces.

The engine is the one ``driftradar run`` uses (same configuration, same batching rules:
its decisions do not depend on batch boundaries), without Kafka or Redis. After every
``trace_every`` records each detector's statistic and threshold are sampled for the
report's charts; when a signal raises a drift alert, its window tests' reference and
current distributions are kept for the report.

>>> from streams.core.events import GroundTruth, Prediction
>>> from streams.engine import InputRecord, MonitorConfig
>>> records = []
>>> for i in range(3000):
...     p = Prediction(f"e{i}", "m", {"x": float(i % 10)}, 0.3, timestamp=1e9 + i)
...     g = GroundTruth(f"e{i}", "m", 0, timestamp=1e9 + i)
...     records += [InputRecord(p, 0, 2 * i, 1e9 + i), InputRecord(g, 0, 2 * i + 1, 1e9 + i)]
>>> result = replay(records, MonitorConfig())
>>> result.predictions["m"], len(result.alerts), len(result.traces["m"]) > 1
(3000, 0, True)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from streams.core.events import Alert, Prediction
from streams.engine import Engine, InputRecord, MonitorConfig

__all__ = ["DISTRIBUTION_DETECTORS", "Backtest", "replay"]

#: Detectors whose result holds reference vs current distributions, in order of preference.
DISTRIBUTION_DETECTORS: Final = ("psi", "ks", "jensen_shannon", "chi_square", "prediction_band")


@dataclass
class Backtest:
    """What a replay produced."""

    config: MonitorConfig
    alerts: list[Alert] = field(default_factory=list)
    retrain_requests: int = 0
    #: model -> [trace]: see :meth:`streams.engine.Engine.traces`
    traces: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: model -> event time of each of its predictions, in order
    prediction_times: dict[str, list[float]] = field(default_factory=dict)
    #: (model, signal) -> {detector: result} of the window tests after the first drift alert
    distributions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def predictions(self) -> dict[str, int]:
        return {model: len(times) for model, times in self.prediction_times.items()}


def replay(
    records: Sequence[InputRecord],
    config: MonitorConfig,
    *,
    batch_size: int = 5000,
    trace_every: int = 1000,
) -> Backtest:
    """Run ``records`` (in order) through a fresh engine configured by ``config``."""
    clock = [0.0]
    engine = Engine(config, clock=lambda: clock[0])
    result = Backtest(config)
    started = time.perf_counter()
    since_trace = 0
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        clock[0] = max((r.timestamp for r in batch), default=clock[0])
        for record in batch:
            event = record.event
            if isinstance(event, Prediction):
                times = result.prediction_times.setdefault(event.model_id, [])
                ts = event.timestamp
                times.append(record.timestamp if ts is None else _seconds(ts))
        out = engine.process(batch)
        result.alerts.extend(out.alerts)
        result.retrain_requests += len(out.retrain_requests)
        for alert in out.alerts:
            key = (alert.model_id, alert.signal)
            drift = alert.type in ("data_drift", "prediction_drift")
            if drift and key not in result.distributions:
                results = engine.signal_results(alert.model_id, alert.signal)
                shown: dict[str, Any] = {
                    k: results[k] for k in DISTRIBUTION_DETECTORS if k in results
                }
                if shown:
                    result.distributions[key] = shown
        since_trace += len(batch)
        if since_trace >= trace_every or start + batch_size >= len(records):
            since_trace = 0
            for model, trace in engine.traces().items():
                result.traces.setdefault(model, []).append(trace)
    result.seconds = time.perf_counter() - started
    return result


def _seconds(value: Any) -> float:
    from streams.core.events import epoch_seconds

    return epoch_seconds(value)
