"""Fixtures of the observability tests: the monitor (see ``prom_harness.MONITOR``) and a
real Prometheus (Debian's binary) on a free port scraping it every second with our rules."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
import yaml
from prom_harness import MONITOR, MONITORS, RULES, Prometheus, free_port, http_get, stop, wait_until


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.skip("no `prometheus` binary: install Debian's package (apt-get install prometheus)")
    return found


@pytest.fixture(scope="module")
def monitor_port(request: pytest.FixtureRequest) -> Iterator[int]:
    with MONITORS[MONITOR](request) as port:
        yield port


@pytest.fixture(scope="module")
def prometheus(
    prometheus_binary: str, monitor_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    """Prometheus on a free port, scraping the monitor every second, with our rule files."""
    tmp = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES / "*.yml")],
        "scrape_configs": [
            {
                "job_name": "driftradar",
                "static_configs": [{"targets": [f"127.0.0.1:{monitor_port}"]}],
            },
            {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            prometheus_binary,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        wait_until("prometheus ready", lambda: http_get(server.url + "/-/ready") != b"", 30, proc)
        yield server
    finally:
        stop(proc)
        log.close()
