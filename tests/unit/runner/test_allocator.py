"""glibc malloc tuning (streams.runner.allocator): applied through mallopt on glibc, a
variable the user set wins, it can be turned off, and free pages can be given back."""

from __future__ import annotations

import platform

import psutil
import pytest

from streams.runner.allocator import SETTINGS, release_free_memory, tune_malloc

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")


@glibc
def test_every_threshold_is_set_on_glibc() -> None:
    assert tune_malloc({}) == {variable: value for _, value, variable in SETTINGS}


@glibc
def test_a_threshold_the_user_set_is_left_alone() -> None:
    applied = tune_malloc({"MALLOC_TRIM_THRESHOLD_": "0"})
    assert "MALLOC_TRIM_THRESHOLD_" not in applied
    assert set(applied) == {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_"}


def test_it_can_be_turned_off() -> None:
    assert tune_malloc({"DRIFTRADAR_MALLOC_TUNING": "0"}) == {}


@glibc
def test_free_pages_go_back_to_the_system() -> None:
    """What a peak freed stays resident under the tuned trim threshold until released."""
    tune_malloc({})
    process = psutil.Process()
    blocks = [bytes(4096) for _ in range(20_000)]  # ~80 MiB of heap blocks
    del blocks
    kept = process.memory_info().rss
    assert release_free_memory()
    assert kept - process.memory_info().rss > 40 * 2**20
