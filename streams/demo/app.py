"""`driftradar demo`, end to end: stack, topics, configuration, the monitor, the retrain
worker and the simulator's two phases, watched live; then the summary; then everything it
started is stopped — on success, on failure and on Ctrl-C/SIGTERM alike.

The steps, in order::

    broker + Redis (configured, else a LocalStack) -> topics -> config file
      -> `driftradar run` + `driftradar retrain-worker --action local`   (subprocesses)
      -> `driftradar simulate` phase 1 (stable -> data drift)
      -> `driftradar simulate` phase 2 (concept drift, --follow-deployments)
      -> watch: alerts, retrain request, deployment, verification, status
      -> summary (read the labelled predictions back) -> stop everything
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Final, TextIO

import yaml
from rich.console import Console, RenderableType
from rich.live import Live

from streams.core.errors import DriftradarError
from streams.core.settings import DEFAULT_METRICS_PORT
from streams.core.topics import ensure_topics
from streams.demo.plan import FIRST_VERSION, PARTITIONS, DemoPlan
from streams.demo.processes import Children, driftradar_command
from streams.demo.state import DemoState
from streams.demo.summary import Summary, measure, read_back, summarise
from streams.demo.view import PlainLog, render
from streams.demo.watch import Watcher
from streams.stack import LocalStack

__all__ = ["DemoError", "DemoOptions", "run_demo"]

#: Seconds between two refreshes of the watcher and the view.
TICK: Final = 0.25
#: Seconds kept at the end of ``--duration`` for the summary and stopping.
CLOSING_SECONDS: Final = 8.0
#: Seconds the monitor gets to catch up once the simulator has stopped.
CATCH_UP_SECONDS: Final = 3.0


class DemoError(DriftradarError):
    """Something the demo needs broke (a child died, the stack did not start)."""


class _Stop(BaseException):
    """SIGTERM: unwind like Ctrl-C, so that every child and server is stopped."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    duration: float = 150.0
    rate: float = 400.0
    seed: int = 1
    headless: bool = False
    metrics_port: int | None = None  # None: the default port if free, else any free port
    keep_logs: bool = False


