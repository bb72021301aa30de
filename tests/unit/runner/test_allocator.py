"""glibc malloc tuning (streams.runner.allocator): applied through mallopt on glibc, a
variable the user set wins, and it can be turned off."""

from __future__ import annotations

import platform

import pytest

from streams.runner.allocator import SETTINGS, tune_malloc

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
