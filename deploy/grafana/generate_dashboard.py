"""Write ``dashboards/driftradar.json``, the Grafana dashboard of the driftradar monitor.

The dashboard is generated so that its PromQL lives in one readable list; the test suite
checks that the committed JSON is what this script produces, that every expression is valid
in a real Prometheus and that every panel returns data from a monitor fed by a simulation.

    python deploy/grafana/generate_dashboard.py    # rewrites dashboards/driftradar.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

DATASOURCE: Final = {"type": "prometheus", "uid": "prometheus"}
OUTPUT: Final = Path(__file__).resolve().parent / "dashboards" / "driftradar.json"
M: Final = 'model_id="$model"'
RATE: Final = "$__rate_interval"
LATENCY: Final = "driftradar_event_latency_seconds_bucket"
STATE_MAPPINGS: Final = [
    {
        "type": "value",
        "options": {
            "0": {"text": "ok", "color": "green", "index": 0},
            "1": {"text": "warning", "color": "yellow", "index": 1},
            "2": {"text": "drift", "color": "red", "index": 2},
        },
    }
]

Target = tuple[str, str]  # (PromQL, legend)


class Layout:
    """Places panels left to right on Grafana's 24-column grid, one row at a time."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.row_height = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": len(self.panels) + 1,
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def panel(
        self,
        title: str,
        targets: list[Target],
        *,
        kind: str = "timeseries",
        unit: str = "short",
        width: int = 8,
        height: int = 8,
        description: str = "",
        extra_defaults: dict[str, Any] | None = None,
    ) -> None:
        if self.x + width > 24:
            self._newline()
        defaults: dict[str, Any] = {"unit": unit, **(extra_defaults or {})}
        panel: dict[str, Any] = {
            "type": kind,
            "id": len(self.panels) + 1,
            "title": title,
            "description": description,
            "datasource": DATASOURCE,
            "gridPos": {"h": height, "w": width, "x": self.x, "y": self.y},
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
            "targets": [
                {
                    "refId": chr(ord("A") + i),
                    "datasource": DATASOURCE,
                    "expr": expr,
                    "legendFormat": legend,
                    "range": True,
                }
                for i, (expr, legend) in enumerate(targets)
            ],
        }
        if kind == "stat":
            panel["options"] = {
                "reduceOptions": {"calcs": ["lastNotNull"]},
                "colorMode": "background",
            }
        self.panels.append(panel)
        self.x += width
        self.row_height = max(self.row_height, height)

    def _newline(self) -> None:
        self.y += self.row_height
        self.x = 0
        self.row_height = 0


