"""State directory, pid-file handling and process identity, without starting any server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streams.stack import StackStateError
from streams.stack.daemon import (
    StackState,
    clear_state,
    load_state,
    render_exports,
    resolve_state_dir,
    save_state,
    stack_down,
    stack_status,
)
from streams.stack.process import ProcessRef, free_port, listens_on, stop_process, wait_until
from streams.stack.services import KAFKA, REDIS, RunningService


def _state(tmp_path: Path, ref: ProcessRef) -> StackState:
    return StackState(
        {
            "kafka": RunningService(KAFKA, ref, 19092, tmp_path / "kafka.log", "/bin/tansu"),
            "redis": RunningService(REDIS, ref, 16379, tmp_path / "redis.log", "/bin/redis"),
        },
        partitions=4,
    )


def _not_running() -> ProcessRef:
    """Our own pid with another start time: what a pid file looks like after pid reuse."""
    return ProcessRef(os.getpid(), 12345.0)


def test_state_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_state_dir(None, {}) == tmp_path / ".driftradar"
    assert resolve_state_dir(None, {"DRIFTRADAR_STATE_DIR": "env-dir"}) == tmp_path / "env-dir"
    assert resolve_state_dir("flag-dir", {"DRIFTRADAR_STATE_DIR": "x"}) == tmp_path / "flag-dir"


def test_state_round_trips_and_writes_pid_files(tmp_path: Path) -> None:
    state = _state(tmp_path, ProcessRef.of(os.getpid()))
    save_state(tmp_path, state)
    loaded = load_state(tmp_path)
    assert loaded is not None
    assert loaded.to_json() == state.to_json()
    assert (tmp_path / "kafka.pid").read_text() == f"{os.getpid()}\n"
    assert (tmp_path / "redis.pid").read_text() == f"{os.getpid()}\n"


def test_no_state_is_none(tmp_path: Path) -> None:
    assert load_state(tmp_path) is None
    assert stack_status(tmp_path) == {}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "cannot read"),
        (json.dumps({"version": 99, "services": {}}), "not a driftradar stack state file"),
        (json.dumps({"version": 1, "partitions": 4}), "not a driftradar stack state file"),
    ],
)
def test_unreadable_state_names_the_file(tmp_path: Path, content: str, reason: str) -> None:
    (tmp_path / "stack.json").write_text(content)
    with pytest.raises(StackStateError, match=reason) as info:
        load_state(tmp_path)
    assert str(tmp_path / "stack.json") in str(info.value)


def test_clear_state_keeps_only_the_logs(tmp_path: Path) -> None:
    save_state(tmp_path, _state(tmp_path, _not_running()))
    (tmp_path / "redis-data").mkdir()
    (tmp_path / "redis.log").write_text("log\n")
    clear_state(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["redis.log"]


def test_down_after_a_crash_forgets_stale_pids_without_signalling(tmp_path: Path) -> None:
    """The recorded pid is ours but the start time differs: must not be killed."""
    save_state(tmp_path, _state(tmp_path, _not_running()))
    assert stack_status(tmp_path)["kafka"]["alive"] is False
    assert stack_down(tmp_path) == {"redis": False, "kafka": False}
    assert not (tmp_path / "stack.json").exists()
    assert not (tmp_path / "kafka.pid").exists()
    assert stack_down(tmp_path) == {}  # twice is fine


def test_down_without_a_state_dir_creates_nothing(tmp_path: Path) -> None:
    assert stack_down(tmp_path / "absent") == {}
    assert not (tmp_path / "absent").exists()


def test_exports_are_shell_lines(tmp_path: Path) -> None:
    assert render_exports(_state(tmp_path, _not_running())) == (
        "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092\n"
        "export REDIS_URL=redis://127.0.0.1:16379/0\n"
    )


def test_process_identity_includes_start_time() -> None:
    assert ProcessRef.of(os.getpid()).is_alive()
    assert not _not_running().is_alive()


def test_a_zombie_counts_as_gone() -> None:
    child = subprocess.Popen(["true"])
    ref = ProcessRef.of(child.pid)  # the unreaped child stays as a zombie
    try:
        assert wait_until(lambda: not ref.is_alive(), timeout=5)
    finally:
        child.wait()


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored() -> None:
    code = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    code += "print('ready', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    ref = ProcessRef.of(child.pid)
    assert stop_process(ref, timeout=0.3, popen=child) is True
    assert child.returncode == -9
    assert stop_process(ref, timeout=0.3, popen=child) is False


def test_listens_on_sees_only_our_listening_port() -> None:
    me = ProcessRef.of(os.getpid())
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert listens_on(me, port)
        assert not listens_on(me, free_port())
        assert not listens_on(_not_running(), port)


def test_our_own_server_is_stopped_even_when_its_start_time_reads_differently() -> None:
    """The start time psutil reports moves with the wall clock; a child we started is
    stopped through its Popen whatever it reads (a stepped clock once left test stacks
    running after the session)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        ref = ProcessRef.of(child.pid)
        stepped = ProcessRef(ref.pid, ref.create_time - 3.0)  # the clock moved 3 s since
        assert stepped.process() is None  # identity by start time alone would call it gone
        assert stop_process(stepped, timeout=5.0, popen=child)
        assert child.poll() is not None
        assert not stop_process(stepped, timeout=5.0, popen=child)  # already stopped
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="start ticks come from /proc")
def test_a_server_started_before_a_clock_step_is_still_ours_and_is_stopped() -> None:
    """``stack down`` knows its servers from the state file only (no Popen): their start in
    clock ticks since boot identifies them whatever the wall clock did since."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        ref = ProcessRef.of(child.pid)
        assert ref.start_ticks is not None
        stepped = ProcessRef(ref.pid, ref.create_time - 3600.0, ref.start_ticks)
        assert stepped.is_alive()
        reused = ProcessRef(ref.pid, ref.create_time, ref.start_ticks + 1, ref.boot_id)
        assert not reused.is_alive()  # another process under the same pid
        rebooted = ProcessRef(ref.pid, ref.create_time, ref.start_ticks, "another boot")
        assert not rebooted.is_alive()  # same pid and tick, but counted from another boot
        assert stop_process(stepped, timeout=5.0)
        child.wait(timeout=5.0)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_state_file_without_start_ticks_still_loads(tmp_path: Path) -> None:
    """State files of earlier releases name servers by pid and create_time only."""
    state = _state(tmp_path, ProcessRef.of(os.getpid()))
    save_state(tmp_path, state)
    path = tmp_path / "stack.json"
    raw = json.loads(path.read_text())
    for service in raw["services"].values():
        del service["start_ticks"], service["boot_id"]
    path.write_text(json.dumps(raw))
    loaded = load_state(tmp_path)
    assert loaded is not None
    assert all(
        s.ref.start_ticks is None and s.ref.boot_id is None and s.ref.is_alive()
        for s in loaded.services.values()
    )
