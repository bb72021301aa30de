"""`driftradar backtest`: replay recorded events through the monitor engine offline.

Events come from JSONL/Parquet files or from the ``predictions`` and ``ground-truth``
topics (an offset range and/or an event-time range); the logic lives in
:mod:`streams.backtest`. Prints, per model and signal, the alarms (position, event time),
the first detection after each change point, the false alarms per 100 000 predictions and
the share of the false-alarm budget used; ``--report`` writes the HTML report, ``--tune``
a configuration whose stable span meets the budget, ``--export`` the events as JSONL.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

import yaml

from streams.backtest import read_files, read_topics, replay, summarise
from streams.backtest.report import write_report
from streams.backtest.sources import BacktestSourceError, write_jsonl
from streams.backtest.summary import ModelSummary
from streams.backtest.tune import tune
from streams.core.events import Prediction
from streams.engine import InputRecord
from streams.engine.config import ConfigError, MonitorConfig, load_config

HELP = "replay recorded events through the engine: alarms, delays, budget, HTML report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", help="JSONL or Parquet files of events (in order)")
    parser.add_argument(
        "--from-topic",
        action="store_true",
        help="read the predictions and ground-truth topics instead of files",
    )
    parser.add_argument("--start-offset", type=int, default=0, help="first offset (topics)")
    parser.add_argument("--end-offset", type=int, help="stop before this offset (topics)")
    parser.add_argument("--since", help="first event time, RFC 3339 or epoch seconds")
    parser.add_argument("--until", help="event time to stop before, RFC 3339 or epoch seconds")
    parser.add_argument("--config", help="YAML config (default: $DRIFTRADAR_CONFIG)")
    parser.add_argument(
        "--change-at",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="a change point: the model's N-th prediction (repeatable)",
    )
    parser.add_argument(
        "--change-column",
        metavar="NAME",
        help="a feature whose value marks the regime: a change point wherever it changes",
    )
    parser.add_argument("--report", metavar="OUT.html", help="write the HTML report")
    parser.add_argument(
        "--tune",
        metavar="OUT.yaml",
        help="search detector weights so the stable span meets the budget; write the config",
    )
    parser.add_argument(
        "--expected-run-time",
        type=float,
        help="the budget for --tune (default: the config's alarms.expected_run_time)",
    )
    parser.add_argument("--export", metavar="OUT.jsonl", help="write the events read as JSONL")
    parser.add_argument("--batch-size", type=int, default=5000, help="records per engine batch")


def _time(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _change_points(records: list[InputRecord], column: str) -> list[int]:
    """Prediction indexes where ``column`` changes value (first model's predictions)."""
    points: list[int] = []
    last: Any = None
    index = 0
    for record in records:
        if isinstance(record.event, Prediction):
            value = record.event.features.get(column)
            if index and value != last:
                points.append(index)
            last = value
            index += 1
    return points


def _print(summary: ModelSummary, changes: list[int]) -> None:
    print(
        f"model {summary.model_id}: {summary.predictions:,} predictions; stable span "
        f"{summary.stable_predictions:,}; false alarms {summary.false_alarms} "
        f"({summary.false_alarms_per_100k:.2f} per 100k); budget used "
        f"{summary.budget_used:.2f} (alarms.expected_run_time {summary.expected_run_time:,.0f})"
    )
    if not summary.signals:
        print("  no alarms")
    for signal in summary.signals:
        detection = "; ".join(
            f"after {c}: {'missed' if d is None else f'+{d}'}"
            for c, d in signal.first_detection.items()
        )
        print(
            f"  {signal.signal}: {len(signal.alarms)} alarm(s), {signal.false_alarms} false"
            + (f"; first detection {detection}" if detection else "")
        )
        for position, event_time, detector, kind in signal.alarms:
            print(f"    #{position} {event_time} [{detector}] {kind}")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        document: dict[str, Any] = {}
        if args.config:
            with open(args.config, encoding="utf-8") as handle:
                document = yaml.safe_load(handle) or {}
    except ConfigError as exc:
        print(f"driftradar backtest: bad configuration: {exc}", file=sys.stderr)
        return 2
    if bool(args.files) == bool(args.from_topic):
        print("driftradar backtest: give event files or --from-topic (one)", file=sys.stderr)
        return 2
    try:
        if args.from_topic:
            from streams.core.kafka import bootstrap_servers

            topics = [config.topics.predictions, config.topics.ground_truth]
            records, skipped = read_topics(
                bootstrap_servers(),
                topics,
                start_offset=args.start_offset,
                end_offset=args.end_offset,
                since=_time(args.since),
                until=_time(args.until),
                kafka=dict(config.kafka),
            )
        else:
            records, skipped = read_files(args.files)
            since, until = _time(args.since), _time(args.until)
            if since is not None or until is not None:
                records = [
                    r
                    for r in records
                    if (since is None or r.timestamp >= since)
                    and (until is None or r.timestamp < until)
                ]
    except (BacktestSourceError, OSError, RuntimeError, ValueError) as exc:
        print(f"driftradar backtest: {exc}", file=sys.stderr)
        return 1
    if args.export:
        count = write_jsonl(records, args.export)
        print(f"wrote {count:,} events to {args.export}")
    changes = sorted(set(args.change_at))
    if args.change_column:
        changes = sorted(set(changes) | set(_change_points(records, args.change_column)))
    print(f"{len(records):,} events ({skipped} skipped as invalid); change points: {changes}")
    result = replay(records, config, batch_size=args.batch_size)
    summaries = summarise(result, changes)
    for summary in summaries:
        _print(summary, changes)
    print(f"replayed in {result.seconds:.1f} s; {result.retrain_requests} retrain request(s)")
    if args.report:
        charts = write_report(result, summaries, changes, args.report)
        print(f"wrote {args.report} ({charts} charts)")
    if args.tune:
        target = args.expected_run_time or config.defaults.alarms.expected_run_time
        tuned, log = tune(records, document, changes, target)
        for line in log:
            print(f"tune {line}")
        try:
            MonitorConfig.from_mapping(tuned)
        except ConfigError as exc:  # pragma: no cover - tune writes what the parser accepts
            print(f"driftradar backtest: tuned config is invalid: {exc}", file=sys.stderr)
            return 1
        with open(args.tune, "w", encoding="utf-8") as out:
            yaml.safe_dump(tuned, out, sort_keys=False)
        print(f"wrote {args.tune}")
    return 0