def overview(d: Layout) -> None:
    d.row("Overview: the monitor")
    d.panel(
        "Events in / s by topic",
        [(f"sum by (topic) (rate(driftradar_events_total[{RATE}]))", "{{topic}}")],
        unit="ops",
        description="Messages consumed per second, every outcome.",
    )
    d.panel(
        "Predictions / s per model",
        [(f"sum by (model_id) (rate(driftradar_predictions_total[{RATE}]))", "{{model_id}}")],
        unit="ops",
    )
    d.panel(
        "Latency: event time → processed",
        [
            (
                f"histogram_quantile(0.5, sum by (topic, le) (rate({LATENCY}[{RATE}])))",
                "p50 {{topic}}",
            ),
            (
                f"histogram_quantile(0.99, sum by (topic, le) (rate({LATENCY}[{RATE}])))",
                "p99 {{topic}}",
            ),
            (
                f"histogram_quantile(0.99, sum by (le) "
                f"(rate(driftradar_processing_seconds_bucket[{RATE}])))",
                "batch p99",
            ),
        ],
        unit="s",
        description="Per input topic (whatever the configured names): ground truth is late "
        "by nature, predictions should stay sub-second. Batch p99: poll → checkpoint.",
    )
    d.panel(
        "Consumer lag per partition",
        [("sum by (topic, partition) (driftradar_consumer_lag)", "{{topic}}[{{partition}}]")],
        unit="short",
    )
    d.panel(
        "CPU per replica",
        [(f'rate(process_cpu_seconds_total{{job="driftradar"}}[{RATE}])', "{{instance}}")],
        unit="percentunit",
    )
    d.panel(
        "Resident memory per replica",
        [('process_resident_memory_bytes{job="driftradar"}', "{{instance}}")],
        unit="bytes",
    )
    d.panel(
        "Replicas up",
        [('sum(up{job="driftradar"})', "up")],
        kind="stat",
        width=4,
        height=6,
        extra_defaults={
            "thresholds": {
                "mode": "absolute",
                "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
            }
        },
    )
    d.panel(
        "Partitions assigned",
        [("sum by (instance) (driftradar_assigned_partitions)", "{{instance}}")],
        kind="stat",
        width=4,
        height=6,
    )
    d.panel(
        "Checkpoint age",
        [
            (
                "time() - max by (instance) (driftradar_last_checkpoint_timestamp_seconds)",
                "{{instance}}",
            )
        ],
        kind="stat",
        unit="s",
        width=4,
        height=6,
    )
    d.panel(
        "Seconds since last event",
        [("time() - max by (model_id) (driftradar_last_event_timestamp_seconds)", "{{model_id}}")],
        kind="stat",
        unit="s",
        width=4,
        height=6,
        description="Downtime of a model: grows while it sends nothing.",
    )
    d.panel(
        "Checkpoint duration p99",
        [
            (
                f"histogram_quantile(0.99, sum by (le) "
                f"(rate(driftradar_checkpoint_duration_seconds_bucket[{RATE}])))",
                "p99",
            )
        ],
        unit="s",
        width=8,
        height=6,
    )


def model(d: Layout) -> None:
    d.row("Model: $model")
    d.panel(
        "Drift state per signal and detector",
        [
            (
                f"max by (signal, detector) (driftradar_detector_state{{{M}}})",
                "{{signal}} · {{detector}}",
            )
        ],
        kind="state-timeline",
        width=24,
        height=9,
        extra_defaults={"mappings": STATE_MAPPINGS, "min": 0, "max": 2},
    )
    d.panel(
        "PSI per feature",
        [
            (
                f'max by (signal) (driftradar_detector_statistic{{{M}, detector="psi", '
                f'stat="statistic", signal=~"feature:.*"}})',
                "{{signal}}",
            ),
            (
                f'max(driftradar_detector_statistic{{{M}, detector="psi", stat="threshold"}})',
                "threshold",
            ),
        ],
    )
    d.panel(
        "KS statistic per feature",
        [
            (
                f'max by (signal) (driftradar_detector_statistic{{{M}, detector="ks", '
                f'stat="statistic"}})',
                "{{signal}}",
            )
        ],
    )
    d.panel(
        "ADWIN window width and mean",
        [
            (
                f'max by (signal) (driftradar_detector_statistic{{{M}, detector="adwin", '
                f'stat="width"}})',
                "width {{signal}}",
            ),
            (
                f'max by (signal) (driftradar_detector_statistic{{{M}, detector="adwin", '
                f'stat="mean"}})',
                "mean {{signal}}",
            ),
        ],
        description="Mean on the right axis would hide width: read the legend values.",
    )
    d.panel(
        "Page-Hinkley statistic vs threshold",
        [
            (
                f"max by (signal, stat) (driftradar_detector_statistic{{{M}, "
                f'detector="page_hinkley", stat=~"statistic|threshold"}})',
                "{{stat}} {{signal}}",
            )
        ],
    )
    d.panel(
        "Prediction mean and expected band",
        [
            (f"max(driftradar_prediction_mean{{{M}}})", "mean"),
            (f"max by (bound) (driftradar_prediction_band{{{M}}})", "{{bound}}"),
        ],
    )
    d.panel(
        "Error rate", [(f"max(driftradar_error_rate{{{M}}})", "error rate")], unit="percentunit"
    )
    d.panel(
        "Performance vs threshold",
        [
            (f"max by (metric) (driftradar_model_performance{{{M}}})", "{{metric}}"),
            (
                f"max by (metric, direction) (driftradar_performance_threshold{{{M}}})",
                "{{metric}} limit ({{direction}})",
            ),
        ],
    )
    d.panel(
        "Estimated (no labels yet) vs realised performance",
        [
            (
                f"max by (metric) (driftradar_model_performance_estimate{{{M}}})",
                "{{metric}} estimated",
            ),
            (
                f"max by (metric) (driftradar_model_performance"
                f'{{{M}, metric=~"accuracy|roc_auc"}})',
                "{{metric}} realised",
            ),
        ],
    )
    d.panel(
        "Pending predictions (waiting for labels)",
        [(f"max(driftradar_join_buffer_entries{{{M}}})", "pending")],
    )
    d.panel(
        "Label coverage",
        [(f"max(driftradar_label_coverage{{{M}}})", "coverage")],
        unit="percentunit",
    )
    d.panel("Label lag", [(f"max(driftradar_label_lag_seconds{{{M}}})", "label lag")], unit="s")
    d.panel(
        "Join outcomes / s",
        [
            (
                f"sum by (outcome) (rate(driftradar_join_outcomes_total{{{M}}}[{RATE}]))",
                "{{outcome}}",
            )
        ],
        unit="ops",
    )
    d.panel(
        "Predictions / s by version",
        [
            (
                f"sum by (model_version) (rate(driftradar_predictions_total{{{M}}}[{RATE}]))",
                "{{model_version}}",
            )
        ],
        unit="ops",
    )


