"""When the loop checkpoints: every ``every_events`` records or ``every_seconds``, whichever
comes first, and, while the consumer is behind, never so often that checkpoints take more
than ``max_share`` of the loop's time.

Under a backlog every model changes between two checkpoints, so each one encodes and writes
all of them (1 to 1.5 s at 300 models, 3 to 4 s at 1 000): on the fixed 5 s cadence that
was up to half of a many-model member's time. Like Flink's minimum pause between
checkpoints, but scaled by what the last one took, the next one waits at least
``took / max_share`` seconds while the consumer is behind, and at most ``max_pause_seconds``
(so a crash replays at most that much of the backlog, and the ``CheckpointStale`` alert,
120 s, stays quiet). Once caught up, the configured cadence holds again (the live tail's
replay stays short).

>>> from streams.engine.config import CheckpointConfig
>>> now = [0.0]
>>> cadence = CheckpointCadence(CheckpointConfig(every_seconds=5, max_share=0.1),
...                             clock=lambda: now[0])
>>> cadence.done(took=1.5)  # a checkpoint of every model of a backlog
>>> now[0] = 6.0
>>> cadence.due(0, behind=True), cadence.due(0, behind=False)
(False, True)
>>> now[0] = 15.0  # 1.5 s / 0.1 after it
>>> cadence.due(0, behind=True)
True
"""

from __future__ import annotations

import time
from collections.abc import Callable

from streams.engine.config import CheckpointConfig

__all__ = ["CheckpointCadence"]


class CheckpointCadence:
    """Decides when the next checkpoint is due; told when one is made and what it took."""

    def __init__(
        self, config: CheckpointConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._clock = clock
        self.last = clock()  # when the last checkpoint (or idle PING) ended
        self.took = 0.0  # what the last checkpoint took, in seconds

    @property
    def pause(self) -> float:
        """The least time between checkpoints while behind, from what the last one took."""
        return min(self.took / self.config.max_share, self.config.max_pause_seconds)

    def due(self, since: int, *, behind: bool) -> bool:
        """Whether to checkpoint now, ``since`` records after the last checkpoint; ``behind``:
        the consumer has a backlog (its last poll was a full batch)."""
        elapsed = self._clock() - self.last
        if behind and elapsed < self.pause:
            return False
        return since >= self.config.every_events or elapsed >= self.config.every_seconds

    def done(self, took: float) -> None:
        """A checkpoint that took ``took`` seconds has just ended."""
        self.last = self._clock()
        self.took = took

    def pinged(self) -> None:
        """Nothing was unsaved: an idle PING stands in for the checkpoint (it costs ~0)."""
        self.done(0.0)
