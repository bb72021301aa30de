"""Where an event's time goes in the engine, by signal, for chunks of one model's records.

Run ``python -m benchmarks.chunk_cost [--chunks 64,256,10000] [--predictions 20000]``. In one
process, one model of ``benchmarks.many_models``'s stream (10 numeric + 2 categorical
features, every prediction labelled), past its warm-up, is fed to ``Engine.process`` in
chunks of ``--chunks`` records (predictions and labels; 256 is what the runner hands the
engine per model under load, 10 000 a one-model batch). For each chunk size: µs per chunk
and per event in all, and for each kind of signal (by name prefix and detectors) the µs per
chunk its ``Signal.feed`` calls took; "rest of the engine" is the join, columns, versions,
performance and alert settling. A signal's cost per call is fixed + per value, so the gap
between chunk sizes is what many models with few events each pay (issue 15's ratio).
Timing wraps ``Signal.feed`` (~0.3 µs per call added). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import collections
import gc
import time
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.many_models import LABEL_LAG, _feed, _warm_up, batches, labelled_stream
from streams.engine.config import MonitorConfig
from streams.engine.engine import Engine
from streams.engine.signals import Signal


def measure(
    chunk: int, predictions: int, layout: Mapping[str, Any] | None = None
) -> tuple[float, int, dict[str, tuple[float, int]]]:
    """(seconds in ``Engine.process``, events, {signal kind: (seconds, calls)}); ``layout``:
    the features, as ``labelled_stream``'s keyword arguments (default: its own)."""
    features = dict(layout or {})
    engine = Engine(MonitorConfig())
    _feed(engine, labelled_stream(1, 1500, **features), 10_000, False)
    stream = labelled_stream(1, predictions, first_round=1500 + LABEL_LAG, seed=1, **features)
    chunks = list(batches(stream, chunk))
    spent: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter[str] = collections.Counter()
    feed = Signal.feed

    def timed(signal: Signal, values: Any) -> Any:
        start = time.perf_counter()
        try:
            return feed(signal, values)
        finally:
            kind = f"{signal.name.split(':')[0]}: {', '.join(signal.slots)}"
            spent[kind] += time.perf_counter() - start
            calls[kind] += 1

    Signal.feed = timed  # type: ignore[method-assign,assignment]
    try:
        start = time.perf_counter()
        for records in chunks:
            engine.process(records)
        total = time.perf_counter() - start
    finally:
        Signal.feed = feed  # type: ignore[method-assign]
    events = sum(len(records) for records in chunks)
    return total, events, {kind: (spent[kind], calls[kind]) for kind in spent}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chunk_cost", description=__doc__)
    parser.add_argument("--chunks", default="64,256,10000", help="records per process() call")
    parser.add_argument("--predictions", type=int, default=20_000, help="labelled, timed")
    args = parser.parse_args(argv)
    _warm_up(10_000)
    gc.collect()
    gc.freeze()
    for chunk in (int(c) for c in args.chunks.split(",")):
        total, events, kinds = measure(chunk, args.predictions)
        n = -(-events // chunk)
        print(
            f"\nchunks of {chunk} records: {total / n * 1e6:,.0f} µs per chunk, "
            f"{total / events * 1e6:.2f} µs per event, {events / total:,.0f} events/s"
        )
        print(f"{'signal: detectors':<48} {'µs/chunk':>9} {'calls/chunk':>11} {'µs/call':>8}")
        signals = 0.0
        for kind, (seconds, count) in sorted(kinds.items(), key=lambda kv: -kv[1][0]):
            signals += seconds
            print(
                f"{kind:<48} {seconds / n * 1e6:>9,.0f} {count / n:>11.1f} "
                f"{seconds / count * 1e6:>8.1f}"
            )
        print(f"{'rest of the engine':<48} {(total - signals) / n * 1e6:>9,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
