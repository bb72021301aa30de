"""The backtest's HTML report: one self-contained page (plotly.js inlined, no network).

Per model: a table of its signals (alarms, false alarms, first detections, budget used);
per signal, each detector's statistic and threshold over the replay (x: the model's
prediction index; ``metric:*`` shows the metric against its baseline limit), alerts marked;
per drifted feature, the reference and current distributions (bin or category shares) of
its window tests at the first alert. ADWIN has no running statistic (it reports one only
when it cuts its window): its alerts are marked, without a line.
"""

from __future__ import annotations

import html
from bisect import bisect_right
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from streams.backtest.replay import Backtest
from streams.backtest.summary import ModelSummary, event_seconds

__all__ = ["write_report"]

#: Sets ``data-js-error`` on <body> when a script fails (the Chromium test reads it).
_ERROR_HOOK: Final = (
    "<script>window.addEventListener('error', function (e) {"
    "document.body.setAttribute('data-js-error', String(e.message));});</script>"
)
_STYLE: Final = (
    "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
    "table{border-collapse:collapse;margin:8px 0 24px}td,th{border:1px solid #ccc;"
    "padding:4px 8px;text-align:left;font-size:13px}th{background:#f3f3f3}"
    ".bad{color:#b00020;font-weight:600}</style>"
)


def _signal_figure(
    model: str, signal: str, traces: Sequence[dict[str, Any]], alerts: list[tuple[int, str]]
) -> go.Figure | None:
    detectors: list[str] = []
    for trace in traces:
        for label, (statistic, _) in trace["signals"].get(signal, {}).items():
            if statistic is not None and label not in detectors and label != "adwin":
                detectors.append(label)
    rows = max(1, len(detectors))
    figure = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, subplot_titles=detectors or [signal]
    )
    for row, label in enumerate(detectors, start=1):
        points = [
            (trace["predictions"], *trace["signals"][signal][label])
            for trace in traces
            if label in trace["signals"].get(signal, {})
        ]
        xs = [p[0] for p in points]
        figure.add_trace(
            go.Scatter(x=xs, y=[p[1] for p in points], name=f"{label} statistic", mode="lines"),
            row=row,
            col=1,
        )
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=[p[2] for p in points],
                name=f"{label} threshold",
                mode="lines",
                line={"dash": "dash"},
            ),
            row=row,
            col=1,
        )
    for position, detector in alerts:
        figure.add_vline(x=position, line={"color": "#b00020", "width": 1})
        figure.add_annotation(
            x=position,
            y=1,
            yref="paper",
            text=f"alert [{detector}]",
            showarrow=False,
            font={"color": "#b00020", "size": 10},
            xanchor="left",
        )
    if not detectors and not alerts:
        return None
    figure.update_layout(
        title=f"{model} · {signal}", height=160 + 170 * rows, margin={"t": 70, "b": 30}
    )
    figure.update_xaxes(title_text="prediction index", row=rows, col=1)
    return figure


def _distribution_figure(model: str, signal: str, results: dict[str, Any]) -> go.Figure | None:
    for label, result in results.items():
        details = result.get("details", {})
        before, after = details.get("proportions_before"), details.get("proportions_after")
        if not before or not after:
            continue
        if "categories" in details:
            names = [str(c) for c in details["categories"]]
        else:
            edges = details.get("bin_edges", [])
            names = [f"bin {i + 1}" for i in range(len(before))]
            if len(edges) == len(before) + 1:
                names = [f"{edges[i]:.4g} to {edges[i + 1]:.4g}" for i in range(len(before))]
        figure = go.Figure(
            [
                go.Bar(x=names, y=before, name="reference"),
                go.Bar(x=names, y=after, name="current window"),
            ]
        )
        figure.update_layout(
            title=f"{model} · {signal}: reference vs current ({label}, at the first alert)",
            barmode="group",
            height=380,
            yaxis_title="share",
        )
        return figure
    return None


def _table(summary: ModelSummary, changes: Sequence[int]) -> str:
    head = "".join(f"<th>first detection after {c} (predictions)</th>" for c in changes)
    rows = []
    for signal in summary.signals:
        alarms = ", ".join(f"#{p} [{d}] {t}" for p, t, d, _ in signal.alarms[:6])
        more = f" … (+{len(signal.alarms) - 6})" if len(signal.alarms) > 6 else ""
        found = [signal.first_detection.get(c) for c in changes]
        cells = "".join(f"<td>{'missed' if d is None else d}</td>" for d in found)
        bad = ' class="bad"' if signal.false_alarms else ""
        rows.append(
            f"<tr><td>{html.escape(signal.signal)}</td><td>{len(signal.alarms)}</td>"
            f"<td{bad}>{signal.false_alarms}</td>{cells}<td>{html.escape(alarms + more)}</td></tr>"
        )
    return (
        f"<p>{summary.predictions:,} predictions; stable span {summary.stable_predictions:,}; "
        f"false alarms {summary.false_alarms} ({summary.false_alarms_per_100k:.2f} per 100k); "
        f"budget used {summary.budget_used:.2f} of alarms.expected_run_time "
        f"{summary.expected_run_time:,.0f}</p>"
        "<table><tr><th>signal</th><th>alarms</th><th>false alarms</th>"
        f"{head}<th>alarms (position [detector] event time)</th></tr>{''.join(rows)}</table>"
    )


def write_report(
    backtest: Backtest,
    summaries: Sequence[ModelSummary],
    changes: Sequence[int],
    path: str | Path,
) -> int:
    """Write the report; returns the number of charts."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>driftradar backtest</title>",
        _STYLE,
        "</head><body>",
        _ERROR_HOOK,
        "<h1>driftradar backtest</h1>",
    ]
    charts = 0
    include_js: bool | str = True  # plotly.js once, inline: the page works offline
    for summary in summaries:
        model = summary.model_id
        parts.append(f"<h2>{html.escape(model)}</h2>")
        parts.append(_table(summary, changes))
        traces = backtest.traces.get(model, [])
        names = sorted({name for trace in traces for name in trace["signals"]})
        alerted = {s.signal: s for s in summary.signals}
        figures = []
        times = backtest.prediction_times.get(model, [])
        for name in names:
            # an alert's x is the model's prediction index at its event time (error and
            # metric alerts count joined pairs in their `position`)
            marks = (
                [(bisect_right(times, event_seconds(t)), d) for _, t, d, _ in alerted[name].alarms]
                if name in alerted
                else []
            )
            figure = _signal_figure(model, name, traces, marks)
            if figure is not None:
                figures.append(figure)
        for (owner, signal), results in sorted(backtest.distributions.items()):
            if owner == model:
                figure = _distribution_figure(model, signal, results)
                if figure is not None:
                    figures.append(figure)
        for figure in figures:
            parts.append(
                figure.to_html(full_html=False, include_plotlyjs=include_js, default_width="100%")
            )
            include_js = False
            charts += 1
    parts.append("</body></html>")
    Path(path).write_text("\n".join(parts), encoding="utf-8")
    return charts
