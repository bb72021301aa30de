"""`driftradar stack up|down|status`: the local broker and Redis, in the background.

``up`` prints ``export`` lines on stdout (``eval "$(driftradar stack up)"``); progress and
errors go to stderr, so the shell only ever evaluates the exports.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from streams.core.convert import option
from streams.core.settings import Port, PositiveInt
from streams.core.topics import DEFAULT_PARTITIONS
from streams.stack.daemon import (
    STATE_DIR_ENV,
    render_exports,
    resolve_state_dir,
    stack_down,
    stack_status,
    stack_up,
)

HELP = "start/stop the local Kafka-compatible broker and Redis in the background"


def _say(message: str) -> None:
    print(f"driftradar stack: {message}", file=sys.stderr, flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``up``, ``down`` and ``status``, each with ``--state-dir``."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start (or reuse) the stack, print export lines")
    down = actions.add_parser("down", help="stop the stack and remove its state")
    status = actions.add_parser("status", help="show pids, addresses and health")
    for action in (up, down, status):
        action.add_argument(
            "--state-dir",
            default=None,
            help=f"pid files, state and logs (default: ${STATE_DIR_ENV} or ./.driftradar)",
        )
    up.add_argument(
        "--partitions",
        type=option(PositiveInt),
        default=DEFAULT_PARTITIONS,
        help=f"partitions of every default topic (default: {DEFAULT_PARTITIONS})",
    )
    up.add_argument(
        "--kafka-port", type=option(Port), default=0, help="broker port (default: 0, any free one)"
    )
    up.add_argument(
        "--redis-port", type=option(Port), default=0, help="Redis port (default: 0, any free one)"
    )
    up.add_argument(
        "--timeout", type=float, default=30.0, help="seconds each server may take to answer"
    )
    status.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    if args.action == "up":
        return _up(args, state_dir)
    if args.action == "down":
        return _down(state_dir)
    return _status(state_dir, as_json=args.json)


def _up(args: argparse.Namespace, state_dir: Path) -> int:
    result = stack_up(
        state_dir,
        partitions=args.partitions,
        ports={"kafka": args.kafka_port, "redis": args.redis_port},
        timeout=args.timeout,
        say=_say,
    )
    verb = "reusing the running stack" if result.reused else "stack up"
    _say(f"{verb} in {result.seconds:.2f} s; logs in {state_dir}; stop: driftradar stack down")
    sys.stdout.write(render_exports(result.state))
    return 0


def _down(state_dir: Path) -> int:
    stopped = stack_down(state_dir, say=_say)
    if not stopped:
        _say(f"no stack recorded in {state_dir}; nothing to stop")
    return 0


def _status(state_dir: Path, *, as_json: bool) -> int:
    """Exit 0 if every recorded service answers, 1 otherwise (none recorded included)."""
    report = stack_status(state_dir)
    healthy = bool(report) and all(entry["answering"] for entry in report.values())
    if as_json:
        print(json.dumps({"state_dir": str(state_dir), "running": healthy, "services": report}))
        return 0 if healthy else 1
    if not report:
        print(f"no stack recorded in {state_dir}")
        return 1
    for name, entry in report.items():
        health = "answering" if entry["answering"] else "alive, not answering"
        if not entry["alive"]:
            health = "not running (stale state: run `driftradar stack down`)"
        print(f"{name:6} pid {entry['pid']:<8} {entry['address']:32} {health}  log {entry['log']}")
    return 0 if healthy else 1
