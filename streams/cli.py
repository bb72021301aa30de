"""The ``driftradar`` command line: one sub-command per module in :mod:`streams.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "build_parser", "main"]

#: Sub-command name -> module under ``streams.commands`` that defines it. Each module has
#: ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int`` (the exit code).
COMMANDS: dict[str, str] = {
    "run": "run",
    "simulate": "simulate",
    "demo": "demo",
    "retrain-worker": "retrain_worker",
    "alerts": "alerts",
    "status": "status",
    "stack": "stack",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftradar",
        description="Kafka-native, real-time monitor for machine-learning models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"streams.commands.{module_name}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
