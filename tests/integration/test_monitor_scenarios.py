"""Every simulator scenario end to end: `driftradar simulate` -> `driftradar run` -> alerts.

One monitor run per scenario, each on its own topics (``topic_prefix``) and consumer group,
against the real local broker and Redis. The stream comes from the real ``driftradar
simulate`` subprocess, the monitor is the real ``driftradar run`` subprocess (started with
:mod:`runner_harness`), and what it decided is read back from the alerts, retrain-requests
and dead-letter topics. The monitor runs with the built-in defaults: the config file only
names the test's topics, the test group timings and checkpoint cadence (and, for ``outage``,
a short ``silence_seconds``), so these tests check what a user running ``driftradar run``
with no configuration gets.

"After the change point" means an alert's ``event_time`` (the event time of the record at
which its signal entered drift) is at or after the change point's event time: with
``--rate 0`` event ``i`` happens at ``2026-01-01T00:00:00Z + i * 0.01 s``.

The streams use ``--seed 1`` (``SCENARIO_SEED=N`` picks another one). Known limits, seen
with other seeds: a weak, persistent shift that a detector judges near its threshold
(chi-square on ``contract``, the log-loss baseline, a 2 % out-of-range rate against a 1 %
limit) can leave drift after ``alarms.clear_after`` quiet updates and enter it again, so
"each signal alerts once" holds for seed 1, not for every seed (seeds 2, 3, 4: 2, 1 and 1
of the six tests fail on that check alone; every other check passes). Window tests and
the gate have no exit threshold looser than their entry threshold yet.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
import yaml

sys.path.insert(0, str(Path(__file__).with_name("runner")))
from runner_harness import ROOT, monitor_env, start_monitor, write_config

from producers.simulator import DEFAULT_START, NOMINAL_INTERVAL
from streams.checkpoint import CheckpointStore
from streams.commands.status import status_document

pytestmark = pytest.mark.integration

TOPICS = (
    "predictions",
    "ground-truth",
    "drift-alerts",
    "retrain-requests",
    "dead-letter",
    "retrain-results",
)
PARTITIONS = 2
EVENTS = 16_000
CHANGE_AT = EVENTS // 2
#: Alert types that name a model problem (``infrastructure`` is the ops kind).
MODEL_TYPES = frozenset(
    {"data_drift", "prediction_drift", "concept_drift", "performance_degradation", "data_quality"}
)
#: Features whose distribution the ``data-drift`` scenario shifts (producers/scenarios.py):
#: tenure, monthly charges, support calls, contract and payment-method mix.
SHIFTED_FEATURES = frozenset(
    {"tenure_months", "monthly_charges", "support_calls", "contract", "payment_method"}
)
_SUMMARY = re.compile(
    r"simulate: (?P<events>\d+) events(?: \((?P<malformed>\d+) malformed\))? to .*?, "
    r"(?P<labels>\d+) labels"
)


@dataclass
class Outcome:
    """What one scenario's monitor run produced."""

    alerts: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    status: dict[str, Any]
    malformed: int
    log: str = field(repr=False)

    def model_alerts(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["type"] in MODEL_TYPES]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["type"] == kind]

    def describe(self) -> str:
        """One line per alert, for assertion messages."""
        return "\n".join(
            f"{a['type']} {a['signal']} [{a['detector']}] at {a['event_time']} "
            f"pos={a['details'].get('position')}"
            for a in self.alerts
        )


