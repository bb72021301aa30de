"""The throughput benchmark's split of the monitor's time by step: each step is charged its
own time only, also when a nested step raises (the README quotes the split)."""

from __future__ import annotations

import pytest

from benchmarks.throughput import PhaseClock


class Ticks:
    """A clock that reads 0, 1, 2, ... seconds, one tick per reading."""

    def __init__(self) -> None:
        self.now = -1.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_a_step_is_charged_without_the_steps_it_calls() -> None:
    clock = PhaseClock(Ticks())
    leaf = clock.timed("engine", lambda: None)
    middle = clock.timed("ckpt", lambda: [leaf(), leaf()])
    outer = clock.timed("poll", lambda: middle())

    outer()  # poll 0..1; ckpt 1..2, 3..4, 5..6; engine 2..3, 4..5; poll again 6..7
    assert dict(clock.seconds) == {"poll": 2.0, "ckpt": 3.0, "engine": 2.0}
    assert sum(clock.seconds.values()) == 7.0  # the whole span, every second charged once


def test_a_step_that_raises_is_charged_and_its_caller_resumes() -> None:
    clock = PhaseClock(Ticks())

    def fail() -> None:
        raise RuntimeError("broker gone")

    failing = clock.timed("decode", fail)

    def caller() -> None:
        with pytest.raises(RuntimeError):
            failing()

    clock.timed("poll", caller)()  # poll 0..1, decode 1..2, poll 2..3
    assert dict(clock.seconds) == {"poll": 2.0, "decode": 1.0}
    clock.timed("poll", lambda: None)()  # nothing left running: 3..4
    assert clock.seconds["poll"] == 3.0
