"""What a checkpoint costs the engine per model: time, bytes, and memory kept afterwards.

Run ``python -m benchmarks.checkpoint_cost [--models 100] [--repeat 3]``. No broker or Redis:
in one process, ``--models`` models of ``benchmarks.many_models``'s stream (10 numeric + 2
categorical features, every prediction labelled, 1 200 predictions each: past the warm-up)
are checkpointed as the runner does it up to Redis (``Engine.checkpoint_partition``, the
models encoded with msgpack as the store encodes them, ``checkpoint_saved``):

* ``every detector changed``: each model got a labelled prediction since the last checkpoint
  (a backlog or a busy stream: every detector took values);
* ``detectors idle``: every model is saved whole but took no values (after a restore, or a
  model whose only change was elsewhere);
* ``kept after checkpoints``: RSS growth per model over those checkpoints, read after
  ``gc.collect()`` and ``malloc_trim(0)`` (free pages back to the system, as the runner does
  after each checkpoint): what checkpointing holds on to.

``--redis`` then writes those checkpoints to a private Redis started for the run (the local
stack's), as the runner does (``CheckpointStore.save``, every partition in one script), and
prints Redis's time: into an empty Redis, then over the stored models. Redis answers no other
client meanwhile, and a script past its ``busy-reply-threshold`` (5 s) makes it answer
``BUSY`` to everyone: this sizes how many models one member's checkpoint can hold.

It uses only the engine's public checkpoint API, so the same file runs on earlier commits
(``git worktree add /tmp/before <commit>``, copy this file there) for a before/after.
Nothing is asserted; times are best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import itertools
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import psutil

from benchmarks.many_models import LABEL_LAG, MIB, _feed, _warm_up, labelled_stream
from streams.engine.config import MonitorConfig
from streams.engine.engine import Engine


def _resident() -> int:
    """RSS after a garbage collection and with free pages given back (glibc only)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: RSS as it stands
        ctypes.CDLL(None).malloc_trim(0)
    return int(psutil.Process().memory_info().rss)


def _checkpoint(engine: Engine) -> int:
    """One checkpoint of every partition up to Redis; the bytes of its model snapshots."""
    written = 0
    for p in sorted(engine.partitions()):
        changes = engine.checkpoint_partition(p)
        written += sum(len(msgspec.msgpack.encode(m)) for m in changes.models.values())
        engine.checkpoint_saved(p)
    return written


def _redis_saves(engine: Engine, changed: Callable[[], None], repeat: int) -> tuple[float, float]:
    """Seconds Redis took to store a checkpoint of every model after ``changed`` (a private
    Redis): the first into an empty database, then best of ``repeat`` over stored models."""
    import redis

    from streams.checkpoint import CheckpointStore, PartitionCheckpoint
    from streams.stack import LocalStack

    def save(store: CheckpointStore) -> float:
        changed()
        checkpoints = []
        for p in sorted(engine.partitions()):
            changes = engine.checkpoint_partition(p)
            checkpoints.append(
                PartitionCheckpoint(
                    p,
                    {"predictions": 1},
                    changes.state,
                    changes.status,
                    models=changes.models,
                    complete=changes.complete,
                )
            )
        start = time.perf_counter()
        store.save(checkpoints)
        took = time.perf_counter() - start
        for p in engine.partitions():
            engine.checkpoint_saved(p)
        return took

    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp), kafka=False) as stack:
        client = redis.Redis.from_url(stack.redis_url, socket_timeout=600)
        store = CheckpointStore(client, "checkpoint-cost")
        first = save(store)
        again = min(save(store) for _ in range(repeat))
        client.close()
    return first, again


def _best(action: Callable[[], int], setup: Callable[[], None], repeat: int) -> tuple[float, int]:
    times, written = [], 0
    for _ in range(repeat):
        setup()
        start = time.perf_counter()
        written = action()
        times.append(time.perf_counter() - start)
    return min(times), written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.checkpoint_cost", description=__doc__
    )
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--predictions", type=int, default=1200, help="labelled, per model")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--redis", action="store_true", help="also time the writes in a private Redis"
    )
    args = parser.parse_args(argv)
    models = args.models
    _warm_up(10_000)
    gc.collect()
    gc.freeze()
    engine = Engine(MonitorConfig())
    _feed(engine, labelled_stream(models, args.predictions), 10_000)
    rounds = itertools.count(args.predictions + LABEL_LAG, 3)

    def every_detector_changed() -> None:
        first = next(rounds)
        engine.process(list(labelled_stream(models, 1, first_round=first, seed=2)))

    def saved_whole() -> None:
        for p in engine.partitions():
            engine.save_whole(p)

    before = _resident()
    changed, changed_bytes = _best(lambda: _checkpoint(engine), every_detector_changed, args.repeat)
    idle, _ = _best(lambda: _checkpoint(engine), saved_whole, args.repeat)
    kept = _resident() - before
    print(f"{models} models, {args.predictions} labelled predictions each; best of {args.repeat}")
    print(f"{'checkpoint of every model':<40} {'ms/model':>9} {'KiB/model written':>18}")
    print(
        f"{'every detector changed':<40} {changed * 1e3 / models:>9.3f} "
        f"{changed_bytes / 1024 / models:>18.0f}"
    )
    print(f"{'detectors idle (saved whole)':<40} {idle * 1e3 / models:>9.3f}")
    print(
        f"kept after {2 * args.repeat} checkpoints: {kept / MIB / models:.3f} MiB per model of RSS"
    )
    if args.redis:
        first, again = _redis_saves(engine, every_detector_changed, args.repeat)
        mib = changed_bytes / MIB
        print(
            f"Redis storing every model's checkpoint ({mib:.0f} MiB, one script): "
            f"{first:.2f} s into an empty Redis, {again:.2f} s over the stored models "
            f"({mib / again:.0f} MiB/s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
