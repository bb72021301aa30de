"""The ``driftradar`` command line: one sub-command per module in :mod:`streams.commands`.

Only the module of the command being run is imported, so ``driftradar stack up`` does not
pay for importing the detector library.

Expected failures end here, in :func:`main`, as one line on stderr and an exit code
(docs/running.md "Exit codes"): a :class:`~streams.core.errors.DriftradarError` exits with
its ``exit_code`` — 2 for a bad configuration or argument, 1 for a broker, Redis, topic,
checkpoint or publish that cannot be used — and so do the Kafka and Redis clients' own
errors (1). Anything else is a bug and keeps its traceback.

>>> failure(ConfigError("checkpoint.every_events", "must be an integer >= 1"))
(2, 'bad configuration: checkpoint.every_events: must be an integer >= 1')
>>> from streams.core.errors import UnreachableError
>>> failure(UnreachableError("cannot reach Redis at redis://127.0.0.1:1/0"))
(1, 'cannot reach Redis at redis://127.0.0.1:1/0')
>>> failure(KeyError("bug")) is None
True
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

import redis
from confluent_kafka import KafkaException

from streams.core.errors import ConfigError, DriftradarError
from streams.core.redact import environment_secrets, redact_text

__all__ = ["COMMANDS", "build_parser", "failure", "main"]

#: Sub-command name -> (module under ``streams.commands``, one-line help for the listing).
#: Each module has ``HELP`` (its description), ``add_arguments(parser)`` and
#: ``run(args) -> int`` (the exit code).
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the monitor (one consumer-group member; start several to scale out)"),
    "simulate": ("simulate", "publish prediction and delayed ground-truth events for a scenario"),
    "demo": ("demo", "the embedded end-to-end demonstration"),
    "retrain-worker": ("retrain_worker", "consume retrain requests and act on them"),
    "alerts": ("alerts", "tail the alert topic (human-readable, or --json)"),
    "status": ("status", "show models, signals and detector state (read from Redis)"),
    "backtest": (
        "backtest",
        "replay recorded events through the engine: alarms, delays, budget, HTML report",
    ),
    "stack": ("stack", "start/stop the local broker and Redis in the background"),
}


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"streams.commands.{COMMANDS[name][0]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``only``, just that sub-command's module is imported."""
    parser = argparse.ArgumentParser(
        prog="driftradar",
        description="Kafka-native, real-time monitor for machine-learning models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            module = _load(name)
            command.description = module.HELP  # the module's own, fuller wording
            module.add_arguments(command)
            command.set_defaults(handler=module.run)
    return parser


def failure(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and one-line message of an expected failure; None for a bug."""
    if isinstance(exc, ConfigError):
        return exc.exit_code, f"bad configuration: {exc}"
    if isinstance(exc, DriftradarError):
        return exc.exit_code, str(exc)
    if isinstance(exc, KafkaException):
        return 1, f"Kafka error: {exc.args[0] if exc.args else exc}"
    if isinstance(exc, redis.RedisError):
        return 1, f"Redis error: {exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(chosen if chosen in COMMANDS else None).parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        failed = failure(exc)
        if failed is None:
            raise
        code, message = failed
        url_secrets, tokens = environment_secrets(os.environ)
        message = redact_text(message, url_secrets, whole=tokens)
        print(f"driftradar {args.command}: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
