"""How the demo shows itself: a live rich view for a terminal, plain log lines otherwise.

The live view (:func:`render`) is a header (phase, clock, where things run), a table of the
models (version, events/s, predictions/s, counts, verification), a table of each signal's
state, and the latest happenings (alerts, the retrain request, the deployment, the
verification). :class:`PlainLog` prints each happening once, plus a status line now and
then, for CI and pipes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any, Final, TextIO

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from streams.demo.state import DemoState

__all__ = ["PlainLog", "render", "signal_rows"]

#: Happenings shown in the live view.
SHOWN: Final = 14
#: Seconds between two status lines in the plain log.
STATUS_EVERY: Final = 10.0


def signal_rows(status: Mapping[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(signal, state, detectors in drift) per signal of a model's status; the many
    ``quality:*`` signals are folded into one row.

    >>> status = {"signals": {"feature:age": {"adwin": {"drift": True}, "psi": {"drift": False}},
    ...                       "quality:age": {"type": {"drift": False}}}}
    >>> signal_rows(status)
    [('feature:age', 'drift', ['adwin']), ('quality (1 signals)', 'ok', [])]
    """
    rows: list[tuple[str, str, list[str]]] = []
    quality: list[str] = []
    quality_count = 0
    for name, detectors in status.get("signals", {}).items():
        drifting = [d for d, s in detectors.items() if s.get("drift")]
        if name.startswith("quality:"):
            quality_count += 1
            quality += [f"{name}/{d}" for d in drifting]
            continue
        rows.append((name, "drift" if drifting else "ok", drifting))
    if quality_count:
        rows.append((f"quality ({quality_count} signals)", "drift" if quality else "ok", quality))
    return rows


def render(state: DemoState, header: str, now: float, duration: float) -> RenderableType:
    """The live view of ``state`` at ``now`` (epoch seconds)."""
    elapsed = now - state.started
    title = Text.assemble(
        ("driftradar demo", "bold"),
        f"  {elapsed:5.0f} s / {duration:.0f} s   phase: ",
        (state.phase, "bold cyan"),
    )
    models = Table(expand=True, title="models (from the monitor's checkpoints in Redis)")
    for column in (
        "model",
        "version",
        "events/s",
        "predictions/s",
        "predictions",
        "labels",
        "joined",
        "verification",
    ):
        models.add_column(column, justify="left" if column in {"model", "version"} else "right")
    signals = Table(expand=True, title="signals of the current version")
    signals.add_column("model")
    signals.add_column("signal")
    signals.add_column("state")
    signals.add_column("detectors in drift")
    for model_id, status in state.models.items():
        events, predictions = state.rates.get(model_id, (0.0, 0.0))
        verification = status.get("verification") or {}
        verdict = verification.get("state", "-")
        if verdict == "pending":
            verdict = f"pending {verification.get('labelled_events')}/{verification.get('needed')}"
        models.add_row(
            model_id,
            str(status.get("model_version")),
            f"{events:,.0f}",
            f"{predictions:,.0f}",
            f"{status.get('predictions', 0):,}",
            f"{status.get('ground_truth', 0):,}",
            f"{status.get('joined', 0):,}",
            verdict,
        )
        for name, flag, drifting in signal_rows(status):
            style = "bold red" if flag == "drift" else "green"
            signals.add_row(model_id, name, Text(flag, style=style), ", ".join(drifting))
    lines = Text()
    for item in state.happenings[-SHOWN:]:
        lines.append(f"{item.at:6.1f}s  ", style="dim")
        lines.append(item.text + "\n", style=item.style)
    story = Text(
        "still to happen: " + "; ".join(state.missing())
        if state.missing()
        else "the story is complete",
        style="dim" if state.missing() else "bold green",
    )
    return Group(
        Panel(Text.assemble(title, "\n", header), expand=True),
        models,
        signals,
        Panel(lines, title="alerts, retrain requests, deployments, verification", expand=True),
        story,
    )


class PlainLog:
    """Prints each happening of ``state`` once, and a status line every few seconds."""

    def __init__(self, state: DemoState, out: TextIO | None = None) -> None:
        self.state = state
        self.out = out or sys.stdout
        self._printed = 0
        self._next_status = 0.0

    def say(self, text: str) -> None:
        stamp = time.time() - self.state.started if self.state.started else 0.0
        print(f"[demo {stamp:6.1f}s] {text}", file=self.out, flush=True)

    def update(self, now: float) -> None:
        fresh = self.state.noted - self._printed
        self._printed = self.state.noted
        for item in self.state.happenings[-fresh:] if fresh else []:
            print(f"[demo {item.at:6.1f}s] {item.text}", file=self.out, flush=True)
        if now >= self._next_status:
            self._next_status = now + STATUS_EVERY
            for line in self.status_lines():
                self.say(line)

    def status_lines(self) -> list[str]:
        out = []
        for model_id, status in self.state.models.items():
            events, predictions = self.state.rates.get(model_id, (0.0, 0.0))
            drifting = [name for name, flag, _ in signal_rows(status) if flag == "drift"]
            out.append(
                f"status {model_id}@{status.get('model_version')}: {events:,.0f} events/s, "
                f"{predictions:,.0f} predictions/s, {status.get('predictions', 0):,} predictions, "
                f"{status.get('joined', 0):,} joined; in drift: {', '.join(drifting) or 'none'}"
            )
        return out
