"""`driftradar simulate`: publish a churn model's predictions and delayed labels for a scenario.

The stream itself is built by :mod:`producers.simulator` (deterministic per ``--seed``) and
published by :mod:`producers.publish`; this module only reads arguments, creates the two
topics if missing, shows progress on a terminal and prints the change point and a summary.
With ``--follow-deployments`` the simulated model server also reads the deployments topic
(:mod:`producers.deployment_feed`) and serves each new version of its model.
SIGINT and SIGTERM stop it cleanly: what was sent is flushed and the summary printed.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from types import FrameType

from confluent_kafka import KafkaException

from producers.delivery import DeliveryError, TrackedProducer
from producers.deployment_feed import FeedError, KafkaDeploymentFeed
from producers.publish import PublishReport, SimulationTopics, publish
from producers.scenarios import SCENARIOS
from producers.serving import Switch
from producers.simulator import Simulation, SimulationConfig
from streams.core.errors import UsageError
from streams.core.kafka import bootstrap_servers
from streams.core.settings import DEPLOYMENTS_TOPIC, TOPICS
from streams.core.topics import (
    DEFAULT_PARTITIONS,
    TopicError,
    ensure_topics,
    partition_counts,
    validate_topic_name,
)

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
    parser.add_argument(
        "--events",
        type=int,
        default=10_000,
        help="predictions (default 10000); 0 = unbounded, with a --rate (stop it with "
        "--duration, Ctrl-C or SIGTERM)",
    )
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
    parser.add_argument("--predictions-topic", default=TOPICS.predictions)
    parser.add_argument("--ground-truth-topic", default=TOPICS.ground_truth)
    parser.add_argument(
        "--partitions",
        type=int,
        default=DEFAULT_PARTITIONS,
        help=f"partitions of the topics, if they must be created (default {DEFAULT_PARTITIONS})",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many wall-clock seconds (flush, then print the summary)",
    )
    parser.add_argument(
        "--follow-deployments",
        action="store_true",
        help="serve each new version of --model-id published on the deployments topic "
        "(by the retrain worker's local trainer) from the next predictions on",
    )
    parser.add_argument(
        "--deployments-topic",
        default=DEPLOYMENTS_TOPIC,
        help=f"with --follow-deployments: the topic to read (default {DEPLOYMENTS_TOPIC})",
    )
    parser.add_argument(
        "--deployments-from",
        choices=["end", "beginning"],
        default="end",
        help="with --follow-deployments: ignore the deployments published before the start "
        "(end, the default), or replay them first so the latest one serves from event 0",
    )


def run(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
    except ValueError as exc:
        raise UsageError(_as_flag(str(exc))) from None
    topics = SimulationTopics(args.predictions_topic, args.ground_truth_topic)
    bootstrap = bootstrap_servers(args.bootstrap)
    try:
        names = [topics.predictions, topics.ground_truth]
        ensure_topics(bootstrap, names, args.partitions, timeout=_BROKER_TIMEOUT_S)
        if args.follow_deployments:
            _ensure_exists(bootstrap, args.deployments_topic, args.partitions)
    except (TopicError, KafkaException) as exc:
        _say(f"error: cannot prepare the topics on the broker at {bootstrap}: {exc}")
        return 1
    with ExitStack() as resources:
        simulation = Simulation(config, on_switch=_announce)
        feed = _open_feed(args, bootstrap) if args.follow_deployments else None
        if args.follow_deployments and feed is None:
            return 1
        _say(_plan(config))
        if feed is not None:
            resources.callback(feed.close)
            simulation.deployments = feed
            _say(_following(config, args, feed.skipped))
        stop = resources.enter_context(_stop_on_signals())
        report = _publish(simulation, bootstrap, topics, args.duration, stop)
        if report is None:
            return 1
    if report.stopped:
        why = "--duration elapsed" if report.stopped == "duration" else stop.signal_name
        _say(f"stopped ({why}) after {report.events} events; labels not yet due were not sent")
    print(_summary(report, topics, simulation))
    return 130 if report.stopped == "stop" and stop.signal_name == "SIGINT" else 0


def _open_feed(args: argparse.Namespace, bootstrap: str) -> KafkaDeploymentFeed | None:
    """The deployments topic, read to its end (None, said on stderr, if it cannot be)."""
    try:
        return KafkaDeploymentFeed(
            bootstrap,
            args.deployments_topic,
            from_beginning=args.deployments_from == "beginning",
            timeout=_BROKER_TIMEOUT_S,
            on_problem=lambda text: _say(f"warning: {text}"),
        )
    except (FeedError, KafkaException) as exc:
        _say(f"error: cannot follow deployments: {exc}")
        return None


def _publish(
    simulation: Simulation,
    bootstrap: str,
    topics: SimulationTopics,
    duration: float | None,
    stop: _Stop,
) -> PublishReport | None:
    """Publish until the end, ``duration`` or a signal; None (said on stderr) if undelivered."""
    producer = TrackedProducer(bootstrap, poll_every=_POLL_EVERY)
    try:
        with _progress(simulation.config.events or None) as on_progress:
            return publish(
                simulation,
                producer,
                topics,
                on_progress=on_progress,
                duration=duration,
                sleep=stop.wait,
                should_stop=stop.is_set,
            )
    except DeliveryError as exc:
        _say(f"error: {exc}")
        return None
    except KeyboardInterrupt:  # no SIGINT handler (not in the main thread): flush, re-raise
        _say(f"interrupted after {simulation.counts.predictions} events; flushing them")
        try:
            producer.flush(5.0)
        except DeliveryError as exc:
            _say(f"error: {exc}")
        raise


def _ensure_exists(bootstrap: str, topic: str, partitions: int) -> None:
    """Create ``topic`` if missing; an existing one may have any partition count."""
    if partition_counts(bootstrap, [topic], timeout=_BROKER_TIMEOUT_S)[topic] is None:
        ensure_topics(bootstrap, [topic], partitions, timeout=_BROKER_TIMEOUT_S)


def _plan(config: SimulationConfig) -> str:
    scenario = SCENARIOS[config.scenario]
    events = f"{config.events} events" if config.events else f"unbounded at {config.rate:g}/s"
    return f"scenario {config.scenario}: {events}, {_change(config)} ({scenario.changes})"


def _change(config: SimulationConfig) -> str:
    if config.unbounded and config.change_at is None:  # only the stable scenario
        return "no change point"
    return f"change point at event {config.change_point}"


def _following(config: SimulationConfig, args: argparse.Namespace, skipped: int) -> str:
    where = (
        f"from the end ({skipped} earlier deployment(s) ignored)"
        if args.deployments_from == "end"
        else "from the beginning"
    )
    return (
        f"following deployments of model {config.model_id!r} on "
        f"{args.deployments_topic!r} {where}; serving {config.model_version!r}"
    )


def _announce(switch: Switch) -> None:
    _say(
        f"event {switch.position}: now serving model_version {switch.model_version!r} "
        f"(was {switch.previous_version!r}; deployment for request {switch.request_id!r})"
    )


class _Stop(threading.Event):
    """Set by SIGINT/SIGTERM; ``wait`` doubles as the publisher's interruptible sleep."""

    signal_name = ""


