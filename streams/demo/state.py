"""What the demo has seen so far: alerts, retrain requests and results, deployments, the
monitor's status and event rates, and which steps of the story have happened.

Everything arrives as plain events (:meth:`DemoState.on_alert`, :meth:`on_request`,
:meth:`on_deployment`, :meth:`on_status`), so the live view, the headless log and the
summary all read the same state.

>>> from streams.core.events import Alert
>>> state = DemoState()
>>> state.on_status({"churn": {"predictions": 100, "ground_truth": 90}}, at=10.0)
>>> state.on_status({"churn": {"predictions": 500, "ground_truth": 450}}, at=11.0)
>>> state.rates["churn"]
(760.0, 400.0)
>>> state.on_alert(Alert("a-1", "data_drift", "warning", "churn", "feature:age", "adwin",
...                      "2026-01-01T00:00:00Z", "v1"))
>>> state.alert_counts(), state.missing()[:2]
({'data_drift': 1}, ['a concept_drift or performance_degradation alert', 'a retrain request'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from streams.core.events import Alert, Deployment, RetrainRequest, RetrainResult, describe_result
from streams.engine.retrain import VERIFICATION

__all__ = ["DemoState", "Happening"]

#: Lines of history the state keeps for the live view.
MAX_HAPPENINGS: Final = 200


@dataclass(frozen=True, slots=True)
class Happening:
    """One line of the story: ``kind`` is ``phase``, ``alert``, ``request``, ``result``,
    ``deployment``, ``verification`` or ``info``; ``style`` a rich style for the live view."""

    at: float  # demo seconds
    kind: str
    text: str
    style: str = ""


@dataclass
class DemoState:
    """The demo's view of the closed loop, fed by the watcher and the orchestrator."""

    started: float = 0.0
    phase: str = "starting"
    alerts: list[Alert] = field(default_factory=list)
    requests: list[RetrainRequest] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    results: list[RetrainResult] = field(default_factory=list)
    models: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    #: model -> (events/s, predictions/s) over the last two status readings
    rates: dict[str, tuple[float, float]] = field(default_factory=dict)
    happenings: list[Happening] = field(default_factory=list)
    noted: int = 0  # happenings ever noted (the list keeps the last MAX_HAPPENINGS)
    _last: dict[str, tuple[float, int, int]] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)

    # -- events in ------------------------------------------------------------------------

    def note(self, at: float, kind: str, text: str, style: str = "") -> None:
        self.happenings.append(Happening(at - self.started, kind, text, style))
        self.noted += 1
        del self.happenings[:-MAX_HAPPENINGS]

    def set_phase(self, phase: str, at: float) -> None:
        if phase != self.phase:
            self.phase = phase
            self.note(at, "phase", f"phase: {phase}", "bold cyan")

    def on_alert(self, alert: Alert, at: float = 0.0) -> None:
        if alert.alert_id in self._seen:  # at-least-once delivery: dedupe by id
            return
        self._seen.add(alert.alert_id)
        self.alerts.append(alert)
        if alert.detector == VERIFICATION:
            d = alert.details
            verdict = "VERIFIED" if alert.severity == "info" else "NOT VERIFIED"
            limit = d.get("minimum", d.get("maximum"))
            self.note(
                at,
                "verification",
                f"verification {verdict}: {alert.model_id}@{alert.model_version} "
                f"{d.get('metric')} {_num(d.get('value'))} vs limit {_num(limit)} after "
                f"{d.get('labelled_events')} labels (previous {d.get('previous_version')})",
                "bold green" if alert.severity == "info" else "bold red",
            )
            return
        style = {"critical": "red", "warning": "yellow"}.get(alert.severity, "")
        self.note(
            at,
            "alert",
            f"{alert.severity.upper():8} {alert.model_id}@{alert.model_version} {alert.type} "
            f"{alert.signal} [{alert.detector}]{_detail(alert)}",
            style,
        )

    def on_request(self, request: RetrainRequest, at: float = 0.0) -> None:
        if request.request_id in self._seen:
            return
        self._seen.add(request.request_id)
        self.requests.append(request)
        reasons = ", ".join(f"{r.type} {r.signal}" for r in request.reasons)
        evidence = (
            ""
            if request.labelled_pairs is None
            else (
                f" ({request.labelled_pairs} labelled pairs since the change"
                + ("" if request.complete else ", the wait ran out")
                + ")"
            )
        )
        self.note(
            at,
            "request",
            f"RETRAIN REQUEST {request.model_id}@{request.model_version} because {reasons}; "
            f"window {request.window.start[11:19]} to {request.window.end[11:19]}{evidence}",
            "bold magenta",
        )

    def on_result(self, result: RetrainResult, at: float = 0.0) -> None:
        """The retrain worker's decision on a request (``retrain-results``)."""
        if result.result_id in self._seen:
            return
        self._seen.add(result.result_id)
        self.results.append(result)
        style = "bold blue" if result.outcome == "deployed" else "bold red"
        self.note(at, "result", f"RESULT {describe_result(result)}", style)

    def on_deployment(self, deployment: Deployment, at: float = 0.0) -> None:
        key = f"deploy:{deployment.model_id}:{deployment.model_version}"
        if key in self._seen:
            return
        self._seen.add(key)
        self.deployments.append(deployment)
        evaluation = deployment.evaluation
        candidate = evaluation.get("candidate", {}) if isinstance(evaluation, dict) else {}
        current = evaluation.get("current", {}) if isinstance(evaluation, dict) else {}
        self.note(
            at,
            "deployment",
            f"DEPLOYED {deployment.model_id}@{deployment.model_version} "
            f"(was {deployment.previous_version}): held-out AUC {_num(candidate.get('auc'))} "
            f"vs {_num(current.get('auc'))}, trained on {evaluation.get('train_rows')} rows",
            "bold blue",
        )

    def on_status(self, models: Mapping[str, Mapping[str, Any]], at: float) -> None:
        """The monitor's checkpointed per-model status; rates from the previous reading."""
        for model_id, status in models.items():
            predictions = int(status.get("predictions", 0))
            events = predictions + int(status.get("ground_truth", 0))
            last = self._last.get(model_id)
            if last is not None and at > last[0] and (events, predictions) != last[1:]:
                span = at - last[0]
                self.rates[model_id] = ((events - last[1]) / span, (predictions - last[2]) / span)
            if last is None or (events, predictions) != last[1:]:
                self._last[model_id] = (at, events, predictions)
        self.models = dict(models)

    # -- reading --------------------------------------------------------------------------

    def alert_counts(self) -> dict[str, int]:
        """Alerts by type (verifications counted as ``verification``)."""
        counts: Counter[str] = Counter()
        for alert in self.alerts:
            counts["verification" if alert.detector == VERIFICATION else alert.type] += 1
        return dict(counts)

    def model_alerts(self, *types: str) -> list[Alert]:
        return [a for a in self.alerts if a.type in types and a.detector != VERIFICATION]

    def verifications(self) -> list[Alert]:
        return [a for a in self.alerts if a.detector == VERIFICATION]

    def missing(self) -> list[str]:
        """The steps of the story that have not happened (empty: the story is complete)."""
        out = []
        if not self.model_alerts("data_drift"):
            out.append("a data_drift alert")
        if not self.model_alerts("concept_drift", "performance_degradation"):
            out.append("a concept_drift or performance_degradation alert")
        if not self.requests:
            out.append("a retrain request")
        if not any(r.outcome == "deployed" for r in self.results):
            out.append("a deployed retrain result")
        if not self.deployments:
            out.append("a deployment")
        if not any(a.severity == "info" for a in self.verifications()):
            out.append("a successful verification (info) of the new version")
        return out


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _detail(alert: Alert) -> str:
    d = alert.details
    if "value" in d and "limit" in d:
        return f" value={_num(d['value'])} limit={_num(d['limit'])}"
    for before, after in (("mean_before", "mean_after"),):
        if before in d and after in d:
            return f" mean {_num(d[before])} → {_num(d[after])}"
    if "statistic" in d:
        return f" statistic={_num(d['statistic'])}"
    return ""