def _event_time(position: float) -> float:
    """Epoch seconds of stream position ``position`` with ``--rate 0``."""
    return DEFAULT_START + position * NOMINAL_INTERVAL


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _simulate(env: Mapping[str, str], topics: Mapping[str, str], *args: str) -> tuple[int, ...]:
    """``driftradar simulate`` on the test's topics; returns (predictions, malformed, labels)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "simulate",
            "--predictions-topic",
            topics["predictions"],
            "--ground-truth-topic",
            topics["ground-truth"],
            "--partitions",
            str(PARTITIONS),
            *args,
        ],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    match = _SUMMARY.search(done.stdout)
    assert match is not None, done.stdout
    malformed = int(match["malformed"] or 0)
    return int(match["events"]) - malformed, malformed, int(match["labels"])


def _decode_all(read_topic: Any, topic: str) -> list[dict[str, Any]]:
    return [msgspec.json.decode(m.value()) for m in read_topic(topic)]


def _wait_until_consumed(
    client: redis.Redis,
    group: str,
    expected: Mapping[str, int],
    monitor: Any,
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Poll the group's status (what ``driftradar status --json`` prints) until the model's
    counters reach ``expected``; returns that status."""
    deadline = time.monotonic() + timeout
    while True:
        status = status_document(CheckpointStore(client, group).statuses())
        model = status["models"].get("churn", {})
        if all(model.get(key) == value for key, value in expected.items()):
            return status
        if monitor.process.poll() is not None:
            raise AssertionError(f"monitor exited ({monitor.process.returncode}):\n{monitor.log()}")
        if time.monotonic() > deadline:
            got = {key: model.get(key) for key in expected}
            raise AssertionError(f"not consumed: {got}, expected {dict(expected)}")
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(path: Path, topics: Mapping[str, str], **engine: Any) -> Path:
    """The harness's config (test topics, fast group timings) plus ``engine`` settings."""
    write_config(path, topics, every_events=5000, every_seconds=1)
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["metrics_port"] = _free_port()
    if engine:
        document["defaults"] = engine
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def run_scenario(
    scenario: str,
    *,
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    read_topic: Any,
    topic_prefix: str,
    tmp_path: Path,
    simulate_args: tuple[str, ...] = (),
    engine: Mapping[str, Any] | None = None,
    monitor_first: bool = False,
) -> Outcome:
    """Simulate ``scenario`` and run the monitor over it until it consumed everything."""
    topics = make_topics(*TOPICS, partitions=PARTITIONS)
    config = _config(tmp_path / "monitor.yaml", topics, **dict(engine or {}))
    env = monitor_env(kafka_bootstrap, redis_url, config)
    group = topic_prefix + "g"
    args = ("--scenario", scenario, "--seed", os.environ.get("SCENARIO_SEED", "1"), *simulate_args)
    monitor = None
    if monitor_first:
        monitor = start_monitor(env, group)
        monitor.wait_for_log("assigned partitions")
    try:
        predictions, malformed, labels = _simulate(env, topics, *args)
        if monitor is None:
            monitor = start_monitor(env, group)
        status = _wait_until_consumed(
            redis_client,
            group,
            {"predictions": predictions, "ground_truth": labels, "dead_letters": malformed},
            monitor,
        )
    finally:
        if monitor is not None:
            code = monitor.stop()
    assert code == 0, monitor.log()
    return Outcome(
        alerts=_decode_all(read_topic, topics["drift-alerts"]),
        requests=_decode_all(read_topic, topics["retrain-requests"]),
        dead_letters=_decode_all(read_topic, topics["dead-letter"]),
        status=status,
        malformed=malformed,
        log=monitor.log(),
    )