@contextmanager
def _stop_on_signals() -> Iterator[_Stop]:
    """SIGINT and SIGTERM set the returned event instead of killing the run mid-batch."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(number: int, frame: FrameType | None) -> None:
        stop.signal_name = signal.Signals(number).name
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _config(args: argparse.Namespace) -> SimulationConfig:
    if isinstance(args.partitions, int) and args.partitions < 1:
        raise ValueError(f"partitions must be a positive integer, got {args.partitions}")
    if args.duration is not None and not 0 < args.duration < float("inf"):
        raise ValueError(f"duration must be a number of seconds > 0, got {args.duration}")
    for name in (args.predictions_topic, args.ground_truth_topic):
        validate_topic_name(name)
    if args.follow_deployments:
        validate_topic_name(args.deployments_topic)
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


def _summary(report: PublishReport, topics: SimulationTopics, simulation: Simulation) -> str:
    config = simulation.config
    switches = simulation.server.switches
    malformed = f" ({report.malformed} malformed)" if report.malformed else ""
    versions = "".join(f", {s.model_version} from event {s.position}" for s in switches)
    served = f"; model {config.model_version}{versions}" if switches else ""
    return (
        f"simulate: {report.events} events{malformed} to {topics.predictions!r}, "
        f"{report.labels} labels to {topics.ground_truth!r}, {_change(config)}; "
        f"{report.seconds:.2f} s, {report.events_per_second:,.0f} events/s{served}"
    )


@contextmanager
def _progress(total: int | None) -> Iterator[Callable[[int], None] | None]:
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
