"""docker-compose.yml without a Docker engine: the published compose-spec JSON schema (as
vendored by check-jsonschema), the services the stack needs, and ports and names
cross-checked with the Prometheus, Alertmanager and Grafana files."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from streams.metrics import DEFAULT_PORT

ROOT = Path(__file__).resolve().parents[3]
SERVICES = {
    "kafka", "kafka-init", "redis", "monitor", "simulator", "retrain-worker",
    "prometheus", "alertmanager", "grafana",
}  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = compose["services"]
    return result


def _schema() -> dict[str, Any]:
    path = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = _schema()
    assert schema["title"] == "Compose Specification"
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert errors == []


@pytest.mark.parametrize(
    "service",
    [
        {"image": "x", "portz": ["9108"]},
        {"image": "x", "depends_on": 3},
        {"image": "x", "healthcheck": {"test": ["CMD"], "interval": [1]}},
    ],
)
def test_the_schema_check_can_fail(service: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(_schema())
    assert list(validator.iter_errors({"services": {"monitor": service}}))


def test_the_stack_has_every_service(services: dict[str, Any]) -> None:
    assert set(services) == SERVICES


def test_kafka_is_apache_kafka_in_kraft_mode(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in env)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"]), "KRaft needs a base64 UUID"
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_topics_are_created_once_and_co_partitioned(services: dict[str, Any]) -> None:
    init = services["kafka-init"]
    assert init["restart"] == "no"
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    script = init["command"][0]
    loop = re.search(r"for topic in predictions ground-truth; do(.*?)done", script, re.S)
    assert loop is not None, "predictions and ground-truth must be created by one loop"
    assert '--partitions "$$PARTITIONS"' in loop.group(1)
    for topic in ("drift-alerts", "retrain-requests", "retrain-results", "dead-letter"):
        assert topic in script


def test_redis_persists_with_aof_every_second(services: dict[str, Any]) -> None:
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])


def test_monitor_runs_two_replicas_after_kafka_init_and_redis(services: dict[str, Any]) -> None:
    monitor = services["monitor"]
    assert monitor["deploy"]["replicas"] == 2
    assert monitor["command"] == ["run"]
    assert monitor["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    assert monitor["depends_on"]["redis"]["condition"] == "service_healthy"
    assert monitor["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert monitor["environment"]["REDIS_URL"].startswith("redis://redis:6379")
    for name in ("simulator", "retrain-worker"):
        assert services[name]["image"] == monitor["image"]
    assert services["simulator"]["healthcheck"] == {"disable": True}  # it serves no /healthz
    # the worker serves /healthz where the image's HEALTHCHECK probes it
    worker = services["retrain-worker"]
    assert "healthcheck" not in worker
    command = worker["command"]
    assert command[command.index("--metrics-port") + 1] == str(DEFAULT_PORT)
    assert command[command.index("--action") + 1] == "local"
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "driftradar-retrain-worker")
    assert job["static_configs"][0]["targets"] == [f"retrain-worker:{DEFAULT_PORT}"]


def test_prometheus_scrapes_every_monitor_replica_on_the_metrics_port(
    services: dict[str, Any],
) -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "driftradar")
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["monitor"]
    assert sd["names"][0] in services
    port = str(sd["port"])
    monitor = services["monitor"]
    assert port == monitor["environment"]["DRIFTRADAR_METRICS_PORT"] == str(DEFAULT_PORT)
    assert port in monitor["expose"]
    assert all(p.endswith(f":{port}") for p in monitor["ports"])
    # Alertmanager target and the self-scrape resolve to compose services and ports.
    am_host, am_port = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][
        0
    ].split(":")
    assert am_host in services
    assert f"{am_port}:{am_port}" in services[am_host]["ports"]
    assert "9090:9090" in services["prometheus"]["ports"]


def test_grafana_datasource_points_at_the_prometheus_service(services: dict[str, Any]) -> None:
    provisioning = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    (source,) = provisioning["datasources"]
    host, port = source["url"].removeprefix("http://").split(":")
    assert host in services
    assert f"{port}:{port}" in services[host]["ports"]


def test_mounted_paths_exist_and_match_what_the_services_read(services: dict[str, Any]) -> None:
    mounts: dict[str, str] = {}
    for name in ("prometheus", "alertmanager", "grafana"):
        for volume in services[name]["volumes"]:
            source, target = volume.split(":")[:2]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
                mounts[target] = source
    assert mounts["/etc/prometheus"] == "./deploy/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    assert mounts["/etc/alertmanager/alertmanager.yml"] == "./deploy/alertmanager/alertmanager.yml"
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/driftradar.yml").read_text()
    )["providers"][0]
    assert mounts[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / mounts[str(Path(home).parent)] / Path(home).name).is_file()


@pytest.mark.parametrize("service", ["monitor", "simulator", "retrain-worker"])
def test_driftradar_commands_parse_with_the_real_cli(
    services: dict[str, Any], service: str
) -> None:
    from streams.cli import build_parser

    def interpolate(arg: str) -> str:  # compose's ${VAR:-default}, with defaults
        return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", arg)

    argv = [interpolate(a) for a in services[service]["command"]]
    args = build_parser().parse_args(argv)
    assert args.command == argv[0]
