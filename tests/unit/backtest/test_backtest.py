"""`driftradar backtest`: replay of the churn simulator's output, summary, tune, report.

The report test opens the page in headless Chromium (Debian's ``chromium``; ``.ci/run``
installs it): it must load without a script error and its charts must render (plotly's
SVG in the DOM, and a screenshot that is not a blank page). Without Chromium it skips,
saying why.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from producers.simulator import Outgoing, Simulation, SimulationConfig
from streams.backtest import read_files, replay, summarise
from streams.backtest.report import write_report
from streams.backtest.tune import stable_span, tune
from streams.cli import main
from streams.engine import MonitorConfig

CHANGE = 6000


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The churn simulator's data-drift scenario (change at prediction 6000) as JSONL."""
    path = tmp_path_factory.mktemp("backtest") / "churn.jsonl"
    config = SimulationConfig(scenario="data-drift", events=12_000, seed=1, change_at=CHANGE)
    with path.open("wb") as out:
        for item in Simulation(config):
            if isinstance(item, Outgoing):
                out.write(item.value + b"\n")
    return path


def test_replay_finds_the_change_and_no_false_alarm(simulated: Path) -> None:
    records, skipped = read_files([simulated])
    assert skipped == 0
    result = replay(records, MonitorConfig())
    (summary,) = summarise(result, [CHANGE])
    assert summary.predictions == 12_000
    assert summary.stable_predictions == CHANGE
    assert summary.false_alarms == 0
    detected = {s.signal: s.first_detection[CHANGE] for s in summary.signals}
    # the drifted inputs are found after the change, within the window tests' reach
    assert detected["feature:monthly_charges"] is not None
    assert detected["feature:monthly_charges"] < 1500
    assert all(delay is not None and delay >= 0 for delay in detected.values())


def test_false_alarms_before_the_change_use_up_the_budget(simulated: Path) -> None:
    records, _ = read_files([simulated])
    result = replay(records, MonitorConfig())
    # pretend the change happened at the end: every alert is then a false alarm
    (summary,) = summarise(result, [12_000])
    assert summary.false_alarms == len(result.alerts) > 0
    assert summary.budget_used == pytest.approx(summary.false_alarms / (12_000 / 1e6))
    assert summary.false_alarms_per_100k == pytest.approx(summary.false_alarms / 12_000 * 1e5)


def test_tune_weakens_the_kinds_that_alarm_on_the_stable_span(simulated: Path) -> None:
    records, _ = read_files([simulated])
    # a budget of 2000 predictions between false alarms is far too sensitive for a
    # 6000-prediction stable span... unless tuning makes the noisy kinds stricter
    tuned, log = tune(records, {}, [CHANGE], 2000.0, rounds=3)
    assert log
    assert log[0].startswith("round 1: churn:")
    alarms = tuned["models"]["churn"]["alarms"] if "churn" in tuned["models"] else {}
    config = MonitorConfig.from_mapping(tuned)
    assert config.model("churn").alarms.expected_run_time == 2000.0
    for weight in alarms.get("weights", {}).values():
        assert 0 < weight < 1
    assert len(stable_span(records, [CHANGE])) < len(records)


def test_the_command_prints_the_summary_and_writes_report_and_tuned_config(
    simulated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, tuned = tmp_path / "report.html", tmp_path / "tuned.yaml"
    code = main(
        [
            "backtest",
            str(simulated),
            "--change-at",
            str(CHANGE),
            "--report",
            str(report),
            "--tune",
            str(tuned),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "model churn: 12,000 predictions; stable span 6,000; false alarms 0" in out
    assert "feature:monthly_charges:" in out
    assert "first detection after 6000: +" in out
    assert report.stat().st_size > 1_000_000  # plotly.js inlined: works offline
    assert "<script src=" not in report.read_text()  # nothing loaded from the network
    MonitorConfig.from_mapping(yaml.safe_load(tuned.read_text()))


def test_bad_sources_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", str(tmp_path / "missing.jsonl")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["backtest"]) == 2


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_the_report_renders_in_headless_chromium(simulated: Path, tmp_path: Path) -> None:
    from PIL import Image

    assert CHROMIUM is not None
    records, _ = read_files([simulated])
    result = replay(records, MonitorConfig())
    page = tmp_path / "report.html"
    charts = write_report(result, summarise(result, [CHANGE]), [CHANGE], page)
    assert charts > 5
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "data-js-error" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert dom.count('class="main-svg"') >= charts  # plotly drew every chart
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            *flags,
            "--hide-scrollbars",
            "--window-size=1200,1600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (1600, 1200)
    # not blank: many distinct grey levels and a real spread (text, lines, plot areas)
    assert len(np.unique(pixels)) > 20
    assert pixels.std() > 10


def test_a_regime_column_gives_the_change_points() -> None:
    from streams.commands.backtest import _change_points
    from streams.core.events import Prediction
    from streams.engine import InputRecord

    regimes = ["a"] * 5 + ["b"] * 3 + ["a"] * 2
    records = [
        InputRecord(Prediction(f"e{i}", "m", {"regime": r}, 0.5), 0, i, 0.0)
        for i, r in enumerate(regimes)
    ]
    assert _change_points(records, "regime") == [5, 8]
