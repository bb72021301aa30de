"""`driftradar run`: the monitor, one consumer-group member (run several to scale out).

Reads ``KAFKA_BOOTSTRAP_SERVERS``, ``REDIS_URL`` and ``DRIFTRADAR_CONFIG``. Exit codes: 0 after
a clean stop (SIGTERM/SIGINT), 1 when the broker, Redis, the topics or the metrics port are not
usable, 2 for a bad configuration or argument (errors are reported by :mod:`streams.cli`).

Serves ``/metrics``, ``/healthz`` and ``/readyz`` on the port chosen by :func:`metrics_port`
(``--metrics-port`` > ``DRIFTRADAR_METRICS_PORT`` > the config's ``metrics_port`` > 9108);
the address it bound is printed on stderr (port 0 picks a free one).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from msgspec.structs import replace

from streams.core.convert import option
from streams.core.errors import DriftradarError
from streams.core.kafka import bootstrap_servers
from streams.core.redis_client import group_id, redis_url
from streams.core.settings import Positive, PositiveInt
from streams.engine.config import MonitorConfig, load_config
from streams.engine.engine import Engine
from streams.metrics import PORT_ENV, MetricsServer, MonitorMetrics, resolve_port
from streams.metrics import add_arguments as add_metrics_arguments
from streams.runner.app import Runner, RunnerSettings

HELP = "run the monitor (one consumer-group member; start several to scale out)"

log = logging.getLogger("driftradar.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="PATH", help="YAML config (default: $DRIFTRADAR_CONFIG)"
    )
    parser.add_argument(
        "--group-id",
        metavar="ID",
        help="consumer group and Redis namespace "
        "(default: $DRIFTRADAR_GROUP_ID, the config's kafka.group.id, or 'driftradar')",
    )
    parser.add_argument(
        "--batch-size",
        type=option(PositiveInt),
        default=10_000,
        metavar="N",
        help="most messages per poll (10000); a poll waits at most 0.2 s",
    )
    parser.add_argument(
        "--checkpoint-events",
        type=option(PositiveInt),
        metavar="N",
        help="checkpoint after N events (default: the config's checkpoint.every_events)",
    )
    parser.add_argument(
        "--checkpoint-seconds",
        type=option(Positive),
        metavar="S",
        help="checkpoint at least every S seconds while caught up (default: "
        "checkpoint.every_seconds)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log verbosity on stderr (INFO)",
    )
    add_metrics_arguments(parser)


def metrics_port(
    cli_value: int | None, configured: int, environ: Mapping[str, str] = os.environ
) -> int:
    """``--metrics-port``, else ``$DRIFTRADAR_METRICS_PORT``, else the config's ``metrics_port``.

    >>> metrics_port(None, 9200, {}), metrics_port(None, 9200, {"DRIFTRADAR_METRICS_PORT": "0"})
    (9200, 0)
    >>> metrics_port(9300, 9200, {"DRIFTRADAR_METRICS_PORT": "0"})
    9300
    """
    if cli_value is None and not environ.get(PORT_ENV):
        return configured
    return resolve_port(cli_value, environ)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = load_config(args.config)
    settings = settings_from(config, args)
    port = metrics_port(args.metrics_port, config.metrics_port)
    # the feature-signal label cap follows the largest per-model feature cap of the config
    caps = [config.defaults.max_features, *(m.max_features for m in config.models.values())]
    metrics = MonitorMetrics(max_features=max(caps))
    runner = Runner(settings, Engine(config), metrics=metrics)
    server = MetricsServer(
        metrics,
        host=args.metrics_host,
        port=port,
        readiness={"kafka": runner.observer.kafka_ready, "redis": runner.observer.redis_ready},
    )
    try:
        server.start()
    except OSError as exc:
        raise DriftradarError(
            f"cannot serve metrics on {args.metrics_host}:{port}: {exc}"
        ) from None
    print(
        f"driftradar run: serving /metrics, /healthz, /readyz on "
        f"{args.metrics_host}:{server.port} ({server.url}/metrics)",
        file=sys.stderr,
    )
    log.info(
        "monitor starting: group %r, broker %s, inputs %s",
        settings.group_id,
        settings.bootstrap,
        ", ".join(settings.inputs),
    )
    try:
        runner.run()
    finally:
        server.stop()
    log.info("monitor stopped: %d events, %d checkpoints", runner.events, runner.checkpoints)
    return 0


def settings_from(config: MonitorConfig, args: argparse.Namespace) -> RunnerSettings:
    """The runner settings: the config file, overridden by the command line and environment
    (``--checkpoint-events``/``--checkpoint-seconds``, when given, replace the config's)."""
    kafka: dict[str, Any] = dict(config.kafka)
    configured_group = kafka.pop("group.id", None)
    group = group_id(args.group_id, str(configured_group) if configured_group else None)
    given = {"every_events": args.checkpoint_events, "every_seconds": args.checkpoint_seconds}
    return RunnerSettings(
        bootstrap=bootstrap_servers(),
        redis_url=redis_url(),
        redis=config.redis,
        broker=config.broker,
        group_id=group,
        topics=config.topics,
        checkpoint=replace(config.checkpoint, **{k: v for k, v in given.items() if v is not None}),
        batch_size=args.batch_size,
        join=config.defaults.join,
        kafka=kafka,
    )
