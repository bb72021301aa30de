"""Prometheus and Alertmanager files: promtool/amtool checks, and what routing relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PROM = ROOT / "deploy" / "prometheus"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROM / "tests").glob("*.yml"))
REQUIRED_ALERTS = {
    "MonitorDown", "MonitorHighCPU", "ConsumerLagHigh", "ModelSilent", "ThroughputDrop",
    "DriftActive", "PerformanceBelowThreshold", "DeadLetterRate", "CheckpointStale",
}  # fmt: skip
CATEGORIES = {"infrastructure", "model"}


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(
            f"`{name}` is not installed: apt-get install "
            f"{'prometheus' if name == 'promtool' else 'prometheus-alertmanager'} "
            "(.ci/run installs prometheus); this check did NOT run"
        )
    return found


def _run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def _rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_promtool_check_config() -> None:
    done = _run(_tool("promtool"), "check", "config", str(PROM / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_check_rules() -> None:
    done = _run(_tool("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr
    found = [int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", done.stdout)]
    assert sum(found) == len(_rules())


def test_promtool_test_rules() -> None:
    done = _run(_tool("promtool"), "test", "rules", *map(str, RULE_TESTS), cwd=PROM)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_amtool_check_config() -> None:
    done = _run(_tool("amtool"), "check-config", str(ALERTMANAGER))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("category", "receiver"), [("model", "model-owners"), ("infrastructure", "platform-oncall")]
)
def test_amtool_routes_each_category_to_its_receiver(category: str, receiver: str) -> None:
    done = _run(
        _tool("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER}",
        f"category={category}",
        "alertname=Any",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == receiver


def test_every_required_alert_exists_with_severity_category_and_text() -> None:
    rules = {rule["alert"]: rule for rule in _rules()}
    assert set(rules) >= REQUIRED_ALERTS, REQUIRED_ALERTS - set(rules)
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["labels"]["category"] in CATEGORIES, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["description"], name


def test_every_alert_has_a_promtool_test_that_expects_it_to_fire() -> None:
    fired: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case["alert_rule_test"]:
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    assert {rule["alert"] for rule in _rules()} <= fired


def test_alertmanager_has_a_route_per_category_and_known_receivers() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    receivers = {r["name"] for r in config["receivers"]}
    routes = config["route"]["routes"]
    routed = {
        m.split("=", 1)[1].strip('"')
        for r in routes
        for m in r["matchers"]
        if m.startswith("category=")
    }
    assert routed == CATEGORIES
    assert config["route"]["receiver"] in receivers
    assert {r["receiver"] for r in routes} <= receivers


def test_prometheus_loads_the_rule_files_and_sends_to_alertmanager() -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    patterns = config["rule_files"]
    loaded = {p for pattern in patterns for p in PROM.glob(pattern)}
    assert loaded == set(RULE_FILES)
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"driftradar", "prometheus"} <= jobs
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
