"""`driftradar alerts --results`: retrain decisions in the alert stream, one line each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from retrain_harness import publish

from streams.core.events import Alert, RetrainResult, encode

pytestmark = pytest.mark.integration

ALERT = Alert(
    alert_id="a-1",
    type="concept_drift",
    severity="critical",
    model_id="churn",
    model_version="v1",
    signal="error",
    detector="adwin",
    detected_at="2026-11-27T10:05:00Z",
    details={"mean_before": 0.2, "mean_after": 0.4},
)
RESULT = RetrainResult(
    result_id="o-r-1",
    request_id="r-1",
    model_id="churn",
    outcome="deployed",
    reason="better than the current model by the margin",
    decided_at="2026-11-27T10:06:00Z",
    model_version="v1",
    deployed_version="v2",
    evaluation={
        "candidate": {"auc": 0.66, "log_loss": 0.58},
        "current": {"auc": 0.43, "log_loss": 0.89},
        "holdout_rows": 375,
    },
)


def test_alerts_shows_the_retrain_results_when_asked(
    kafka_bootstrap: str, make_topics: Callable[..., dict[str, str]]
) -> None:
    topics = make_topics("drift-alerts", "retrain-results", partitions=2)
    publish(kafka_bootstrap, topics["drift-alerts"], [("churn", encode(ALERT))])
    publish(kafka_bootstrap, topics["retrain-results"], [("churn", encode(RESULT))])
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    env.pop("DRIFTRADAR_CONFIG", None)
    base = [sys.executable, "-m", "streams.cli", "alerts", "--from-beginning"]
    base += ["--topic", topics["drift-alerts"], "--results-topic", topics["retrain-results"]]

    def run(*extra: str) -> list[str]:
        done = subprocess.run(
            [*base, *extra], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        return sorted(done.stdout.splitlines())

    assert run("--results", "--max", "2", "--timeout", "20") == [
        "2026-11-27T10:05:00Z CRITICAL churn@v1 concept_drift error [adwin] mean_before=0.2 "
        "mean_after=0.4",
        "2026-11-27T10:06:00Z DEPLOYED churn@v1 retrain r-1 for churn: deployed v2 (roc_auc "
        "0.660 vs 0.430, log_loss 0.580 vs 0.890 on 375 held-out post-change rows)",
    ]
    raw = [json.loads(line) for line in run("--results", "--json", "--max", "2", "--timeout", "20")]
    assert sorted(m.get("result_id", "-") for m in raw) == ["-", "o-r-1"]
    # without --results: alerts only (scripts reading --json see no new kind of line)
    alerts_only = run("--json", "--timeout", "3")
    assert [json.loads(line)["alert_id"] for line in alerts_only] == ["a-1"]