@pytest.fixture
def scenario(
    kafka_bootstrap: str,
    redis_url: str,
    redis_client: redis.Redis,
    make_topics: Any,
    read_topic: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> Any:
    """``scenario(name, *simulate args, engine=..., monitor_first=...)`` -> :class:`Outcome`."""

    def run(name: str, *simulate_args: str, **options: Any) -> Outcome:
        return run_scenario(
            name,
            kafka_bootstrap=kafka_bootstrap,
            redis_url=redis_url,
            redis_client=redis_client,
            make_topics=make_topics,
            read_topic=read_topic,
            topic_prefix=topic_prefix,
            tmp_path=tmp_path,
            simulate_args=simulate_args,
            **options,
        )

    return run


STANDARD = ("--events", str(EVENTS), "--rate", "0", "--change-at", str(CHANGE_AT))
CHANGE_TIME = _event_time(CHANGE_AT)


def _assert_each_signal_alerts_once(outcome: Outcome) -> None:
    """A signal alerts when it enters drift, not again while it hovers around its limit."""
    counts = Counter((a["type"], a["signal"]) for a in outcome.model_alerts())
    repeated = {key: n for key, n in counts.items() if n > 1}
    assert not repeated, f"signals alerted more than once: {repeated}\n{outcome.describe()}"


def _assert_after_change(alerts: list[dict[str, Any]], outcome: Outcome) -> None:
    early = [a for a in alerts if _epoch(a["event_time"]) < CHANGE_TIME]
    assert not early, f"alerts before the change point:\n{outcome.describe()}"


def _features(alerts: list[dict[str, Any]]) -> set[str]:
    return {a["signal"].split(":", 1)[1] for a in alerts if ":" in a["signal"]}


@pytest.mark.slow
def test_stable_stream_raises_nothing(scenario: Any) -> None:
    outcome = scenario("stable", *STANDARD)
    assert outcome.model_alerts() == [], outcome.describe()
    assert outcome.requests == []
    assert outcome.dead_letters == []
    model = outcome.status["models"]["churn"]
    assert model["joined"] == model["ground_truth"]  # every label found its prediction


@pytest.mark.slow
def test_data_drift_on_the_shifted_features_only_and_no_concept_drift(scenario: Any) -> None:
    outcome = scenario("data-drift", *STANDARD)
    data_drift = outcome.of("data_drift")
    drifted = _features(data_drift)
    # the scenario shifts tenure, charges, support calls, contract and payment mix; total
    # charges (tenure x monthly charges) and the unseen-category streams follow them
    assert {"tenure_months", "monthly_charges"} <= drifted, outcome.describe()
    assert drifted <= SHIFTED_FEATURES | {"total_charges"}, outcome.describe()
    assert "age" not in drifted  # the one input the scenario leaves alone
    assert outcome.of("concept_drift") == [], outcome.describe()
    _assert_after_change(outcome.model_alerts(), outcome)
    _assert_each_signal_alerts_once(outcome)


@pytest.mark.slow
def test_concept_drift_on_the_error_stream_and_one_retrain_request(scenario: Any) -> None:
    outcome = scenario("concept-drift", *STANDARD)
    concept = outcome.of("concept_drift")
    performance = outcome.of("performance_degradation")
    assert {a["signal"] for a in concept} == {"error"}, outcome.describe()
    # realised metrics, and the label-free estimates (which never request retraining)
    assert all(a["signal"].startswith(("metric:", "estimate:")) for a in performance)
    performance = [a for a in performance if a["signal"].startswith("metric:")]
    assert concept, outcome.describe()
    # the inputs and the model are unchanged: no data or prediction drift
    assert outcome.of("data_drift") == [], outcome.describe()
    assert outcome.of("prediction_drift") == [], outcome.describe()
    _assert_after_change(outcome.model_alerts(), outcome)
    _assert_each_signal_alerts_once(outcome)
    # default policy: triggers concept_drift/performance_degradation, one confirming signal,
    # cooldown 3600 s of event time > the whole stream (160 s): exactly one request, made
    # once min_labelled pairs of the new regime are in (the alerts meanwhile join its
    # reasons), with a window that starts at the change, not at the version's first event
    assert len(outcome.requests) == 1, outcome.requests
    (request,) = outcome.requests
    first = min(concept + performance, key=lambda a: _epoch(a["event_time"]))
    assert request["reasons"][0]["alert_id"] == first["alert_id"]
    assert _epoch(request["detected_at"]) == _epoch(first["event_time"])
    assert _epoch(request["window"]["end"]) == _epoch(request["requested_at"])
    assert _epoch(request["requested_at"]) >= _epoch(first["event_time"])
    start = _epoch(request["window"]["start"])
    assert DEFAULT_START < start <= _epoch(first["event_time"])
    assert abs(start - CHANGE_TIME) < 0.25 * (_epoch(first["event_time"]) - DEFAULT_START)
    assert request["complete"] == (request["labelled_pairs"] >= 1000)


@pytest.mark.slow
def test_prediction_drift_on_the_prediction_and_no_data_drift(scenario: Any) -> None:
    outcome = scenario("prediction-drift", *STANDARD)
    drift = outcome.of("prediction_drift")
    assert [a["signal"] for a in drift] == ["prediction"], outcome.describe()
    assert outcome.of("data_drift") == [], outcome.describe()  # the inputs did not move
    _assert_after_change(outcome.model_alerts(), outcome)
    _assert_each_signal_alerts_once(outcome)


def _declared_schema() -> dict[str, Any]:
    """The churn model's declared expectations from ``examples/churn.yaml`` (ranges,
    categories, missing rates): what makes a value *out of range* or a category *unseen*."""
    example = yaml.safe_load((ROOT / "examples" / "churn.yaml").read_text(encoding="utf-8"))
    model = example["models"]["churn"]
    return {key: model[key] for key in ("task", "features", "prediction")}


@pytest.mark.slow
def test_quality_faults_go_to_dead_letter_and_data_quality_not_drift(scenario: Any) -> None:
    outcome = scenario("quality", *STANDARD, engine=_declared_schema())
    # malformed messages: every one in the dead-letter topic, with its reason
    assert outcome.malformed > 0
    assert len(outcome.dead_letters) == outcome.malformed
    assert outcome.status["models"]["churn"]["dead_letters"] == outcome.malformed
    assert all(d["reason"] and d["topic"].endswith("predictions") for d in outcome.dead_letters)
    quality = outcome.of("data_quality")
    by_detector: dict[str, set[str]] = {}
    for alert in quality:
        by_detector.setdefault(alert["detector"], set()).add(alert["signal"])
    # unseen categories (3 %), out-of-range values (2 %), nulls (4 %; age allows 2 %)
    assert by_detector.get("allowed_categories") == {
        "quality:contract",
        "quality:payment_method",
    }, outcome.describe()
    assert by_detector.get("value_range"), outcome.describe()
    assert "quality:age" in by_detector.get("missing_rate", set()), outcome.describe()
    # broken values are kept out of the drift statistics
    assert outcome.of("data_drift") == [], outcome.describe()
    _assert_after_change(quality, outcome)
    _assert_each_signal_alerts_once(outcome)


@pytest.mark.slow
def test_outage_raises_a_silence_alert_and_no_retrain_request(scenario: Any) -> None:
    start, rate, events, change, pause = 1_800_000_000.0, 1000, 3000, 1500, 4.0
    outcome = scenario(
        "outage",
        *("--events", str(events), "--rate", str(rate), "--change-at", str(change)),
        *("--outage-seconds", str(pause), "--start-time", str(start)),
        # the last predictions before the pause wait for the (quiet) labels topic for
        # join.max_idle_seconds before they reach the engine: keep it well below 1.5 s
        engine={"silence_seconds": 1.5, "join": {"max_idle_seconds": 0.25}},
        monitor_first=True,
    )
    silence = [a for a in outcome.of("infrastructure") if a["signal"] == "silence"]
    resumed = start + change / rate + pause  # event time of the first event after it
    during = [a for a in silence if _epoch(a["event_time"]) < resumed]
    assert during, outcome.describe()
    assert during[0]["details"]["limit_seconds"] == 1.5
    assert during[0]["details"]["silent_seconds"] > 1.5
    assert outcome.requests == []
    assert outcome.model_alerts() == [], outcome.describe()
