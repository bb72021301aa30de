"""`driftradar alerts`: tail the alert topic, as readable lines or the raw JSON.

With ``--results`` the retrain worker's decisions (``retrain-results``: deployed, declined,
failed) are shown too, in the same stream, one line each: they are what an operator wants
next to the alerts that caused them. Off by default, so that ``--json`` keeps printing
alerts only to the scripts that read it; with ``--results --json`` a result is told from an
alert by its ``result_id`` key.

Reads every partition of the topics without joining a consumer group (nothing is
committed). Without ``--from-beginning`` only messages published after the command started
are shown; they are selected by message timestamp, because the local broker does not answer
"latest offset" queries reliably.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from streams.core.convert import option
from streams.core.errors import TopicLayoutError
from streams.core.events import (
    Alert,
    EventDecodeError,
    RetrainResult,
    decode_alert,
    decode_retrain_result,
    describe_result,
)
from streams.core.kafka import bootstrap_servers, consumer_config
from streams.core.settings import Positive, PositiveInt
from streams.engine.config import load_config

HELP = "tail the alert topic (human-readable, or --json), with --results the retrain outcomes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print each alert's raw JSON")
    parser.add_argument(
        "--from-beginning", action="store_true", help="show past alerts too, then follow"
    )
    parser.add_argument("--max", type=option(PositiveInt), metavar="N", help="stop after N alerts")
    parser.add_argument(
        "--timeout",
        type=option(Positive),
        metavar="S",
        help="stop after S seconds without a new alert",
    )
    parser.add_argument(
        "--results",
        action="store_true",
        help="also show the retrain worker's decisions (topics.retrain_results)",
    )
    parser.add_argument("--topic", help="alert topic (default: the config's topics.alerts)")
    parser.add_argument(
        "--results-topic",
        help="retrain results topic (default: the config's topics.retrain_results)",
    )
    parser.add_argument("--config", help="YAML config (default: $DRIFTRADAR_CONFIG)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    bootstrap = bootstrap_servers()
    topics = [args.topic or config.topics.alerts]
    if args.results:
        topics.append(args.results_topic or config.topics.retrain_results)
    consumer = Consumer(
        consumer_config(bootstrap, f"driftradar-alerts-{uuid.uuid4().hex}", dict(config.kafka))
    )
    try:
        return _tail(consumer, topics, args)
    finally:
        consumer.close()


def _tail(consumer: Consumer, topics: list[str], args: argparse.Namespace) -> int:
    started_ms = int(time.time() * 1000)
    listed = consumer.list_topics(timeout=10).topics
    assignment = []
    for topic in topics:
        metadata = listed.get(topic)
        if metadata is None or metadata.error is not None:
            raise TopicLayoutError(f"topic {topic!r} does not exist")
        assignment += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
    consumer.assign(assignment)
    results_topic = topics[1] if len(topics) > 1 else None
    shown = 0
    last_seen = time.monotonic()
    while args.timeout is None or time.monotonic() - last_seen < args.timeout:
        for message in consumer.consume(100, 0.5):
            if message.error() is not None:
                raise KafkaException(message.error())
            if not args.from_beginning and _timestamp_ms(message) < started_ms:
                continue
            _show(message, args.json, message.topic() == results_topic)
            last_seen = time.monotonic()
            shown += 1
            if args.max is not None and shown >= args.max:
                return 0
        sys.stdout.flush()
    return 0


def _timestamp_ms(message: Message) -> int:
    kind, value = message.timestamp()
    return int(value) if kind else 0


def _show(message: Message, raw: bool, is_result: bool) -> None:
    value = message.value() or b""
    if raw:
        sys.stdout.write(value.decode("utf-8", errors="replace") + "\n")
        return
    try:
        if is_result:
            line = format_result(decode_retrain_result(value))
        else:
            line = format_alert(decode_alert(value))
    except EventDecodeError as exc:
        where = f"{message.topic()} partition {message.partition()} offset {message.offset()}"
        kind = "retrain result" if is_result else "alert"
        print(f"(unreadable {kind} at {where}: {exc})", file=sys.stderr)
        return
    print(line)


def format_result(result: RetrainResult) -> str:
    """One readable line per retrain decision, its outcome where an alert has its severity.

    >>> print(format_result(RetrainResult(result_id="o-r1", request_id="r1", model_id="churn",
    ...     outcome="declined", reason="too few rows (80 labelled events in the window, need "
    ...     "200)", decided_at="2026-11-27T10:06:00Z", model_version="v3")))
    2026-11-27T10:06:00Z DECLINED churn@v3 retrain r1 for churn: declined: too few rows (80 \
labelled events in the window, need 200)
    """
    return f"{result.decided_at} {result.outcome.upper():<8} {result.model_id}@" + (
        f"{result.model_version} {describe_result(result)}"
    )


def format_alert(alert: Alert) -> str:
    """One readable line per alert: where (``#`` the model's event index), the statistic
    against its threshold, the tail probability, the effect size and the detector's share
    of the false-alarm budget; alerts without them (ops, verification) show their first
    scalar details.

    >>> print(format_alert(Alert(alert_id="a1", type="data_drift", severity="warning",
    ...     model_id="churn", model_version="v3", signal="feature:monthly_charges",
    ...     detector="ks", detected_at="2026-11-27T10:05:00Z",
    ...     details={"position": 9120, "statistic": 0.1513, "threshold": 0.1207,
    ...              "p_value": 3.2e-9, "effect": "mean shift (reference sd)",
    ...              "effect_size": 0.74, "budget_share": 0.0238})))
    2026-11-27T10:05:00Z WARNING  churn@v3 data_drift feature:monthly_charges [ks] #9120 statistic=0.1513 > threshold=0.1207 p=3.2e-09 mean shift (reference sd)=+0.74 budget=2.38%
    >>> print(format_alert(Alert(alert_id="a2", type="infrastructure", severity="critical",
    ...     model_id="churn", signal="silence", detector="timeout",
    ...     detected_at="2026-11-27T10:05:00Z", details={"silent_seconds": 301.5})))
    2026-11-27T10:05:00Z CRITICAL churn@unknown infrastructure silence [timeout] silent_seconds=301.5
    """  # noqa: E501
    line = (
        f"{alert.detected_at} {alert.severity.upper():<8} {alert.model_id}@{alert.model_version} "
        f"{alert.type} {alert.signal} [{alert.detector}]"
    )
    details = alert.details
    if "statistic" in details and "threshold" in details:
        parts = []
        if isinstance(details.get("position"), int):
            parts.append(f"#{details['position']}")
        parts.append(
            f"statistic={_short(details['statistic'])} {_relation(details)} "
            f"threshold={_short(details['threshold'])}"
        )
        if details.get("p_value") is not None:
            parts.append(f"p={details['p_value']:.2g}")
        if details.get("effect") is not None and details.get("effect_size") is not None:
            parts.append(f"{details['effect']}={details['effect_size']:+.3g}")
        if details.get("budget_share"):
            parts.append(f"budget={100 * details['budget_share']:.3g}%")
        return f"{line} {' '.join(parts)}"
    scalars = " ".join(
        f"{key}={_short(value)}" for key, value in list(_scalar_details(details))[:_MAX_DETAILS]
    )
    return f"{line} {scalars}" if scalars else line


def _relation(details: dict[str, Any]) -> str:
    """``>`` or ``<``: which way the statistic passed its threshold."""
    statistic, threshold = details["statistic"], details["threshold"]
    if isinstance(statistic, int | float) and isinstance(threshold, int | float):
        return "<" if statistic < threshold else ">"
    return "vs"


#: Readable lines show at most this many scalar details (``--json`` has them all).
_MAX_DETAILS = 6
_SKIPPED_DETAILS = frozenset({"position", "state", "updates", "evaluations"})


def _scalar_details(details: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in details.items():
        if key not in _SKIPPED_DETAILS and isinstance(value, str | int | float | bool):
            yield key, value


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
