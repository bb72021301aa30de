"""Hundreds of models in one monitor process: memory per model, throughput, idle cost.

Run ``python -m benchmarks.many_models`` (about ten minutes on 2 cores) or
``python -m benchmarks.many_models --quick`` (well under a minute, no end-to-end part).
Each model has 10 numeric and 2 categorical features (those of ``benchmarks.engine_speed``)
and every prediction is labelled 30 s later (event time); the records of all models are
interleaved as a real stream is, and handed to the engine in batches of ``--batch`` records
(as the runner does). Nothing is asserted: speeds are ratios against a baseline measured in
the same run, and the issue-15 targets are printed beside the figures.

1. **In process**, one child process per load (so each RSS is its own), for ``--models``
   (default 1, 100, 300, 1000): ``Engine(MonitorConfig())`` is fed ``--predictions`` labelled
   predictions per model (default 1200: past the 1000-prediction warm-up) — the *load* —
   then ``--steady`` more per model — the *steady* part, after every warm-up. The 1-model
   row is fed the same total as the largest load. Columns:

   * ``load ev/s``, ``steady ev/s``: events/s of ``Engine.process`` alone (the records are
     made outside the timed calls), and their ratio to the 1-model row (target >= 0.60);
   * ``MiB/model``: RSS growth from before the engine was built, divided by the models,
     after the load and the steady part; then, cumulatively, once the metrics hold the
     models (``+metrics``), after the checkpoints timed below (``+ckpt``: what a checkpoint
     keeps, each idle detector's encoded snapshot) and after ``/metrics`` was rendered
     (``+scrape``: each model's lines, the long families deflated, kept until it changes) —
     the last is what a ``driftradar run`` process holds (target <= 0.5 MiB). Each RSS is read after
     ``gc.collect()`` and, as the runner does after every checkpoint, after free pages went
     back to the system (``streams.runner.allocator.release_free_memory``, unless
     ``--no-tune-malloc``); what the allocator held before that is printed apart. RSS still
     holds what the allocators cannot give back (partly used pages and arenas): the 1-model
     row, after millions of events, is mostly that; the figure means something at hundreds
     of models;
   * ``view``, ``tick``, ``turn``: what an idle runner does, timed with the real classes
     (``streams.runner.app.Runner``'s own observer, a ``MonitorMetrics``, the engine): the
     engine view copied into the metrics (``LoopObserver.maybe_view``, forced due, + the
     heartbeat) every ``view_seconds``, ``Engine.tick`` every ``tick_seconds``, and a turn
     with nothing polled (``Engine.process([])``, a view not due, the heartbeat) every
     ``poll_timeout``; best of ``--repeat`` (at least 2 past 15 s). ``idle core`` =
     CPU-seconds per second of all three at the runner's default cadences (target <= 0.05
     core at 1000 models); above 1, a view outlasts its cadence and the idle loop does
     nothing but views (one core busy);
   * ``checkpoint``: one checkpoint of every partition when every model (and every detector:
     each model got a labelled prediction) changed since the last one
     (``Engine.checkpoint_partition``: state and status of the changed models, encoded as the
     store writes them; Redis's own time not included), paid every ``checkpoint.every_events``
     or ``checkpoint.every_seconds`` while events arrive;
     ``ckpt few``: the same after events of only 10 models (a checkpoint costs the models
     that changed), and its ``ratio`` to ``checkpoint``; ``1st scrape``: rendering
     ``/metrics`` as it is served (``streams.metrics.exposition``) once every model changed,
     ``scrape``: again with nothing changed (an idle monitor's scrape), ``gz scrape``: the
     same served as Prometheus asks for it (``Accept-Encoding: gzip``, through
     ``streams.metrics.exposition.metrics_app``); it is not in ``idle core`` (its cadence is
     the scraper's: a line prints its share at deploy/prometheus's 5 s interval).

2. **Where a model's memory goes** (``--trace-models``, default 20; 0 skips it): tracemalloc
   over the same load (and the first metrics view and scrape), each allocation charged to the
   innermost frame in this repository (``detectors/``, ``streams/``); KiB per model per
   source file, with the library that made most of it. ``benchmarks/many_models.py`` rows
   are the input events the engine keeps (in a real process the decoder makes them).

3. **End to end** (``--e2e``, on unless ``--quick``): a private local stack (broker + Redis of
   this run, 4-partition topics) and a real ``driftradar run`` subprocess. First with no
   events (its fixed idle CPU and RSS), then after ``--e2e-models`` models x
   ``--e2e-predictions`` labelled predictions were produced (default 300 x 600 = 1,200 events
   per model, the figure of issue 15): the time from its partition assignment to the
   checkpoint holding every offset (includes up to one ``checkpoint.every_seconds``), events/s,
   CPU-seconds per 1000 events, then its CPU over ``--idle-seconds`` of idleness (cores) and
   its RSS per model beyond the empty monitor's, before and after one gzip scrape of
   ``/metrics`` (``scraped``: as Prometheus scrapes it, each model's metrics are then kept as
   deflated text instead of the samples of the last view), and its largest RSS during the load
   (``peak RSS``: what a backlog costs on top — the per-model chunks held, the batches in
   flight, a checkpoint's encoding). Then **scale-out**: two ``driftradar run``
   members of a new group read the same events (two partitions each); their aggregate
   events/s against the one member's, from the first assignment to the last checkpoint.

``--profile`` adds, for the largest load, the top functions (cumulative time) of the idle
turns (views + ticks) under cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import functools
import gc
import io
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import psutil

from benchmarks.engine_speed import CATEGORICAL, NUMERIC, T0
from streams.core.events import FeatureValue, GroundTruth, Prediction
from streams.engine.config import MonitorConfig
from streams.engine.records import InputRecord
from streams.runner.chunks import ModelChunks

__all__ = ["main"]

#: Event-time seconds between a prediction and its label; one prediction per model per second.
LABEL_LAG: Final = 30
#: Input partitions (in-process records and the end-to-end topics): models spread over them.
PARTITIONS: Final = 4
#: Issue 15's targets at 1000 models (printed, never asserted).
TARGET_RATIO: Final = 0.60
TARGET_IDLE_CORE: Final = 0.05
TARGET_MIB: Final = 0.5
#: Seconds between scrapes of a monitor in deploy/prometheus/prometheus.yml.
PROMETHEUS_INTERVAL: Final = 5.0
#: Models that receive events between two checkpoints in the ``ckpt few`` figure.
FEW: Final = 10
REPO: Final = Path(__file__).resolve().parents[1]
#: The "library" of an allocation made by a repository file's own code.
OWN: Final = "-"
#: Frames kept per allocation by tracemalloc (enough to reach a repository frame).
TRACE_FRAMES: Final = 5
MIB: Final = 2**20


# -- the stream -------------------------------------------------------------------------------


def labelled_stream(
    models: int,
    predictions: int,
    *,
    first_round: int = 0,
    seed: int = 0,
    numeric_features: Sequence[str] = NUMERIC,
    categorical_features: Mapping[str, Sequence[str]] = CATEGORICAL,
) -> Iterator[InputRecord]:
    """``predictions`` rounds: each round one prediction per model, and the labels of the
    round ``LABEL_LAG`` earlier; then the last labels. Event time advances 1 s per round.
    Features: ``numeric_features`` (standard normal; the score depends on the first two)
    and ``categorical_features`` (name: its values, drawn uniformly)."""
    if len(numeric_features) < 2:
        raise ValueError(f"the score needs 2 numeric features, got {len(numeric_features)}")
    rng = np.random.default_rng(seed + first_round)
    truth = np.zeros((predictions, models), dtype=bool)
    categorical = list(categorical_features.items())
    offset = 0
    block = max(1, 5000 // models)  # rounds drawn at once
    for start in range(0, predictions + LABEL_LAG, block):
        stop = min(start + block, predictions)
        if start < stop:
            numeric = rng.normal(0.0, 1.0, (stop - start, models, len(numeric_features)))
            cats = [
                rng.integers(0, len(values), (stop - start, models)) for _, values in categorical
            ]
            scores = 1.0 / (1.0 + np.exp(-(numeric[..., 0] - 0.5 * numeric[..., 1])))
            truth[start:stop] = rng.random(scores.shape) < scores
            rows, score_rows = numeric.tolist(), scores.tolist()
            cat_rows = [c.tolist() for c in cats]
        for r in range(start, min(start + block, predictions + LABEL_LAG)):
            event_round = first_round + r
            if r < predictions:
                k = r - start
                for m in range(models):
                    features: dict[str, FeatureValue] = dict(
                        zip(numeric_features, rows[k][m], strict=True)
                    )
                    for (name, values), column in zip(categorical, cat_rows, strict=True):
                        features[name] = values[column[k][m]]
                    t = T0 + event_round + m / models
                    event = Prediction(
                        f"e{event_round}", f"model-{m}", features, score_rows[k][m], "v1", t
                    )
                    yield InputRecord(event, m % PARTITIONS, offset, t)
                    offset += 1
            q = r - LABEL_LAG
            if q >= 0:
                labels = truth[q].tolist()
                for m in range(models):
                    t = T0 + first_round + q + m / models + LABEL_LAG
                    label = GroundTruth(f"e{first_round + q}", f"model-{m}", float(labels[m]), t)
                    yield InputRecord(label, m % PARTITIONS, offset, t)
                    offset += 1


def batches(records: Iterator[InputRecord], size: int) -> Iterator[list[InputRecord]]:
    batch: list[InputRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- in process -------------------------------------------------------------------------------


def _rss(release: bool = False) -> int:
    """RSS after a garbage collection and, if ``release``, after free pages went back."""
    from streams.runner.allocator import release_free_memory

    gc.collect()
    if release:
        release_free_memory()
    return int(psutil.Process().memory_info().rss)


def _feed(
    engine: Any, records: Iterator[InputRecord], size: int, chunked: bool = True
) -> tuple[int, float]:
    """(events, seconds inside ``engine.process``). ``chunked``: through the runner's
    per-model chunks, as ``driftradar run`` feeds a backlog (every batch full); its clock
    is the time spent processing, so ``max_wait`` flushes as it would in the runner."""
    events, seconds = 0, 0.0
    chunks = ModelChunks(clock=lambda: seconds, batch_size=size) if chunked else None
    for batch in batches(records, size):
        start = time.perf_counter()
        due = batch if chunks is None else chunks.take(batch, under_load=len(batch) == size)
        engine.process(due)
        seconds += time.perf_counter() - start
        events += len(batch)
    while chunks is not None and len(chunks):  # caught up: two polls' worth a call
        start = time.perf_counter()
        engine.process(chunks.take([], under_load=False))
        seconds += time.perf_counter() - start
    return events, seconds


def _best(
    action: Callable[[], object],
    repeat: int,
    setup: Callable[[], object] | None = None,
    budget: float = 15.0,
) -> float:
    """The least time of ``repeat`` runs (of at least 2 once ``budget`` seconds are spent),
    each after an untimed ``setup``."""
    times: list[float] = []
    while len(times) < repeat and (len(times) < 2 or sum(times) < budget):
        if setup is not None:
            setup()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def _runner_defaults() -> dict[str, float]:
    """The runner's idle cadences: its settings' defaults (whatever they are now)."""
    from streams.runner.app import RunnerSettings

    defaults: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(RunnerSettings)}
    return {
        name: float(defaults[name]) for name in ("view_seconds", "tick_seconds", "poll_timeout")
    }


def _runner(engine: Any) -> Any:
    """A ``Runner`` around ``engine`` (never started: no connection), for its observer and
    metrics exactly as ``driftradar run`` builds them."""
    from prometheus_client import CollectorRegistry

    from streams.metrics import MonitorMetrics
    from streams.runner.app import Runner, RunnerSettings

    config: MonitorConfig = engine.config
    caps = [config.defaults.max_features, *(m.max_features for m in config.models.values())]
    metrics = MonitorMetrics(CollectorRegistry(), max_features=max(caps))
    settings = RunnerSettings(
        bootstrap="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0", group_id="b"
    )
    return Runner(settings, engine, metrics=metrics)


def _checkpoint(engine: Any) -> int:
    """One checkpoint of every partition as the runner makes it, up to Redis: the engine's
    changes, encoded as the store encodes them (model snapshots and the partitions' own state
    as msgpack, status as JSON); returns the bytes it would write."""
    import msgspec

    written = 0
    for p in sorted(engine.partitions()):
        changes = engine.checkpoint_partition(p)
        written += len(msgspec.msgpack.encode(changes.state))
        written += sum(len(msgspec.msgpack.encode(m)) for m in changes.models.values())
        written += sum(len(msgspec.json.encode(m)) for m in changes.status.values())
        engine.checkpoint_saved(p)
    return written


def _few(record: InputRecord) -> bool:
    """Whether ``record`` is of one of the ``FEW`` models that change between checkpoints."""
    return int(record.event.model_id.rsplit("-", 1)[1]) < FEW


def _warm_up(batch: int) -> None:
    """Everything a model needs imported and initialised once per process (detector
    libraries, metrics), by one throw-away model past its warm-up: not a per-model cost."""
    from streams.engine.engine import Engine

    engine = Engine(MonitorConfig())
    # a full batch too, so that the allocator's high-water mark of one batch is not charged
    _feed(engine, labelled_stream(1, max(1100, batch), seed=99), batch)
    runner = _runner(engine)
    _view(runner.observer, engine)
    engine.tick(time.time())
    _checkpoint(engine)


def _view(observer: Any, engine: Any) -> None:
    """One view the way the loop does it (``_observe``), made due first."""
    if hasattr(observer, "_last_view"):
        observer._last_view = None  # noqa: SLF001 -- due now, whatever the clock says
    while not observer.maybe_view(engine):  # another way of deciding: wait until it is due
        time.sleep(0.05)
    observer.heartbeat()


def _viewed_now(observer: Any) -> None:
    """As if the last view had just been made (a view may take longer than its cadence)."""
    if hasattr(observer, "_last_view"):
        observer._last_view = time.monotonic()  # noqa: SLF001


def measure_load(args: argparse.Namespace) -> dict[str, Any]:
    """Child mode: one load (``args.child`` models) in this fresh process."""
    from streams.engine.engine import Engine
    from streams.metrics.exposition import exposition, metrics_app
    from streams.runner.allocator import tune_malloc

    models = args.child
    scale = args.baseline_of if models == 1 else 1  # the 1-model row: the largest load's total
    load, steady = args.predictions * scale, args.steady * scale
    _warm_up(args.batch)
    gc.collect()
    gc.freeze()  # as the runner does before its loop: start-up objects are never rescanned
    if args.tune_malloc:
        tune_malloc()  # as the runner does too (streams.runner.allocator)
    release = args.tune_malloc  # the runner releases free pages after each checkpoint
    rss0 = _rss(release)
    engine = Engine(MonitorConfig())
    load_events, load_seconds = _feed(
        engine, labelled_stream(models, load), args.batch, args.chunks
    )
    after_load = _rss(release)
    steady_records = labelled_stream(models, steady, first_round=load + LABEL_LAG, seed=1)
    steady_events, steady_seconds = _feed(engine, steady_records, args.batch, args.chunks)
    unreleased = _rss()
    rss1 = _rss(release)
    cadence = _runner_defaults()
    runner = _runner(engine)
    observer = runner.observer
    start = time.perf_counter()
    _view(observer, engine)  # the first view makes every series: not an idle one
    first_view = time.perf_counter() - start
    rss2 = _rss(release)
    view = _best(lambda: _view(observer, engine), args.repeat)
    now = [time.time()]

    def tick() -> None:
        now[0] += cadence["tick_seconds"]
        engine.tick(now[0])

    tick()  # the first tick starts every throughput window
    tick_best = _best(tick, args.repeat)

    def turn() -> None:  # a poll that returned nothing: the view is not due
        _viewed_now(observer)
        engine.process([])
        observer.maybe_view(engine)
        observer.heartbeat()

    turn_best = _best(turn, args.repeat)
    idle = (
        view / cadence["view_seconds"]
        + tick_best / cadence["tick_seconds"]
        + turn_best / cadence["poll_timeout"]
    )

    rounds = iter(range(load + steady + LABEL_LAG, 10**9, 2))

    def every_model_changed() -> None:  # a prediction and a label each: every detector too
        engine.process(list(labelled_stream(models, 1, first_round=next(rounds))))

    def few_models_changed() -> None:
        first = next(rounds)
        engine.process([r for r in labelled_stream(models, 1, first_round=first) if _few(r)])

    checkpoint_best = _best(
        lambda: _checkpoint(engine), max(1, args.repeat // 2), every_model_changed
    )
    few_best = _best(lambda: _checkpoint(engine), args.repeat, few_models_changed)
    every_model_changed()
    all_bytes = _checkpoint(engine)
    few_models_changed()
    few_bytes = _checkpoint(engine)
    served = runner.metrics

    def render() -> bytes:
        return exposition(served.registry, served.snapshots)[0]

    served_app = metrics_app(served.registry, served.snapshots)

    def render_gzip() -> bytes:  # what Prometheus asks for (Accept-Encoding: gzip)
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics"}
        environ["HTTP_ACCEPT_ENCODING"] = "gzip"
        return b"".join(served_app(environ, lambda status, headers: None))

    gc.collect()
    before_scrape = _rss(release)  # (the checkpoints above may leave their own)
    start = time.perf_counter()
    render()  # the first scrape formats every model's lines
    first_scrape = time.perf_counter() - start
    scrape = _best(render, max(1, args.repeat // 2))
    gzip_scrape = _best(render_gzip, max(1, args.repeat // 2))
    gc.collect()
    rss3 = _rss(release)
    result: dict[str, Any] = {
        "models": models,
        "load_events": load_events,
        "load_per_s": load_events / load_seconds,
        "steady_events": steady_events,
        "steady_per_s": steady_events / steady_seconds if steady_seconds else float("nan"),
        "mib_per_model_load": (after_load - rss0) / MIB / models,
        "mib_per_model": (rss1 - rss0) / MIB / models,
        "mib_per_model_unreleased": (unreleased - rss0) / MIB / models,
        "released": release,
        "mib_per_model_metrics": (rss2 - rss0) / MIB / models,
        "mib_per_model_checkpoints": (before_scrape - rss0) / MIB / models,
        "mib_per_model_scrape": (rss3 - rss0) / MIB / models,
        "first_view_ms": first_view * 1e3,
        "view_ms": view * 1e3,
        "tick_ms": tick_best * 1e3,
        "turn_ms": turn_best * 1e3,
        "idle_core": idle,
        "checkpoint_ms": checkpoint_best * 1e3,
        "checkpoint_few_ms": few_best * 1e3,
        "checkpoint_mib": all_bytes / MIB,
        "checkpoint_few_mib": few_bytes / MIB,
        "first_scrape_ms": first_scrape * 1e3,
        "scrape_ms": scrape * 1e3,
        "gzip_scrape_ms": gzip_scrape * 1e3,
    }
    if args.profile:
        result["profile"] = _profile_idle(observer, engine, tick, args.repeat)
    return result


def _profile_idle(observer: Any, engine: Any, tick: Callable[[], None], turns: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(turns):
        _view(observer, engine)
        tick()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(20)
    return out.getvalue()


# -- where the memory goes --------------------------------------------------------------------


def _charge(traceback: tracemalloc.Traceback) -> tuple[str, str]:
    """(repository file of the innermost repository frame, the library below it or "")."""
    below = ""
    for frame in reversed(traceback):  # most recent first
        where = _repo_file(frame.filename)
        if where is not None:
            return where, below
        if not below:
            below = _library(Path(frame.filename))
    return "(outside the repository)", below


@functools.cache
def _repo_file(filename: str) -> str | None:
    """``filename`` relative to the repository, or None (libraries, generated code)."""
    if filename.startswith("<"):
        return None
    try:
        relative = Path(filename).resolve().relative_to(REPO)
    except ValueError:
        return None
    return None if relative.parts[0] in (".venv", "venv") else str(relative)


def _library(path: Path) -> str:
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    if path.name == "<string>":
        return "generated __init__"
    if path.name.startswith("<"):
        return path.name
    return f"stdlib {path.stem}"


def loaded_and_scraped(
    engine: Any, models: int, predictions: int, steady: int, batch: int, **layout: Any
) -> Any:
    """``engine`` fed the load and the steady part, then viewed and rendered for ``/metrics``
    as a running process would be; returns the runner, whose metrics hold what the view and
    the render left (``layout``: ``labelled_stream``'s feature keywords)."""
    from streams.metrics.exposition import exposition

    _feed(engine, labelled_stream(models, predictions, **layout), batch)
    more = labelled_stream(models, steady, first_round=predictions + LABEL_LAG, seed=1, **layout)
    _feed(engine, more, batch)
    runner = _runner(engine)
    _view(runner.observer, engine)
    exposition(runner.metrics.registry, runner.metrics.snapshots)  # what a scrape leaves
    return runner


def measure_breakdown(args: argparse.Namespace) -> dict[str, Any]:
    """Child mode: tracemalloc over a load of ``args.trace_models`` models."""
    from streams.engine.engine import Engine

    models = args.breakdown
    _warm_up(args.batch)
    gc.collect()
    tracemalloc.start(TRACE_FRAMES)
    before = tracemalloc.take_snapshot()
    engine = Engine(MonitorConfig())
    runner = loaded_and_scraped(engine, models, args.predictions, args.steady, args.batch)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    del runner  # (its metrics, alive until the snapshot)
    files: dict[str, int] = defaultdict(int)
    libraries: dict[str, Counter[str]] = defaultdict(Counter)
    for diff in after.compare_to(before, "traceback"):
        if diff.size_diff == 0 or any("importlib" in f.filename for f in diff.traceback):
            continue  # module state imported on first use: not a per-model cost
        where, below = _charge(diff.traceback)
        files[where] += diff.size_diff
        libraries[where][below or OWN] += diff.size_diff
    rows = []
    for where, size in sorted(files.items(), key=lambda item: -item[1]):
        library, part = libraries[where].most_common(1)[0]
        rows.append(
            {
                "file": where,
                "kib_per_model": size / 1024 / models,
                "library": library,
                "library_share": part / size if size > 0 else 0.0,
            }
        )
    return {
        "models": models,
        "total_mib_per_model": sum(files.values()) / MIB / models,
        "rows": rows,
    }


# -- end to end -------------------------------------------------------------------------------

E2E_GROUP_EMPTY: Final = "many-models-empty"
E2E_GROUP_LOAD: Final = "many-models-load"
E2E_GROUP_PAIR: Final = "many-models-pair"


def _produce(bootstrap: str, models: int, predictions: int) -> int:
    """The stream of ``models`` models on the contract's input topics; returns the count."""
    from confluent_kafka import Producer

    from streams.core.events import encode
    from streams.core.kafka import producer_config

    producer = Producer(producer_config(bootstrap, {"linger.ms": 20, "batch.size": 1_000_000}))
    sent = 0
    for record in labelled_stream(models, predictions):
        event = record.event
        topic = "predictions" if isinstance(event, Prediction) else "ground-truth"
        while True:
            try:
                producer.produce(topic, encode(event), event.model_id.encode())
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
    if producer.flush(120):
        raise RuntimeError("the benchmark's producer could not deliver every event")
    return sent


class Monitor:
    """A ``driftradar run`` subprocess with its log."""

    def __init__(self, env: dict[str, str], group: str, log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "run", "--group-id", group],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.ps = psutil.Process(self.process.pid)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def idle_cpu(self, seconds: float) -> float:
        """Cores used over ``seconds`` of wall time."""
        cpu, wall = self.cpu(), time.perf_counter()
        time.sleep(seconds)
        self.check()
        return (self.cpu() - cpu) / (time.perf_counter() - wall)

    def scrape(self) -> float:
        """Seconds of one ``/metrics`` scrape as Prometheus makes it (gzip accepted)."""
        ports = [
            c.laddr.port for c in self.ps.net_connections("tcp") if c.status == psutil.CONN_LISTEN
        ]
        for port in ports:  # the metrics server (port 0: a free one) is its only listener
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"}
            )
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as answer:
                answer.read()
            return time.perf_counter() - started
        raise RuntimeError(f"the monitor listens on no port:\n{self.tail()}")

    def check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"monitor exited ({self.process.returncode}):\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _checkpointed(client: Any, group: str) -> tuple[int, float]:
    """(offsets checkpointed in total, time of the latest checkpoint)."""
    from streams.checkpoint import CheckpointStore

    stored = CheckpointStore(client, group).statuses()
    total = sum(sum(s.offsets.values()) for s in stored)
    return total, max((s.updated_at for s in stored), default=0.0)


