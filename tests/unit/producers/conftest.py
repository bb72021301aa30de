"""Fixtures for the producer tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from simulated_stream import Stream, run_stream


@pytest.fixture
def simulate() -> Callable[..., Stream]:
    """``simulate(scenario="data-drift", events=..., seed=...)`` -> a decoded :class:`Stream`."""
    return run_stream
