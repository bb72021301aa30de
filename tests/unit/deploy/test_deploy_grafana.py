"""The Grafana dashboard: generated, laid out, wired to the provisioned datasource, complete."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "driftradar.json"
#: Metric -> the row that must chart it (issue: overview, model and alerts rows).
REQUIRED = {
    "Overview": ["driftradar_events_total", "driftradar_predictions_total",
                 "driftradar_event_latency_seconds_bucket", "driftradar_consumer_lag",
                 "process_cpu_seconds_total", "process_resident_memory_bytes", "up{"],
    "Model": ["driftradar_detector_state", 'detector="psi"', "driftradar_prediction_mean",
              "driftradar_prediction_band", "driftradar_error_rate",
              "driftradar_model_performance", "driftradar_performance_threshold",
              "driftradar_label_coverage", "driftradar_label_lag_seconds"],
    "Alerts": ["driftradar_alerts_total", "driftradar_retrain_requests_total",
               "driftradar_dead_letters_total"],
}  # fmt: skip


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_dashboard", GRAFANA / "generate_dashboard.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _rows(dashboard: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    current = ""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current = panel["title"].split(":")[0]
            rows[current] = []
        else:
            rows[current].append(panel)
    return rows


def test_the_committed_json_is_the_generator_output() -> None:
    assert DASHBOARD.read_text() == _generator().render(), (
        "run: python deploy/grafana/generate_dashboard.py"
    )


def test_three_rows_each_charting_what_the_issue_asks(dashboard: dict[str, Any]) -> None:
    rows = _rows(dashboard)
    assert list(rows) == ["Overview", "Model", "Alerts and retraining"]
    rows["Alerts"] = rows.pop("Alerts and retraining")
    for row, needles in REQUIRED.items():
        exprs = " ".join(t["expr"] for p in rows[row] for t in p["targets"])
        missing = [n for n in needles if n not in exprs]
        assert missing == [], f"row {row} lacks {missing}"


def test_model_row_follows_the_model_variable(dashboard: dict[str, Any]) -> None:
    (variable,) = dashboard["templating"]["list"]
    assert variable["name"] == "model"
    assert variable["query"]["query"] == "label_values(driftradar_predictions_total, model_id)"
    for panel in _rows(dashboard)["Model"]:
        for target in panel["targets"]:
            assert 'model_id="$model"' in target["expr"], panel["title"]


def test_panels_use_the_provisioned_datasource_and_do_not_overlap(
    dashboard: dict[str, Any],
) -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())[
        "datasources"
    ][0]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": provisioned["type"], "uid": provisioned["uid"]}
            assert panel["targets"], panel["title"]
            assert all(t["expr"].strip() for t in panel["targets"])
