"""The event-time merge of the two input topics (streams.runner.align): the vectorised merge
equals the head-by-head merge, the result does not depend on how records were fetched, a
quiet side stops holding the other back only when caught up and idle, flow control."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.runner.align import Aligner, merge_order
from streams.runner.decode import Lane

TOPICS = ("p", "g")
keys = st.lists(st.integers(0, 20).map(float), max_size=30)


def head_merge(left: list[float], right: list[float]) -> list[tuple[int, int]]:
    """The reference: compare the heads, smaller first (ties: left); stop when one side is
    empty, because the other's next record could come first."""
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            out.append((0, i))
            i += 1
        else:
            out.append((1, j))
            j += 1
    # what remains of one side is certain only up to the other's last record
    while i < len(left) and right and max(left[: i + 1]) <= max(right):
        out.append((0, i))
        i += 1
    while j < len(right) and left and max(right[: j + 1]) < max(left):
        out.append((1, j))
        j += 1
    return out


@given(keys, keys)
@settings(max_examples=400, deadline=None)
def test_vectorised_merge_equals_the_head_by_head_merge(
    left: list[float], right: list[float]
) -> None:
    if not left or not right:
        return
    n_left, _, order = merge_order(np.asarray(left), np.asarray(right))
    got = [(0, int(k)) if k < n_left else (1, int(k) - n_left) for k in order]
    assert got == head_merge(left, right)


def _aligner(clock: Callable[[], float] = lambda: 0.0, **kw: float) -> Aligner:
    options = {"max_lead": 1e9, "max_idle": 5.0, "max_buffered": 10_000, **kw}
    aligner = Aligner(TOPICS, clock=clock, **options)  # type: ignore[arg-type]
    aligner.own(0, {})
    return aligner


def _feed(aligner: Aligner, topic: str, times: list[float], start: int) -> None:
    names = [f"{topic}{start + k}" for k in range(len(times))]
    offsets = list(range(start, start + len(times)))
    aligner.add({(topic, 0): Lane(list(times), names, offsets)})  # type: ignore[arg-type]


@given(
    st.lists(st.integers(0, 50).map(float), min_size=1, max_size=40),
    st.lists(st.integers(0, 50).map(float), min_size=1, max_size=40),
    st.lists(st.integers(1, 7), min_size=1, max_size=20),
)
@settings(max_examples=200, deadline=None)
def test_the_sequence_does_not_depend_on_fetch_sizes(
    p_times: list[float], g_times: list[float], chunks: list[int]
) -> None:
    """All at once, or fetched in any chunks with takes in between: the same sequence."""
    whole = _aligner()
    _feed(whole, "p", p_times, 0)
    _feed(whole, "g", g_times, 0)
    expected = whole.take(lambda t, p: False)

    piecewise = _aligner()
    got: list[object] = []
    fed = {"p": 0, "g": 0}
    times = {"p": p_times, "g": g_times}
    k = 0
    while fed["p"] < len(p_times) or fed["g"] < len(g_times):
        topic, size = "pg"[k % 2], chunks[k % len(chunks)]
        start = fed[topic]
        if start < len(times[topic]):
            _feed(piecewise, topic, times[topic][start : start + size], start)
            fed[topic] = min(len(times[topic]), start + size)
        got += piecewise.take(lambda t, p: False)
        k += 1
    assert got == expected
    assert piecewise.applied.offsets(0) == whole.applied.offsets(0)


def test_a_quiet_caught_up_side_stops_holding_the_other_after_max_idle() -> None:
    now = [0.0]
    aligner = _aligner(clock=lambda: now[0], max_idle=2.0)
    _feed(aligner, "p", [1.0, 2.0], 0)
    assert aligner.take(lambda t, p: True) == []  # labels may still come: wait
    assert aligner.status(0)["waiting_for"] == "g"
    now[0] = 1.9
    assert aligner.take(lambda t, p: True) == []
    now[0] = 2.0
    assert aligner.take(lambda t, p: True) == ["p0", "p1"]
    # free-running: later predictions go at once while labels stay quiet
    _feed(aligner, "p", [3.0], 2)
    assert aligner.take(lambda t, p: True) == ["p2"]
    # a late label still goes (behind what ran on); predictions keep running
    _feed(aligner, "g", [0.5], 0)
    _feed(aligner, "p", [4.0], 3)
    assert aligner.take(lambda t, p: True) == ["g0", "p3"]
    # a label ahead of the predictions: back to the strict order
    _feed(aligner, "g", [9.0], 1)
    _feed(aligner, "p", [5.0], 4)
    assert aligner.take(lambda t, p: True) == ["p4"]
    _feed(aligner, "p", [6.0], 5)
    assert aligner.take(lambda t, p: True) == ["p5"]
    assert aligner.status(0)["waiting_for"] == "p"


def test_a_side_with_data_on_the_broker_is_always_waited_for() -> None:
    now = [0.0]
    aligner = _aligner(clock=lambda: now[0], max_idle=1.0)
    _feed(aligner, "p", [1.0], 0)
    now[0] = 100.0
    assert aligner.take(lambda t, p: False) == []  # not caught up: never forced


def test_rejected_messages_at_the_head_go_at_once_and_keep_offsets_exact() -> None:
    aligner = _aligner()
    aligner.add(
        {("p", 0): Lane([float("-inf"), 5.0], ["bad", "p1"], [0, 1])}  # type: ignore[list-item]
    )
    assert aligner.take(lambda t, p: False) == ["bad"]
    assert aligner.applied.offsets(0) == {"p": 1}


def test_flow_control_pauses_the_leading_side_and_resumes_it_drained() -> None:
    aligner = _aligner(max_lead=10.0, max_buffered=4)
    _feed(aligner, "g", [0.0], 0)
    _feed(aligner, "p", [0.0, 1.0, 2.0], 0)
    aligner.take(lambda t, p: False)
    assert aligner.flow() == ([], [])
    _feed(aligner, "p", [30.0], 3)  # leads the labels by 30 s > 10 s
    aligner.take(lambda t, p: False)
    assert aligner.flow() == ([("p", 0)], [])
    assert aligner.status(0)["paused"] == ["p"]
    _feed(aligner, "g", [45.0], 1)
    assert aligner.take(lambda t, p: False) == ["p1", "p2", "p3"]
    assert aligner.flow() == ([("g", 0)], [("p", 0)])  # now the labels lead, predictions empty


def test_the_idle_time_counts_only_while_the_other_side_says_nothing() -> None:
    """Labels 30 s ahead of live predictions wait for them, however long the stream runs."""
    now = [0.0]
    aligner = _aligner(clock=lambda: now[0], max_idle=2.0)
    for k in range(10):  # a prediction and a label 30 s ahead every second
        _feed(aligner, "p", [float(k)], k)
        _feed(aligner, "g", [float(k) + 30.0], k)
        now[0] = float(k)
        assert aligner.take(lambda t, p: True) == [f"p{k}"]
    assert aligner.status(0)["waiting_for"] == "p"
    now[0] = 11.5  # the predictions stop: after max_idle the labels go
    assert aligner.take(lambda t, p: True) == [f"g{k}" for k in range(10)]