def _first_assigned(monitors: Sequence[Monitor], timeout: float = 120.0) -> float:
    """Wall-clock time at which the first of ``monitors`` was assigned partitions."""
    deadline = time.monotonic() + timeout
    while not any("assigned partitions" in m.log.read_text(errors="replace") for m in monitors):
        for monitor in monitors:
            monitor.check()
        if time.monotonic() > deadline:
            tails = "\n".join(m.tail() for m in monitors)
            raise RuntimeError(f"no monitor assigned within {timeout:.0f} s:\n{tails}")
        time.sleep(0.05)
    return time.time()


def _drain(
    monitors: Sequence[Monitor], client: Any, group: str, sent: int, timeout: float
) -> tuple[float, float, int]:
    """Seconds from the first assignment to the checkpoint holding all ``sent`` offsets, the
    CPU-seconds the members used meanwhile, and the largest RSS of one member (sampled every
    0.1 s)."""
    assigned = _first_assigned(monitors)
    cpu0 = sum(m.cpu() for m in monitors)
    peak = 0
    deadline = time.monotonic() + timeout
    while (done := _checkpointed(client, group))[0] < sent:
        for monitor in monitors:
            monitor.check()
            peak = max(peak, monitor.rss())
        if time.monotonic() > deadline:
            tails = "\n".join(m.tail() for m in monitors)
            raise RuntimeError(
                f"only {done[0]} of {sent} events checkpointed after {timeout:.0f} s:\n{tails}"
            )
        time.sleep(0.1)
    return done[1] - assigned, sum(m.cpu() for m in monitors) - cpu0, peak


