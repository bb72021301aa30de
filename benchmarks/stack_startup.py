"""How long the local stack takes to start and stop: the cost of the test fixtures.

Run ``python -m benchmarks.stack_startup [--repeat R]``. Each row starts servers until
they answer (Kafka: a metadata request; Redis: PING), then stops them (SIGTERM, wait).
The baseline is spawning and reaping ``/bin/true`` in the same run, so the ratio says how
many bare process spawns one start costs. The CLI row runs ``driftradar stack up`` and
``stack down`` as a user would (a Python interpreter start included).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

from streams.stack import LocalStack

__all__ = ["main"]

Timed = Callable[[], tuple[float, float]]


def _baseline() -> tuple[float, float]:
    began = time.perf_counter()
    subprocess.run(["/bin/true"], check=True)
    return time.perf_counter() - began, 0.0


def _local(kafka: bool, redis: bool) -> Timed:
    def run() -> tuple[float, float]:
        stack = LocalStack(kafka=kafka, redis=redis)
        began = time.perf_counter()
        stack.start()
        started = time.perf_counter()
        stack.stop()
        return started - began, time.perf_counter() - started

    return run


def _cli() -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="driftradar-bench-") as state_dir:
        command = [sys.executable, "-m", "streams.cli", "stack"]
        began = time.perf_counter()
        subprocess.run([*command, "up", "--state-dir", state_dir], check=True, capture_output=True)
        started = time.perf_counter()
        subprocess.run(
            [*command, "down", "--state-dir", state_dir], check=True, capture_output=True
        )
        return started - began, time.perf_counter() - started


def _row(name: str, timed: Timed, repeat: int, baseline: float | None) -> str:
    runs = [timed() for _ in range(repeat)]
    start = [run[0] * 1000 for run in runs]
    stop = [run[1] * 1000 for run in runs]
    median = statistics.median(start)
    ratio = f"{median / baseline:8.1f}x" if baseline else "     1.0x"
    return (
        f"{name:34} {median:9.1f} {min(start):8.1f} {max(start):8.1f} "
        f"{statistics.median(stop):9.1f} {ratio}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs per row (default 10)")
    args = parser.parse_args(argv)
    baseline = statistics.median(_baseline()[0] for _ in range(args.repeat)) * 1000
    print(f"stack start/stop, {args.repeat} runs each, milliseconds")
    print(f"{'what':34} {'start med':>9} {'min':>8} {'max':>8} {'stop med':>9} {'vs spawn':>9}")
    print(_row("spawn /bin/true (baseline)", _baseline, args.repeat, None))
    print(_row("LocalStack: kafka (tansu)", _local(True, False), args.repeat, baseline))
    print(_row("LocalStack: redis", _local(False, True), args.repeat, baseline))
    print(_row("LocalStack: kafka + redis", _local(True, True), args.repeat, baseline))
    print(_row("CLI: stack up / stack down", _cli, max(args.repeat // 2, 1), baseline))


if __name__ == "__main__":
    main()
