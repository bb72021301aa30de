"""`driftradar demo`: the whole closed loop — drift, alerts, automatic retraining, a new
model version verified — on the local stack (or the configured servers), shown live."""

from __future__ import annotations

import argparse

HELP = "the end-to-end demonstration: drift, alerts, automatic retraining, recovery"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=float,
        default=150.0,
        metavar="SECONDS",
        help="length of the whole demo, start-up and summary included (default 150, min 60)",
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="plain log lines instead of the live view (for CI and pipes; automatic when "
        "stdout is not a terminal)",
    )
    parser.add_argument(
        "--rate", type=float, default=400.0, help="predictions per second (default 400)"
    )
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="port of the monitor's /metrics (default 9108, or a free one if taken)",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the children's logs and the config"
    )


def run(args: argparse.Namespace) -> int:
    from streams.demo import DemoOptions, run_demo
    from streams.demo.plan import DemoPlan

    DemoPlan(duration=args.duration, rate=args.rate, seed=args.seed)  # PlanError: exit 2
    options = DemoOptions(
        duration=args.duration,
        rate=args.rate,
        seed=args.seed,
        headless=args.headless,
        metrics_port=args.metrics_port,
        keep_logs=args.keep_logs,
    )
    return run_demo(options)