def monitor_env(stack: Any, work: Path) -> dict[str, str]:
    """What a ``driftradar run`` on ``stack`` (a ``LocalStack``) needs in its environment:
    the contract's topics made with :data:`PARTITIONS` partitions, a config in ``work`` (the
    test group settings), ``/metrics`` on a free port."""
    import yaml
    from msgspec.structs import astuple

    from streams.core.kafka import TEST_GROUP
    from streams.core.settings import TOPICS
    from streams.core.topics import ensure_topics

    ensure_topics(stack.bootstrap, astuple(TOPICS), PARTITIONS)
    config = work / "monitor.yaml"
    config.write_text(yaml.safe_dump({"kafka": dict(TEST_GROUP)}))
    return {
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap,
        "REDIS_URL": stack.redis_url,
        "DRIFTRADAR_CONFIG": str(config),
        "DRIFTRADAR_METRICS_PORT": "0",
    }


def measure_e2e(args: argparse.Namespace) -> dict[str, Any]:
    import redis

    from streams.stack import LocalStack

    with tempfile.TemporaryDirectory(prefix="driftradar-many-models-") as tmp:
        work = Path(tmp)
        with LocalStack(work / "stack") as stack:
            env = {**os.environ, **monitor_env(stack, work)}
            empty = Monitor(env, E2E_GROUP_EMPTY, work / "empty.log")
            try:
                _first_assigned([empty])
                time.sleep(args.settle)
                empty_idle = empty.idle_cpu(args.idle_seconds)
                empty_rss = empty.rss()
            finally:
                empty.stop()
            started = time.perf_counter()
            sent = _produce(stack.bootstrap, args.e2e_models, args.e2e_predictions)
            produce_seconds = time.perf_counter() - started
            # Redis runs a checkpoint of every model (hundreds of MiB) as one script that
            # takes seconds: the statuses read every 0.1 s wait for it, past redis-py's 5 s
            client = redis.Redis.from_url(stack.redis_url, socket_timeout=120)
            monitor = Monitor(env, E2E_GROUP_LOAD, work / "load.log")
            try:
                load_seconds, load_cpu, load_peak = _drain(
                    [monitor], client, E2E_GROUP_LOAD, sent, args.e2e_timeout
                )
                time.sleep(args.settle)
                idle = monitor.idle_cpu(args.idle_seconds)
                rss = monitor.rss()
                scrape_seconds = monitor.scrape()  # as Prometheus: a model then keeps text
                scraped_rss = monitor.rss()
            finally:
                monitor.stop()
            # scale-out: two members of one group read the same events (2 partitions each)
            pair = [Monitor(env, E2E_GROUP_PAIR, work / f"pair-{i}.log") for i in (1, 2)]
            try:
                pair_seconds, pair_cpu, _ = _drain(
                    pair, client, E2E_GROUP_PAIR, sent, args.e2e_timeout
                )
            finally:
                for member in pair:
                    member.stop()
                client.close()
    return {
        "models": args.e2e_models,
        "events": sent,
        "produce_seconds": produce_seconds,
        "load_seconds": load_seconds,
        "load_per_s": sent / load_seconds,
        "cpu_ms_per_1000": load_cpu / sent * 1e6,
        "idle_core": idle,
        "rss_mib": rss / MIB,
        "empty_idle_core": empty_idle,
        "empty_rss_mib": empty_rss / MIB,
        "mib_per_model": (rss - empty_rss) / MIB / args.e2e_models,
        "scrape_seconds": scrape_seconds,
        "scraped_mib_per_model": (scraped_rss - empty_rss) / MIB / args.e2e_models,
        "peak_rss_mib": load_peak / MIB,
        "pair_seconds": pair_seconds,
        "pair_per_s": sent / pair_seconds,
        "pair_cpu_ms_per_1000": pair_cpu / sent * 1e6,
    }


