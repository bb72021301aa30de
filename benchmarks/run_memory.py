"""Where a real ``driftradar run`` keeps its memory after a load: traced, by source line.

Run ``python -m benchmarks.run_memory [--models 300] [--predictions 600] [--no-trace]``
(a minute or two). On a private local stack (broker + Redis of this run, 4-partition topics)
it produces ``benchmarks.many_models``'s stream (``--models`` x ``--predictions`` labelled
predictions, 10 numeric + 2 categorical features; the default leaves every model in its
1 000-value warm-up, as issue 15's load does), then runs ``driftradar run`` *in this process*
(``streams.cli.main``, the real runner, decoder and metrics) under tracemalloc. Once the
checkpoints hold every event and ``--settle`` seconds passed (nobody scrapes ``/metrics``),
it prints the RSS and the traced memory per model by source file and by line, or with
``--no-trace`` (RSS as a run has it) the interpreter's small-object allocator instead
(arenas, the bytes in blocks, the free space in them), then stops the monitor as SIGTERM
does. ``benchmarks.many_models`` measures the same load's
RSS from outside; this says what holds it. Tracing slows the run about threefold; nothing
is asserted.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from benchmarks.many_models import MIB, REPO, _checkpointed, _produce, monitor_env

GROUP = "run-memory"
#: The summary lines of ``sys._debugmallocstats()`` worth printing.
_MALLOC_LINES = re.compile(
    r"arenas allocated current|bytes in allocated blocks|bytes in available blocks|unused pools"
)


def _malloc_summary() -> list[str]:
    """``sys._debugmallocstats()``'s summary (it writes to the C-level stderr)."""
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()  # noqa: SLF001 - the only way to read it
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    return [line.strip() for line in text.splitlines() if _MALLOC_LINES.search(line)]


def _report(args: argparse.Namespace, client: Any, sent: int, trace: bool) -> None:
    """Wait until every event is checkpointed and ``--settle`` passed; print; stop the run."""
    try:
        while _checkpointed(client, GROUP)[0] < sent:
            time.sleep(0.5)
        time.sleep(args.settle)
        gc.collect()
        models = args.models
        print(f"RSS {psutil.Process().memory_info().rss / MIB:.0f} MiB", flush=True)
        if not trace:  # (tracemalloc's hooks hide the allocator's own statistics)
            for line in _malloc_summary():
                print(f"pymalloc: {line}")
        else:
            snapshot = tracemalloc.take_snapshot()
            total = sum(stat.size for stat in snapshot.statistics("filename"))
            print(f"traced {total / MIB:.1f} MiB = {total / models / 1024:.0f} KiB per model")
            for key in ("filename", "lineno"):
                print(f"\nKiB per model by {key}:")
                for stat in snapshot.statistics(key)[: args.top]:
                    frame = stat.traceback[0]
                    where = (
                        frame.filename if key == "filename" else f"{frame.filename}:{frame.lineno}"
                    )
                    print(f"{stat.size / models / 1024:9.1f}  {_short(where)}")
        sys.stdout.flush()
    finally:
        os.kill(os.getpid(), signal.SIGTERM)


def _short(path: str) -> str:
    return path.removeprefix(f"{REPO}{os.sep}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=300)
    parser.add_argument("--predictions", type=int, default=600, help="labelled, per model")
    parser.add_argument("--settle", type=float, default=12.0, help="seconds after the load")
    parser.add_argument("--top", type=int, default=20, help="rows per table")
    parser.add_argument("--no-trace", action="store_true", help="RSS and allocator only")
    args = parser.parse_args(argv)

    import redis

    from streams.cli import main as cli
    from streams.stack import LocalStack

    with tempfile.TemporaryDirectory(prefix="driftradar-run-memory-") as tmp:
        work = Path(tmp)
        with LocalStack(work / "stack") as stack:
            os.environ.update(monitor_env(stack, work))
            sent = _produce(stack.bootstrap, args.models, args.predictions)
            client = redis.Redis.from_url(stack.redis_url, socket_timeout=120)
            trace = not args.no_trace
            if trace:
                tracemalloc.start()
            reporter = threading.Thread(
                target=_report, args=(args, client, sent, trace), daemon=True
            )
            reporter.start()
            cli(["run", "--group-id", GROUP])  # returns on the reporter's SIGTERM
            reporter.join(timeout=60)
            client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
