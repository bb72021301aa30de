"""`driftradar simulate`: publish a churn model's predictions and delayed labels for a scenario.

The stream itself is built by :mod:`producers.simulator` (deterministic per ``--seed``) and
published by :mod:`producers.publish`; this module only reads arguments, creates the two
topics if missing, shows progress on a terminal and prints the change point and a summary.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from confluent_kafka import KafkaException

from producers.delivery import DeliveryError, TrackedProducer
from producers.publish import PublishReport, SimulationTopics, publish
from producers.scenarios import SCENARIOS
from producers.simulator import Simulation, SimulationConfig
from streams.kafka_config import TopicNames, bootstrap_servers
from streams.topics import DEFAULT_PARTITIONS, TopicError, ensure_topics

HELP = "publish prediction and delayed ground-truth events for a scenario"

#: librdkafka sends this many messages between two delivery-callback polls.
_POLL_EVERY = 64
#: How long to wait for the broker to answer while creating the topics, in seconds.
_BROKER_TIMEOUT_S = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulation, where to publish, and how fast."""
    scenarios = "; ".join(f"{name}: {s.changes}" for name, s in SCENARIOS.items())
    parser.add_argument(
        "--scenario", default="stable", choices=list(SCENARIOS), help=f"what changes ({scenarios})"
    )
    parser.add_argument("--events", type=int, default=10_000, help="predictions (default 10000)")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="events per second; 0 = as fast as possible"
    )
    parser.add_argument("--seed", type=int, default=0, help="same seed, same events (default 0)")
    parser.add_argument("--model-id", default="churn", help="model_id and message key")
    parser.add_argument("--model-version", default="v1")
    parser.add_argument(
        "--label-coverage",
        type=float,
        default=0.9,
        help="fraction of predictions that ever get a label (default 0.9)",
    )
    parser.add_argument(
        "--label-delay",
        type=float,
        default=200.0,
        help="mean label delay, in events (exponential; default 200)",
    )
    parser.add_argument(
        "--early-labels",
        type=float,
        default=0.01,
        help="fraction of labels published just before their prediction (default 0.01)",
    )
    parser.add_argument(
        "--change-at",
        type=int,
        default=None,
        help="index of the first changed event (default: half of --events)",
    )
    parser.add_argument(
        "--outage-seconds",
        type=float,
        default=30.0,
        help="outage scenario: seconds without events (default 30)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=None,
        help="simulated seconds between events (default 1/rate, or 0.01 with --rate 0)",
    )
    parser.add_argument(
        "--start-time",
        type=_timestamp,
        default=None,
        help="event time of the first event, RFC 3339 or epoch seconds "
        "(default: now with a rate, 2026-01-01T00:00:00Z with --rate 0)",
    )
    parser.add_argument("--bootstrap", help="Kafka brokers (default $KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--predictions-topic", default=TopicNames.PREDICTIONS)
    parser.add_argument("--ground-truth-topic", default=TopicNames.GROUND_TRUTH)
    parser.add_argument(
        "--partitions",
        type=int,
        default=DEFAULT_PARTITIONS,
        help=f"partitions of the topics, if they must be created (default {DEFAULT_PARTITIONS})",
    )
    parser.add_argument(
        "--follow-deployments",
        action="store_true",
        help="switch model versions on retrain (not yet supported)",
    )


def run(args: argparse.Namespace) -> int:
    if args.follow_deployments:
        _say("error: --follow-deployments is not yet supported")
        return 2
    try:
        config = _config(args)
    except ValueError as exc:
        _say(f"error: {_as_flag(str(exc))}")
        return 2
    topics = SimulationTopics(args.predictions_topic, args.ground_truth_topic)
    scenario = SCENARIOS[config.scenario]
    try:
        bootstrap = bootstrap_servers(args.bootstrap)
        names = [topics.predictions, topics.ground_truth]
        ensure_topics(bootstrap, names, args.partitions, timeout=_BROKER_TIMEOUT_S)
    except (TopicError, KafkaException) as exc:
        _say(f"error: cannot prepare the topics on the broker at {bootstrap}: {exc}")
        return 1
    except (RuntimeError, ValueError) as exc:  # no broker configured; a bad topic name
        _say(f"error: {exc}")
        return 2
    producer = TrackedProducer(bootstrap, poll_every=_POLL_EVERY)
    _say(
        f"scenario {config.scenario}: {config.events} events, change point at event "
        f"{config.change_point} ({scenario.changes})"
    )
    simulation = Simulation(config)
    try:
        with _progress(config.events) as on_progress:
            report = publish(simulation, producer, topics, on_progress=on_progress)
    except DeliveryError as exc:
        _say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        _say(f"interrupted after {simulation.counts.predictions} events; flushing them")
        try:
            producer.flush(5.0)
        except DeliveryError as exc:
            _say(f"error: {exc}")
        raise
    print(_summary(report, topics))
    return 0


def _config(args: argparse.Namespace) -> SimulationConfig:
    if isinstance(args.partitions, int) and args.partitions < 1:
        raise ValueError(f"partitions must be a positive integer, got {args.partitions}")
    return SimulationConfig(
        scenario=args.scenario,
        events=args.events,
        seed=args.seed,
        rate=args.rate,
        model_id=args.model_id,
        model_version=args.model_version,
        label_coverage=args.label_coverage,
        label_delay=args.label_delay,
        early_labels=args.early_labels,
        change_at=args.change_at,
        outage_seconds=args.outage_seconds,
        interval=args.interval,
        start_time=args.start_time,
    )


def _timestamp(text: str) -> float:
    """``--start-time``: RFC 3339 with an offset, or epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not RFC 3339 or epoch seconds: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs an offset such as Z or +01:00: {text!r}")
    return moment.timestamp()


def _as_flag(message: str) -> str:
    """``label_coverage must ...`` -> ``--label-coverage must ...`` (the user typed flags)."""
    match = re.match(r"([a-z]+(?:_[a-z]+)*) must", message)
    if match is None:
        return message
    return "--" + match.group(1).replace("_", "-") + message[match.end(1) :]


def _summary(report: PublishReport, topics: SimulationTopics) -> str:
    malformed = f" ({report.malformed} malformed)" if report.malformed else ""
    return (
        f"simulate: {report.events} events{malformed} to {topics.predictions!r}, "
        f"{report.labels} labels to {topics.ground_truth!r}, change point at event "
        f"{report.change_point}; {report.seconds:.2f} s, {report.events_per_second:,.0f} events/s"
    )


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("predictions", total=total)
        yield lambda done: bar.update(task, completed=done)


def _say(message: str) -> None:
    print(f"driftradar simulate: {message}", file=sys.stderr)
