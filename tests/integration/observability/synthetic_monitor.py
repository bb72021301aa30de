"""A stand-in for ``driftradar run``: MonitorMetrics fed with realistic, changing values.

``python tests/integration/observability/synthetic_monitor.py PORT`` serves ``/metrics`` on
127.0.0.1:PORT (0 = a free port, printed on stdout) and, every 0.1 s, plays one batch of a
churn model whose ``monthly_charges`` drifts after 3 s (PSI and ADWIN react, an alert and a
retrain request follow) and of a stable fraud model; some messages are dead letters.
It uses the same calls the runner makes, so Prometheus sees the same series.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from streams.metrics import BatchObservation, EngineView, MetricsServer, ModelView, MonitorMetrics

FEATURES = ("tenure_months", "monthly_charges", "contract", "plan")
DRIFT_AFTER_STEPS = 30
STEP_SECONDS = 0.1


def _model_view(step: int, model: str, rng: np.random.Generator) -> ModelView:
    drifting = model == "churn" and step >= DRIFT_AFTER_STEPS
    signals: dict[str, dict[str, dict[str, object]]] = {}
    for feature in FEATURES:
        shifted = drifting and feature == "monthly_charges"
        psi = float(rng.uniform(0.25, 0.4) if shifted else rng.uniform(0.0, 0.05))
        mean = 81.7 if shifted else 64.1
        signals[f"feature:{feature}"] = {
            "psi": {
                "state": "drift" if psi > 0.2 else "none",
                "updates": step * 50,
                "statistic": psi,
                "threshold": 0.2,
                "window_size": 500,
            },
            "ks": {
                "state": "drift" if shifted else "none",
                "updates": step * 50,
                "statistic": 0.3 if shifted else float(rng.uniform(0.01, 0.05)),
                "threshold": 0.08,
                "p_value": 1e-6 if shifted else 0.6,
            },
            "adwin": {
                "state": "drift" if shifted else "none",
                "updates": step * 50,
                "threshold": 0.002,
                "window_size": 120 if shifted else 40 + step,
                "details": {
                    "width": 120 if shifted else 40 + step,
                    "mean": mean + float(rng.normal(0, 0.5)),
                    "variance": 4.0,
                },
            },
        }
    error = 0.31 if drifting else 0.18
    signals["error"] = {
        "page_hinkley": {
            "state": "warning" if drifting else "none",
            "updates": step * 45,
            "statistic": 20.0 if drifting else float(rng.uniform(0, 3)),
            "threshold": 50.0,
            "details": {"n": step * 45, "mean": error},
        },
    }
    signals["prediction"] = {
        "prediction_band": {
            "state": "none",
            "updates": step * 50,
            "statistic": 0.8,
            "threshold": 3.0,
            "details": {"band_low": 0.2, "band_high": 0.45},
        },
    }
    return {
        "model_version": "v3" if model == "churn" else "v1",
        "signals": signals,  # type: ignore[typeddict-item]
        "performance": {
            "auc": {"value": 0.68 if drifting else 0.81, "threshold": 0.72},
            "log_loss": {"value": 0.55, "threshold": 0.7, "higher_is_better": False},
        },
        "prediction_mean": 0.33 + float(rng.normal(0, 0.01)),
        "prediction_band": (0.2, 0.45),
        "error_rate": error,
        "label_coverage": 0.9,
        "label_lag_seconds": 180.0 + float(rng.normal(0, 5)),
        "join_buffer_entries": 200 + step,
        "join_buffer_capacity": 100_000,
    }


def play_step(metrics: MonitorMetrics, step: int, rng: np.random.Generator) -> None:
    """One batch: what the runner would report after a poll, and the engine view after it."""
    now = time.time()
    batch = BatchObservation(duration_seconds=float(rng.uniform(0.002, 0.02)), processed_at=now)
    for model, rate in (("churn", 40), ("fraud", 15)):
        version = "v3" if model == "churn" else "v1"
        for delay in rng.exponential(0.05, size=rate):
            batch.add_event(
                "predictions",
                model,
                event_time=now - float(delay),
                prediction=True,
                model_version=version,
            )
        for delay in rng.exponential(180.0, size=rate // 2):
            batch.add_event("ground-truth", model, event_time=now - float(delay))
        batch.add_join(model, "joined", rate // 2)
        batch.add_join(model, "expired", 1)
    if step % 10 == 0:
        batch.add_event("predictions", "", outcome="dead_letter")
        metrics.record_dead_letter("predictions", "$.features: required field is missing")
    metrics.observe_batch(batch)
    metrics.set_lag(
        {("predictions", p): int(rng.integers(0, 50)) for p in range(3)}
        | {("ground-truth", p): int(rng.integers(0, 20)) for p in range(3)}
    )
    view: EngineView = {"models": {m: _model_view(step, m, rng) for m in ("churn", "fraud")}}
    metrics.update_from_engine(view)
    if step % 5 == 0:
        metrics.observe_checkpoint(float(rng.uniform(0.001, 0.01)))
    if step == DRIFT_AFTER_STEPS:
        metrics.record_alert({"model_id": "churn", "type": "data_drift", "severity": "warning"})
        metrics.record_retrain({"model_id": "churn"})
    metrics.heartbeat()


def main(argv: list[str]) -> int:
    metrics = MonitorMetrics(max_features=20)
    server = MetricsServer(
        metrics,
        host="127.0.0.1",
        port=int(argv[0]) if argv else 0,
        readiness={"kafka": lambda: True, "redis": lambda: True},
    )
    port = server.start()
    metrics.set_assignment(
        [("predictions", p) for p in range(3)] + [("ground-truth", p) for p in range(3)]
    )
    print(port, flush=True)
    rng = np.random.default_rng(7)
    step = 0
    try:
        while True:
            play_step(metrics, step, rng)
            step += 1
            time.sleep(STEP_SECONDS)
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
