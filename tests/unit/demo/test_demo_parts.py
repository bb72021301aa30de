"""The demo's pure parts: its plan (config and commands), state, summary and plain log."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
import yaml

from producers.retrain.config import resolve_options
from producers.retrain.dataset import LabelledEvent
from streams.commands import simulate
from streams.core.events import Alert, AlertReason, RetrainRequest, RetrainResult, TimeWindow
from streams.demo.plan import MIN_ROC_AUC, DemoPlan, PlanError
from streams.demo.state import DemoState
from streams.demo.summary import measure, summarise
from streams.demo.view import PlainLog
from streams.engine import MonitorConfig, load_config


def test_the_config_is_valid_for_the_monitor_and_the_worker(tmp_path: Path) -> None:
    plan = DemoPlan(duration=150.0, rate=400.0).unique()
    document = plan.config()
    config = MonitorConfig.from_mapping(
        {k: v for k, v in document.items() if k != "retrain_worker"}
    )
    churn = config.model("churn")
    assert churn.performance.thresholds == {"roc_auc": MIN_ROC_AUC}
    assert churn.retrain.verify_labelled_events > 0
    assert config.topics.predictions == plan.topics.predictions
    assert plan.topics.predictions.startswith("demo-")
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    worker = load_config(path)  # what `driftradar retrain-worker` reads
    options = resolve_options({"action": None}, worker.retrain_worker)
    assert options.action == "local"
    assert options.deployments_topic == plan.topics.deployments
    assert worker.topics.predictions == plan.topics.predictions


@pytest.mark.parametrize("phase", [1, 2])
def test_the_simulate_commands_parse_and_continue_event_time(phase: int) -> None:
    plan = DemoPlan(duration=120.0, rate=300.0, start_time=1_800_000_000.0)
    parser = argparse.ArgumentParser()
    simulate.add_arguments(parser)
    args = parser.parse_args(plan.simulate_args(phase))
    config = simulate._config(args)
    if phase == 1:
        assert config.scenario == "data-drift"
        assert config.change_point == plan.stable_events
        assert config.events == plan.stable_events + plan.drift_events
    else:
        assert (config.scenario, config.change_point) == ("concept-drift", 0)
        assert args.follow_deployments
        assert config.start_time == pytest.approx(plan.concept_start)


def test_bad_options_are_named() -> None:
    with pytest.raises(PlanError, match="--duration"):
        DemoPlan(duration=30.0)
    with pytest.raises(PlanError, match="--rate"):
        DemoPlan(rate=10.0)


def _alert(alert_id: str, kind: str, detector: str = "adwin", severity: str = "warning") -> Alert:
    return Alert(
        alert_id,
        kind,
        severity,
        "churn",
        "metric:roc_auc",
        detector,
        "2026-01-01T00:00:00Z",
        "v2",
        details={"metric": "roc_auc", "value": 0.65, "minimum": 0.55},
    )


def test_state_dedupes_and_knows_what_is_missing() -> None:
    state = DemoState()
    state.on_alert(_alert("a1", "data_drift"))
    state.on_alert(_alert("a1", "data_drift"))  # redelivered
    state.on_alert(_alert("a2", "concept_drift"))
    request = RetrainRequest(
        "r1",
        "churn",
        "2026-01-01T00:00:00Z",
        [AlertReason("a2", "concept_drift", "error")],
        TimeWindow("2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"),
        "v1",
    )
    state.on_request(request)
    state.on_request(request)
    assert state.alert_counts() == {"data_drift": 1, "concept_drift": 1}
    assert state.missing() == [
        "a deployed retrain result",
        "a deployment",
        "a successful verification (info) of the new version",
    ]
    result = RetrainResult(
        result_id="o-r1",
        request_id="r1",
        model_id="churn",
        outcome="deployed",
        reason="better than the current model by the margin",
        decided_at="2026-01-01T00:00:05Z",
        model_version="v1",
        deployed_version="v2",
    )
    state.on_result(result)
    state.on_result(result)  # redelivered
    state.on_alert(_alert("a3", "performance_degradation", "verification", "info"))
    assert state.alert_counts()["verification"] == 1
    assert state.missing() == ["a deployment"]
    out = io.StringIO()
    PlainLog(state, out).update(0.0)
    text = out.getvalue()
    assert "RETRAIN REQUEST churn@v1" in text
    assert text.count("RESULT retrain r1 for churn: deployed v2") == 1
    assert "verification VERIFIED: churn@v2 roc_auc 0.650" in text
    assert text.count("RETRAIN REQUEST") == 1


def _event(i: int, t: float, version: str, p: float, y: int) -> LabelledEvent:
    return LabelledEvent(f"e{i}", t, version, {}, p, y)


def test_summary_measures_each_segment_and_checks_recovery() -> None:
    plan = DemoPlan(duration=100.0, rate=100.0, start_time=0.0)
    events = [
        _event(0, 1.0, "v1", 0.9, 1),
        _event(1, 2.0, "v1", 0.1, 0),  # stable: perfect
        _event(2, plan.concept_start + 1, "v1", 0.9, 0),  # concept drift: wrong
        _event(3, plan.concept_start + 2, "v1", 0.1, 1),
        _event(4, plan.concept_start + 3, "v2", 0.8, 1),  # after retrain: right
        _event(5, plan.concept_start + 4, "v2", 0.3, 0),
    ]
    segments = {s.name: s for s in measure(events, plan)}
    assert (segments["stable"].roc_auc, segments["stable"].labelled) == (1.0, 2)
    assert segments["data drift"].labelled == 0
    assert segments["concept drift"].roc_auc == 0.0
    assert segments["after retrain"].accuracy == 1.0
    summary = summarise(DemoState(), list(segments.values()), 12.0)
    assert not summary.complete
    assert "a retrain request" in summary.missing
    assert "story: INCOMPLETE" in summary.text
