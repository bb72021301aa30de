"""Offline replay of recorded events through the monitor engine: ``driftradar backtest``.

:mod:`~streams.backtest.sources` reads events (JSONL, Parquet, or the Kafka topics),
:mod:`~streams.backtest.replay` runs them through :class:`streams.engine.Engine` exactly as
``driftradar run`` would and keeps the alerts and each detector's statistic and threshold
over time, :mod:`~streams.backtest.summary` measures them against change points and the
false-alarm budget, :mod:`~streams.backtest.tune` searches detector weights so a stable
span meets a budget, and :mod:`~streams.backtest.report` draws the HTML report.
"""

from streams.backtest.replay import Backtest, replay
from streams.backtest.sources import read_files, read_topics
from streams.backtest.summary import SignalSummary, summarise

__all__ = ["Backtest", "SignalSummary", "read_files", "read_topics", "replay", "summarise"]
