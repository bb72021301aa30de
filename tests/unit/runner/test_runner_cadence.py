"""The checkpoint cadence: every N events or S seconds, and, while behind, checkpoints held
to their share of the loop's time."""

from __future__ import annotations

import pytest

from streams.engine.config import CheckpointConfig
from streams.runner.cadence import CheckpointCadence


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def cadence(clock: Clock, **config: float) -> CheckpointCadence:
    return CheckpointCadence(CheckpointConfig(**config), clock=clock)  # type: ignore[arg-type]


def test_due_after_every_events_or_every_seconds_whichever_first(clock: Clock) -> None:
    c = cadence(clock, every_events=1000, every_seconds=5.0)
    assert not c.due(999, behind=False)
    assert c.due(1000, behind=False)
    clock.now += 4.9
    assert not c.due(0, behind=False)
    clock.now += 0.1
    assert c.due(0, behind=False)


def test_behind_a_costly_checkpoint_waits_until_it_is_its_share_of_the_time(
    clock: Clock,
) -> None:
    c = cadence(clock, every_events=1000, every_seconds=5.0, max_share=0.1)
    c.done(took=2.0)  # every model of a backlog: 2 s
    clock.now += 19.9
    assert not c.due(10**6, behind=True)  # 2 s would be more than 10 % of 21.9 s
    clock.now += 0.1
    assert c.due(10**6, behind=True)
    assert c.pause == pytest.approx(20.0)


def test_caught_up_the_configured_cadence_holds_whatever_the_last_checkpoint_took(
    clock: Clock,
) -> None:
    c = cadence(clock, every_events=1000, every_seconds=5.0, max_share=0.1)
    c.done(took=2.0)
    clock.now += 5.0
    assert c.due(0, behind=False)  # the live tail: its replay stays short
    assert not c.due(0, behind=True)


def test_cheap_checkpoints_are_not_delayed(clock: Clock) -> None:
    c = cadence(clock, every_events=1000, every_seconds=5.0, max_share=0.1)
    c.done(took=0.05)  # 0.5 s of pause: far less than the cadence
    clock.now += 0.5
    assert c.due(1000, behind=True)
    clock.now += 4.5
    assert c.due(0, behind=True)


def test_an_idle_ping_forgets_the_last_checkpoints_cost(clock: Clock) -> None:
    c = cadence(clock, every_events=1000, every_seconds=5.0, max_share=0.1)
    c.done(took=3.0)
    clock.now += 30.0
    c.pinged()
    assert c.pause == 0.0
    clock.now += 5.0
    assert c.due(0, behind=True)


def test_the_pause_never_exceeds_max_pause_seconds(clock: Clock) -> None:
    c = cadence(clock, every_events=1000, every_seconds=5.0, max_share=0.1)
    c.done(took=30.0)  # Redis struggling: 300 s by the share alone
    assert c.pause == 60.0  # the default limit, half the CheckpointStale alert's 120 s
    clock.now += 60.0
    assert c.due(0, behind=True)
