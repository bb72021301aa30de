"""What one more feature costs a model: memory and engine time per numeric and categorical
feature, and what a model costs before its features.

Run ``python -m benchmarks.feature_cost [--models 100] [--trace-models 20] [--repeat 3]``
(about two minutes on 2 cores). Three layouts of ``benchmarks.many_models``'s stream
(every prediction labelled, default detectors) are measured, each in a fresh interpreter:
the *base* (2 numeric + 1 categorical features), ``+10 numeric`` and ``+10 categorical``.
For each:

* ``traced KiB``: memory per model that tracemalloc sees (``--trace-models`` models after
  1 200 predictions and 200 more, one metrics view and one ``/metrics`` render: what a
  ``driftradar run`` process holds per model, without allocator slack);
* ``RSS KiB``: the process's RSS growth per model for ``--models`` models, the same load,
  after the view and the render, read after ``gc.collect()`` and the runner's release of
  free pages (what an operator sizes with);
* ``µs/event``: ``Engine.process`` time per event of one model past its warm-up, fed in
  chunks of 256 records (what the runner hands the engine per model when many models share
  a batch) and of 10 000 (one busy model), as ``benchmarks.chunk_cost`` times them, the
  best of ``--repeat`` runs.

A numeric or categorical feature's cost is the difference to the base divided by 10; the
model's own cost is the base minus its three features. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Sequence
from typing import Any, Final

from benchmarks import chunk_cost
from benchmarks.many_models import (
    MIB,
    _rss,
    _warm_up,
    loaded_and_scraped,
)
from streams.engine.config import MonitorConfig

__all__ = ["main"]

#: Added features per layout beyond the base (the cost of one is the difference / ADDED).
ADDED: Final = 10
#: name: (numeric feature count, categorical feature count)
LAYOUTS: Final = {"base": (2, 1), "+10 numeric": (2 + ADDED, 1), "+10 categorical": (2, 1 + ADDED)}
#: Categories of the categorical features, in turn (those of ``benchmarks.engine_speed``).
CATEGORY_SETS: Final = (("basic", "premium", "pro"), ("eu", "us", "apac", "latam"))
LOAD: Final = 1200
STEADY: Final = 200
BATCH: Final = 10_000
CHUNKS: Final = (256, 10_000)
#: Labelled predictions timed per chunk size (as ``benchmarks.chunk_cost``).
TIMED: Final = 20_000
KIB: Final = 1024


def _layout(name: str) -> dict[str, Any]:
    numeric, categorical = LAYOUTS[name]
    return {
        "numeric_features": [f"num_{i}" for i in range(numeric)],
        "categorical_features": {
            f"cat_{i}": CATEGORY_SETS[i % len(CATEGORY_SETS)] for i in range(categorical)
        },
    }


def measure(name: str, models: int, trace_models: int, repeat: int) -> dict[str, Any]:
    """Child mode: every figure of one layout (the engine times: the best of ``repeat``)."""
    from streams.engine.engine import Engine

    layout = _layout(name)
    _warm_up(BATCH)
    before = _rss(release=True)
    engine = Engine(MonitorConfig())
    runner = loaded_and_scraped(engine, models, LOAD, STEADY, BATCH, **layout)
    rss_kib = (_rss(release=True) - before) / KIB / models
    del engine, runner
    gc.collect()

    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    engine = Engine(MonitorConfig())
    runner = loaded_and_scraped(engine, trace_models, LOAD, STEADY, BATCH, **layout)
    gc.collect()
    traced_kib = (tracemalloc.get_traced_memory()[0] - start) / KIB / trace_models
    tracemalloc.stop()
    del engine, runner
    gc.collect()

    gc.freeze()  # as chunk_cost does: what is left is not scanned by every collection
    us_per_event = {}
    for size in CHUNKS:
        runs = [chunk_cost.measure(size, TIMED, layout) for _ in range(repeat)]
        us_per_event[str(size)] = min(spent / events for spent, events, _ in runs) * 1e6
    return {"traced_kib": traced_kib, "rss_kib": rss_kib, "us_per_event": us_per_event}


def _child(name: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.feature_cost",
        "--layout",
        name,
        "--models",
        str(args.models),
        "--trace-models",
        str(args.trace_models),
        "--repeat",
        str(args.repeat),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"layout {name!r} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _row(label: str, figures: dict[str, Any]) -> str:
    speeds = figures["us_per_event"]
    return f"{label:<46} {figures['traced_kib']:>10.1f} {figures['rss_kib']:>9.1f} " + " ".join(
        f"{speeds[str(size)]:>12.2f}" for size in CHUNKS
    )


def _combine(*terms: tuple[float, dict[str, Any]]) -> dict[str, Any]:
    """The sum of ``weight * figures``, figure by figure."""
    return {
        "traced_kib": sum(w * f["traced_kib"] for w, f in terms),
        "rss_kib": sum(w * f["rss_kib"] for w, f in terms),
        "us_per_event": {
            str(size): sum(w * f["us_per_event"][str(size)] for w, f in terms) for size in CHUNKS
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.feature_cost", description=__doc__)
    parser.add_argument("--models", type=int, default=100, help="models for the RSS figure")
    parser.add_argument("--trace-models", type=int, default=20, help="models traced")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.layout is not None:
        print(json.dumps(measure(args.layout, args.models, args.trace_models, args.repeat)))
        return 0
    rows = {name: _child(name, args) for name in LAYOUTS}
    base = rows["base"]
    numeric = _combine((1 / ADDED, rows["+10 numeric"]), (-1 / ADDED, base))
    categorical = _combine((1 / ADDED, rows["+10 categorical"]), (-1 / ADDED, base))
    n_numeric, n_categorical = LAYOUTS["base"]
    own = _combine((1, base), (-n_numeric, numeric), (-n_categorical, categorical))
    heads = " ".join(f"{f'µs/ev @{size}':>12}" for size in CHUNKS)
    print(
        f"per model, default detectors, every prediction labelled; RSS over {args.models} "
        f"models, traced over {args.trace_models}; µs per event in chunks of one model's records"
    )
    print(f"{'':<46} {'traced KiB':>10} {'RSS KiB':>9} {heads}")
    print("-" * (46 + 21 + 13 * len(CHUNKS)))
    for name, (n, c) in LAYOUTS.items():
        print(_row(f"{name} ({n} numeric + {c} categorical)", rows[name]))
    print(_row("one numeric feature", numeric))
    print(_row("one categorical feature", categorical))
    print(_row("the model before its features", own))
    print(
        f"(RSS per model over {args.models} models: a model of N numeric and C categorical "
        f"features ~ {own['rss_kib']:.0f} + {numeric['rss_kib']:.0f} N + "
        f"{categorical['rss_kib']:.0f} C KiB; {MIB // KIB} KiB = 1 MiB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
