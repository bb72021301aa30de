"""The many-models benchmark runs its in-process part end to end on a tiny load (it is the
command the README sizes deployments with; a crash in it goes unnoticed otherwise)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks import many_models


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "benchmarks.many_models", "--quick", "--no-e2e", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_tiny_load_without_the_memory_breakdown_prints_the_table() -> None:
    done = _run("--models", "1", "--predictions", "50", "--steady", "10", "--trace-models", "0")
    assert done.returncode == 0, done.stderr
    assert "targets (issue 15) at 1 models" in done.stdout
    assert "where a model's memory goes" not in done.stdout


def test_negative_trace_models_is_refused_with_its_name() -> None:
    with pytest.raises(SystemExit) as exit_info:
        many_models.main(["--quick", "--models", "1", "--no-e2e", "--trace-models", "-1"])
    assert exit_info.value.code == 2