def run_demo(options: DemoOptions, out: TextIO | None = None) -> int:
    """Run the demo; 0 when the whole story happened, 1 otherwise, 130 when interrupted."""
    out = out or sys.stdout
    console = Console(file=out)
    headless = options.headless or not console.is_terminal
    state = DemoState(started=time.time())
    log = PlainLog(state, out)
    workdir = Path(tempfile.mkdtemp(prefix="driftradar-demo-"))
    ok = False
    try:
        with _sigterm_unwinds(), ExitStack() as stack:
            summary = _run(options, state, log, console, headless, workdir, stack)
            print(summary.text, file=out, flush=True)
            ok = summary.complete
            if not ok:
                log.say(f"the story did not complete; logs kept in {workdir}")
            return 0 if ok else 1
    except DemoError as exc:
        print(f"driftradar demo: {exc}", file=sys.stderr, flush=True)
        print(f"driftradar demo: logs kept in {workdir}", file=sys.stderr, flush=True)
        return 1
    except (KeyboardInterrupt, _Stop):
        print("driftradar demo: interrupted; everything it started is stopped", file=out)
        return 130
    finally:
        if ok and not options.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(
    options: DemoOptions,
    state: DemoState,
    log: PlainLog,
    console: Console,
    headless: bool,
    workdir: Path,
    stack: ExitStack,
) -> Summary:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or ""
    redis_url = os.environ.get("REDIS_URL") or ""
    if not (bootstrap and redis_url):
        log.say("starting the local stack (tansu broker + Redis)")
        local = stack.enter_context(LocalStack(kafka=not bootstrap, redis=not redis_url))
        bootstrap = bootstrap or local.bootstrap
        redis_url = redis_url or local.redis_url
    shared = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("REDIS_URL"))
    port = options.metrics_port if options.metrics_port is not None else _metrics_port()
    plan = DemoPlan(
        duration=options.duration, rate=options.rate, seed=options.seed, metrics_port=port
    )
    if shared:  # a shared broker/Redis: topics and groups of our own, so demos never mix
        plan = plan.unique()
    ensure_topics(bootstrap, plan.topics.all(), PARTITIONS)
    config_path = workdir / "demo.yaml"
    config_path.write_text(yaml.safe_dump(plan.config(), sort_keys=False), encoding="utf-8")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "REDIS_URL": redis_url,
        "DRIFTRADAR_CONFIG": str(config_path),
        "DRIFTRADAR_GROUP_ID": plan.group_id,
    }
    children = stack.enter_context(Children(workdir, env))
    monitor = children.start("monitor", driftradar_command("run", "--config", str(config_path)))
    worker = children.start(
        "retrain-worker",
        driftradar_command("retrain-worker", "--action", "local", "--config", str(config_path)),
    )
    header = (
        f"broker {bootstrap}   Redis {redis_url}   topics {plan.topics.prefix or '(default names)'}"
        f"\nmetrics http://127.0.0.1:{port}/metrics   config {config_path}   logs {workdir}"
    )
    log.say(header.replace("\n", "   "))
    watcher = Watcher(bootstrap, redis_url, plan.topics, plan.group_id, state)
    stack.callback(watcher.close)
    plan = dataclasses.replace(plan, start_time=time.time())  # event time of prediction 0
    deadline = state.started + options.duration - CLOSING_SECONDS
    phases = [("simulate-1", plan.simulate_args(1)), ("simulate-2", plan.simulate_args(2))]
    sim = children.start(phases[0][0], driftradar_command("simulate", *phases[0][1]))
    next_phase = 1

    def step(now: float) -> None:
        watcher.poll(0.0)
        state.set_phase(_phase(plan, state, now), now)
        for child in (monitor, worker):
            if not child.running:
                raise DemoError(
                    f"{child.name} stopped unexpectedly (exit code {child.returncode}):\n"
                    f"{child.log_tail()}"
                )

    def view(now: float) -> RenderableType:
        return render(state, header, now, options.duration)

    with _live(console, log, view, headless) as show:
        while True:
            now = time.time()
            step(now)
            if sim.returncode is not None:
                if sim.returncode != 0:
                    raise DemoError(
                        f"{sim.name} failed (exit code {sim.returncode}):\n{sim.log_tail()}"
                    )
                if next_phase >= len(phases):
                    break
                name, args = phases[next_phase]
                sim = children.start(name, driftradar_command("simulate", *args))
                next_phase += 1
            if now >= deadline:
                log.say("duration reached: stopping the simulator")
                sim.stop()
                break
            show(now)
            time.sleep(TICK)
        catch_up = time.time() + CATCH_UP_SECONDS
        while time.time() < catch_up:
            now = time.time()
            step(now)
            show(now)
            time.sleep(TICK)
    if not headless:  # the live view showed the latest lines only: the whole story, once
        print("the story as it happened:", file=log.out)
    log.update(time.time())
    log.say("reading the labelled predictions back to measure performance")
    segments = measure(read_back(bootstrap, plan), plan)
    return summarise(state, segments, time.time() - state.started)


def _phase(plan: DemoPlan, state: DemoState, now: float) -> str:
    """What the demo is showing now: the world's phase, then the retrain and recovery."""
    serving = {str(s.get("model_version")) for s in state.models.values()}
    if state.deployments and serving - {FIRST_VERSION, "None"}:
        return f"recovery ({', '.join(sorted(serving))} serving)"
    if state.deployments:
        return "deployed, waiting for the new version's predictions"
    if state.requests:
        return "retraining"
    return plan.phase_at(now)


@contextmanager
def _live(
    console: Console, log: PlainLog, view: Callable[[float], RenderableType], headless: bool
) -> Iterator[Callable[[float], None]]:
    """``show(now)``: refresh the live view, or print the new log lines."""
    if headless:
        yield log.update
        return
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        yield lambda now: live.update(view(now))


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises :class:`_Stop` in the main thread, so ``finally`` blocks run."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _metrics_port(preferred: int = DEFAULT_METRICS_PORT) -> int:
    """``preferred`` if nothing listens there, else a free port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise DemoError("no free port for /metrics")
