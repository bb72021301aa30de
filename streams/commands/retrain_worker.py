"""`driftradar retrain-worker`: consume retrain requests and act on each one once.

Reads ``KAFKA_BOOTSTRAP_SERVERS``, ``REDIS_URL``, ``DRIFTRADAR_CONFIG`` (validated whole, like
the monitor does; the worker uses its ``kafka:``, ``topics:`` and ``retrain_worker:``
sections) and the action's secrets from the environment only. Exit codes: 0 after a clean
stop (SIGTERM/SIGINT), 1 when the broker, Redis or a publish fails, 2 for a bad configuration
or argument (errors are reported by :mod:`streams.cli`).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from types import FrameType

from producers.retrain.config import ACTIONS, SECTION, resolve_options
from streams.core.errors import DriftradarError

HELP = "consume retrain requests and act: webhook, GitLab, Jenkins, or the local trainer"

log = logging.getLogger("driftradar.retrain")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--action", choices=ACTIONS, help=f"what to do per request (or {SECTION}.action)")
    add("--config", metavar="PATH", help="YAML config (default: $DRIFTRADAR_CONFIG)")
    add("--url", help="webhook: the URL to POST to (secret: $DRIFTRADAR_WEBHOOK_SECRET)")
    add("--gitlab-url", metavar="URL", help="gitlab: base URL, e.g. https://gitlab.example.com")
    add("--project-id", metavar="ID", help="gitlab: project id or group/project path")
    add("--ref", help="gitlab: branch or tag to run the pipeline on")
    add("--jenkins-url", metavar="URL", help="jenkins: base URL, e.g. https://ci.example.com")
    add("--job", help="jenkins: job name (folder/job for jobs in folders)")
    add(
        "--jenkins-crumb",
        action="store_true",
        default=None,
        help="jenkins: fetch a CSRF crumb first (not needed with an API token)",
    )
    add("--group-id", metavar="ID", help="consumer group (driftradar-retrain-worker)")
    add("--max-attempts", type=int, metavar="N", help="attempts per request, first included (5)")
    add("--backoff-base", type=float, metavar="S", help="delay before the first retry (2 s)")
    add("--backoff-factor", type=float, metavar="F", help="delay multiplier per retry (2)")
    add("--backoff-max-delay", type=float, metavar="S", help="largest delay (300 s)")
    add(
        "--lease-seconds",
        type=float,
        metavar="S",
        help="how long a request may stay 'running' before another worker takes it over (900)",
    )
    add("--timeout", type=float, metavar="S", help="HTTP timeout per attempt (30 s)")
    add(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve /metrics, /healthz and /readyz on this port (0: a free one; default off)",
    )
    add("--deployments-topic", metavar="TOPIC", help="local: topic of deployment events")
    add("--holdout", type=float, metavar="F", help="local: recent share held out (0.25)")
    add(
        "--min-rows",
        type=int,
        metavar="N",
        help="local: labelled events a window needs, else declined (200)",
    )
    add(
        "--min-improvement",
        type=float,
        metavar="X",
        help="local: log-loss gain over the current model needed to deploy (0)",
    )
    add(
        "--confidence",
        type=float,
        metavar="P",
        help="local: one-sided confidence that the candidate is better (0.99)",
    )
    add(
        "--max-rows", type=int, metavar="N", help="local: most predictions read per window (500000)"
    )
    add(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log verbosity on stderr (INFO)",
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Late imports: the worker pulls in confluent-kafka, redis and numpy.
    from prometheus_client import REGISTRY

    from producers.retrain.backoff import BackoffPolicy
    from producers.retrain.build import build_action
    from producers.retrain.metrics import RetrainMetrics
    from producers.retrain.state import RequestStore
    from producers.retrain.worker import RetrainWorker, WorkerSettings
    from streams.core.kafka import bootstrap_servers
    from streams.core.redis_client import open_redis, redis_url
    from streams.engine.config import load_config
    from streams.metrics.server import DEFAULT_HOST, HOST_ENV, MetricsServer

    cli = {name: value for name, value in vars(args).items() if not name.startswith("_")}
    config = load_config(args.config)
    options = resolve_options(cli, config.retrain_worker)
    backoff = BackoffPolicy(
        base=options.backoff_base,
        factor=options.backoff_factor,
        max_delay=options.backoff_max_delay,
        max_attempts=options.max_attempts,
    )
    # HTTP actions first: a missing secret fails before any connection is made.
    http_action = options.action != "local"
    action = build_action(options, os.environ, topics=config.topics) if http_action else None
    bootstrap = bootstrap_servers()
    settings = WorkerSettings.derive(bootstrap, options, config.topics, config.kafka)
    client = open_redis(redis_url())
    action = action or build_action(
        options,
        os.environ,
        bootstrap=bootstrap,
        redis_client=client,
        kafka_extra=config.kafka,
        topics=config.topics,
    )
    metrics = RetrainMetrics(REGISTRY)
    worker = RetrainWorker(settings, action, RequestStore(client), backoff=backoff, metrics=metrics)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server: MetricsServer | None = None
    if options.metrics_port is not None:
        server = MetricsServer(
            metrics,
            host=os.environ.get(HOST_ENV, DEFAULT_HOST),
            port=options.metrics_port,
            readiness={"redis": worker.redis_ready},
        )
        try:
            server.start()
        except OSError as exc:
            raise DriftradarError(
                f"cannot serve metrics on port {options.metrics_port}: {exc}"
            ) from None
        log.info("serving /metrics, /healthz, /readyz at %s", server.url)
    try:
        handled = worker.run()
    finally:
        if server is not None:
            server.stop()
        close = getattr(action, "close", None)
        if callable(close):
            close()
    log.info("retrain worker stopped after %d message(s)", handled)
    return 0