def alerts(d: Layout) -> None:
    d.row("Alerts and retraining")
    d.panel(
        "Alerts by type",
        [(f"sum by (type) (increase(driftradar_alerts_total[{RATE}]))", "{{type}}")],
        kind="timeseries",
        extra_defaults={"custom": {"drawStyle": "bars"}},
    )
    d.panel(
        "Retrain requests",
        [
            (
                f"sum by (model_id) (increase(driftradar_retrain_requests_total[{RATE}]))",
                "{{model_id}}",
            )
        ],
        extra_defaults={"custom": {"drawStyle": "bars"}},
    )
    d.panel(
        "Dead letters / s",
        [
            (
                f"sum by (topic, reason_kind) (rate(driftradar_dead_letters_total[{RATE}]))",
                "{{topic}} {{reason_kind}}",
            )
        ],
        unit="ops",
    )
    d.panel(
        "Alerts so far by model and type",
        [("sum by (model_id, type) (driftradar_alerts_total)", "{{model_id}} {{type}}")],
        kind="bargauge",
        width=12,
    )
    d.panel(
        "Retrain requests so far",
        [("sum by (model_id) (driftradar_retrain_requests_total)", "{{model_id}}")],
        kind="bargauge",
        width=12,
    )


def dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    d = Layout()
    overview(d)
    model(d)
    alerts(d)
    return {
        "uid": "driftradar",
        "title": "driftradar",
        "description": "Kafka-native ML model monitor: operations, drift and alerts.",
        "tags": ["driftradar", "mlops"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "model",
                    "label": "model",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "definition": "label_values(driftradar_predictions_total, model_id)",
                    "query": {
                        "query": "label_values(driftradar_predictions_total, model_id)",
                        "refId": "PrometheusVariableQueryEditor-VariableQuery",
                    },
                    "refresh": 2,
                    "sort": 1,
                    "includeAll": False,
                    "multi": False,
                    "current": {},
                    "options": [],
                }
            ]
        },
        "annotations": {"list": []},
        "panels": d.panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    sys.stdout.write(f"wrote {OUTPUT}\n")