# -- driver -----------------------------------------------------------------------------------


def _child(mode: str, value: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its last stdout line is the JSON result."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.many_models",
        f"--{mode}",
        str(value),
        "--predictions",
        str(args.predictions),
        "--steady",
        str(args.steady),
        "--batch",
        str(args.batch),
        "--repeat",
        str(args.repeat),
        "--baseline-of",
        str(args.baseline_of),
        "--trace-models",
        str(args.trace_models),
    ]
    if args.profile and value == args.baseline_of:
        command.append("--profile")
    if not args.chunks:
        command.append("--no-chunks")
    if not args.tune_malloc:
        command.append("--no-tune-malloc")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _print_loads(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    cadence = _runner_defaults()
    print(
        f"in process: Engine(MonitorConfig()), {len(NUMERIC)} numeric + {len(CATEGORICAL)} "
        f"categorical features, every prediction labelled; load = {args.predictions} "
        f"predictions + labels per model, steady = {args.steady} more per model (the 1-model "
        f"row: the largest load's total); batches of {args.batch}; idle at view every "
        f"{cadence['view_seconds']:g} s, tick every {cadence['tick_seconds']:g} s, a turn every "
        f"{cadence['poll_timeout']:g} s; best of {args.repeat}"
    )
    header = (
        f"{'models':>6} {'events':>9} {'load ev/s':>10} {'ratio':>6} {'steady ev/s':>11} "
        f"{'ratio':>6} {'MiB/model':>9} {'+metrics':>8} {'+ckpt':>8} {'+scrape':>8} "
        f"{'1st view':>9} "
        f"{'view':>9} {'tick':>8} {'turn':>8} {'idle core':>9} {'checkpoint':>10} {'ckpt few':>9} "
        f"{'ratio':>6} {'1st scrape':>10} {'scrape':>9} {'gz scrape':>9}"
    )
    print(header)
    print("-" * len(header))
    base = next((r for r in rows if r["models"] == 1), rows[0])
    for r in rows:
        print(
            f"{r['models']:>6} {r['load_events'] + r['steady_events']:>9} "
            f"{r['load_per_s']:>10,.0f} {r['load_per_s'] / base['load_per_s']:>6.2f} "
            f"{r['steady_per_s']:>11,.0f} {_ratio(r['steady_per_s'], base['steady_per_s']):>6.2f} "
            f"{r['mib_per_model']:>9.3f} {r['mib_per_model_metrics']:>8.3f} "
            f"{r['mib_per_model_checkpoints']:>8.3f} {r['mib_per_model_scrape']:>8.3f} "
            f"{r['first_view_ms']:>7.1f}ms {r['view_ms']:>7.1f}ms {r['tick_ms']:>6.2f}ms "
            f"{r['turn_ms']:>6.3f}ms {r['idle_core']:>9.3f} {r['checkpoint_ms']:>8.0f}ms "
            f"{r['checkpoint_few_ms']:>7.1f}ms {r['checkpoint_few_ms'] / r['checkpoint_ms']:>6.3f} "
            f"{r['first_scrape_ms']:>8.1f}ms {r['scrape_ms']:>7.1f}ms "
            f"{r['gzip_scrape_ms']:>7.1f}ms"
        )
    if any(r["idle_core"] > 1 for r in rows):
        print(
            "(idle core above 1: a view takes longer than its cadence, so an idle runner views "
            "back to back: one core busy, and batches wait behind the views)"
        )
    top = rows[-1]
    print(
        f"checkpoint at {top['models']} models: {top['checkpoint_ms']:.0f} ms and "
        f"{top['checkpoint_mib']:.1f} MiB to Redis when every model changed; after events of "
        f"{min(FEW, top['models'])} models {top['checkpoint_few_ms']:.1f} ms and "
        f"{top['checkpoint_few_mib']:.2f} MiB (engine and encoding; Redis's own time not "
        "included)"
    )
    if top["released"]:
        print(
            f"before free pages went back (the runner does it after each checkpoint), RSS held "
            f"{top['mib_per_model_unreleased']:.3f} MiB per model after the steady part, "
            f"against {top['mib_per_model']:.3f} after"
        )
    print(
        f"a gzip scrape (what Prometheus asks for) at {top['models']} models: "
        f"{top['gzip_scrape_ms']:.1f} ms, {top['gzip_scrape_ms'] / 1e3 / PROMETHEUS_INTERVAL:.3f} "
        f"core at the {PROMETHEUS_INTERVAL:g} s interval of deploy/prometheus (not in idle core)"
    )
    print(
        f"targets (issue 15) at {top['models']} models: idle <= {TARGET_IDLE_CORE} core "
        f"(now {top['idle_core']:.3f}); <= {TARGET_MIB} MiB per model (now "
        f"{top['mib_per_model_scrape']:.2f} with metrics, checkpoints and a scrape); "
        f"load ratio >= {TARGET_RATIO} (now "
        f"{top['load_per_s'] / base['load_per_s']:.2f}; steady "
        f"{_ratio(top['steady_per_s'], base['steady_per_s']):.2f})"
    )


def _ratio(value: float, base: float) -> float:
    """``value / base``; NaN without a base (``--steady 0`` times no steady part)."""
    return value / base if base else float("nan")


def _print_breakdown(breakdown: dict[str, Any], top: int) -> None:
    models = breakdown["models"]
    print(
        f"\nwhere a model's memory goes: tracemalloc, {models} models after the load, the "
        f"steady part, one metrics view and one scrape: "
        f"{breakdown['total_mib_per_model']:.3f} MiB per model traced (RSS also holds "
        "allocator slack and freed memory)"
    )
    header = (
        f"{'source file (innermost repository frame)':<44} {'KiB/model':>10} {'share':>6}"
        "  allocated mostly in"
    )
    print(header)
    print("-" * len(header))
    total = breakdown["total_mib_per_model"] * 1024
    for row in breakdown["rows"][:top]:
        library = row["library"]
        below = "the file itself" if library == OWN else f"{library} ({row['library_share']:.0%})"
        print(
            f"{row['file']:<44} {row['kib_per_model']:>10.1f} "
            f"{row['kib_per_model'] / total:>6.1%}  {below}"
        )
    rest = breakdown["rows"][top:]
    others = f"(the other {len(rest)} files)"
    print(f"{others:<44} {sum(r['kib_per_model'] for r in rest):>10.1f}")
    print(
        f"({Path(__file__).relative_to(REPO)}: the input events the engine keeps, e.g. "
        "predictions waiting for their label; a real process's decoder makes them)"
    )


def _print_e2e(e2e: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"\nend to end: one `driftradar run` on a private stack, {PARTITIONS} partitions, "
        f"default config; idle CPU over {args.idle_seconds:g} s, {args.settle:g} s after the "
        f"last checkpoint; produce took {e2e['produce_seconds']:.0f} s (not counted)"
    )
    header = (
        f"{'models':>6} {'events':>8} {'load':>7} {'events/s':>9} {'CPU ms/1k ev':>12} "
        f"{'idle core':>9} {'RSS':>8} {'MiB/model':>9} {'scraped':>9} {'peak RSS':>9}"
    )
    print(header)
    print("-" * len(header))
    print(
        f"{0:>6} {0:>8} {'-':>7} {'-':>9} {'-':>12} {e2e['empty_idle_core']:>9.3f} "
        f"{e2e['empty_rss_mib']:>4.0f} MiB {'-':>9} {'-':>9} {'-':>9}"
    )
    print(
        f"{e2e['models']:>6} {e2e['events']:>8} {e2e['load_seconds']:>5.1f} s "
        f"{e2e['load_per_s']:>9,.0f} {e2e['cpu_ms_per_1000']:>12.1f} {e2e['idle_core']:>9.3f} "
        f"{e2e['rss_mib']:>4.0f} MiB {e2e['mib_per_model']:>9.2f} "
        f"{e2e['scraped_mib_per_model']:>9.2f} {e2e['peak_rss_mib']:>5.0f} MiB"
    )
    print(
        f"(scraped: RSS per model after one gzip scrape of /metrics, "
        f"{e2e['scrape_seconds'] * 1e3:.0f} ms, as Prometheus makes them: each model's "
        "metrics are then kept as text instead of samples)"
    )
    print(
        f"2 members of one group, the same {e2e['events']} events: {e2e['pair_seconds']:.1f} s, "
        f"{e2e['pair_per_s']:,.0f} events/s in all ({e2e['pair_per_s'] / e2e['load_per_s']:.2f}x "
        f"one member), CPU {e2e['pair_cpu_ms_per_1000']:.1f} ms per 1000 events"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.many_models",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1,30,100 models; no end to end")
    parser.add_argument("--models", help="comma-separated loads (default 1,100,300,1000)")
    parser.add_argument("--predictions", type=int, default=1200, help="labelled, per model")
    parser.add_argument("--steady", type=int, help="more per model after the load (200)")
    parser.add_argument("--batch", type=int, default=10_000, help="records per process()")
    parser.add_argument("--repeat", type=int, default=5, help="idle turns timed (the best)")
    parser.add_argument(
        "--trace-models", type=int, help="models of the memory breakdown (20; 0: no breakdown)"
    )
    parser.add_argument("--top", type=int, default=12, help="rows of the memory breakdown")
    parser.add_argument("--profile", action="store_true", help="cProfile the idle turns")
    parser.add_argument(
        "--no-chunks",
        dest="chunks",
        action="store_false",
        help="feed the engine whole batches (the runner before per-model chunks)",
    )
    parser.add_argument(
        "--no-tune-malloc",
        dest="tune_malloc",
        action="store_false",
        help="leave glibc's malloc at its defaults (the runner before it tuned them)",
    )
    e2e = parser.add_mutually_exclusive_group()
    e2e.add_argument("--e2e", dest="e2e", action="store_true", default=None, help="end to end")
    e2e.add_argument("--no-e2e", dest="e2e", action="store_false")
    parser.add_argument("--e2e-models", type=int, default=300, help="models end to end")
    parser.add_argument("--e2e-predictions", type=int, default=600, help="per model, labelled")
    parser.add_argument("--e2e-timeout", type=float, default=1800.0, help="seconds for the load")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle CPU window")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring idle")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--breakdown", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--baseline-of", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.steady = args.steady if args.steady is not None else (100 if args.quick else 200)
    if args.trace_models is None:
        args.trace_models = 5 if args.quick else 20
    if args.trace_models < 0:
        parser.error(f"--trace-models must be >= 0, got {args.trace_models}")
    if args.child is not None:
        print(json.dumps(measure_load(args)))
        return 0
    if args.breakdown is not None:
        print(json.dumps(measure_breakdown(args)))
        return 0
    loads = sorted(
        {
            int(m)
            for m in (args.models or ("1,30,100" if args.quick else "1,100,300,1000")).split(",")
        }
    )
    args.baseline_of = max(loads)
    began = time.perf_counter()
    rows = [_child("child", models, args) for models in loads]
    _print_loads(rows, args)
    profile = rows[-1].get("profile")
    if args.trace_models > 0:
        _print_breakdown(_child("breakdown", args.trace_models, args), args.top)
    if profile:
        print(f"\nidle turns at {rows[-1]['models']} models under cProfile (views + ticks):")
        print(profile)
    if args.e2e if args.e2e is not None else not args.quick:
        _print_e2e(measure_e2e(args), args)
    print(f"\n({time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
