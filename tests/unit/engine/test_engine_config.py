"""Config validation: defaults work, every bad key is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.engine.config import ConfigError, MonitorConfig, load_config


def test_empty_config_is_valid_and_has_defaults() -> None:
    for document in (None, {}):
        config = MonitorConfig.from_mapping(document)
        assert config.models == {}
        assert config.model("anything").warmup == 1000
        assert config.topics.predictions == "predictions"
        assert config.metrics_port == 9108


def test_model_entries_override_defaults_deeply() -> None:
    config = MonitorConfig.from_mapping(
        {
            "defaults": {"warmup": 200, "retrain": {"cooldown_seconds": 60}},
            "models": {"churn": {"retrain": {"max_per_day": 2}, "task": "binary"}},
        }
    )
    churn = config.model("churn")
    assert churn.warmup == 200
    assert churn.retrain.cooldown_seconds == 60
    assert churn.retrain.max_per_day == 2
    assert config.model("other").retrain.max_per_day == 4


def test_kafka_properties_pass_through_verbatim() -> None:
    config = MonitorConfig.from_mapping(
        {"kafka": {"security.protocol": "SASL_SSL", "linger.ms": 5}}
    )
    assert config.kafka == {"security.protocol": "SASL_SSL", "linger.ms": 5}


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"unknown": 1}, "unknown"),
        ({"kafka": {"linger.ms": [1]}}, "kafka.linger.ms"),
        ({"topics": {"predictions": ""}}, "topics.predictions"),
        ({"topics": {"nope": "x"}}, "topics.nope"),
        ({"checkpoint": {"every_events": 0}}, "checkpoint.every_events"),
        ({"checkpoint": {"every_seconds": "5"}}, "checkpoint.every_seconds"),
        ({"checkpoint": {"max_share": 0}}, "checkpoint.max_share"),
        ({"checkpoint": {"max_share": 1.5}}, "checkpoint.max_share"),
        ({"checkpoint": {"max_pause_seconds": 0}}, "checkpoint.max_pause_seconds"),
        ({"metrics_port": 70000}, "metrics_port"),
        ({"max_consumer_lag": -1}, "max_consumer_lag"),
        ({"models": []}, "models"),
        ({"models": {"churn": {"task": "ranking"}}}, "models.churn.task"),
        ({"models": {"churn": {"threshold": 2}}}, "models.churn.threshold"),
        ({"models": {"churn": {"warmup": 5}}}, "models.churn.warmup"),
        ({"models": {"churn": {"colour": "red"}}}, "models.churn.colour"),
        (
            {"models": {"churn": {"features": {"age": {"type": "int"}}}}},
            "models.churn.features.age.type",
        ),
        (
            {"models": {"churn": {"features": {"age": {"range": [5, 1]}}}}},
            "models.churn.features.age.range",
        ),
        (
            {"models": {"churn": {"features": {"plan": {"categories": []}}}}},
            "models.churn.features.plan.categories",
        ),
        (
            {"models": {"churn": {"features": {"age": {"type": "numeric", "categories": ["a"]}}}}},
            "models.churn.features.age.categories",
        ),
        (
            {"models": {"churn": {"detectors": {"numeric": {"adwin": {"delta": 5}}}}}},
            "models.churn.detectors.numeric.adwin.delta",
        ),
        (
            {"models": {"churn": {"detectors": {"numeric": {"magic": {}}}}}},
            "models.churn.detectors.numeric.magic",
        ),
        ({"models": {"churn": {"detectors": {"features": {}}}}}, "models.churn.detectors.features"),
        (
            {"models": {"churn": {"quality": {"detectors": {"missing_rate": {"window_size": 1}}}}}},
            "models.churn.quality.detectors.missing_rate.window_size",
        ),
        ({"models": {"churn": {"quality": {"exclude": "row"}}}}, "models.churn.quality.exclude"),
        (
            {"models": {"churn": {"performance": {"thresholds": {"f1": 0.5}}}}},
            "models.churn.performance.thresholds.f1",
        ),
        (
            {"models": {"churn": {"performance": {"relative_drop": 3}}}},
            "models.churn.performance.relative_drop",
        ),
        (
            {"models": {"churn": {"severities": {"data_drift": "loud"}}}},
            "models.churn.severities.data_drift",
        ),
        ({"models": {"churn": {"join": {"ttl_seconds": 0}}}}, "models.churn.join.ttl_seconds"),
        ({"models": {"churn": {"join": {"max_pending": 0}}}}, "models.churn.join.max_pending"),
        (
            {"models": {"churn": {"versions": {"retire_after_events": 0}}}},
            "models.churn.versions.retire_after_events",
        ),
        ({"models": {"churn": {"silence_seconds": -3}}}, "models.churn.silence_seconds"),
        (
            {"models": {"churn": {"throughput": {"min_ratio": 2}}}},
            "models.churn.throughput.min_ratio",
        ),
        ({"models": {"churn": {"alarms": {"clear_after": 0}}}}, "models.churn.alarms.clear_after"),
        ({"models": {"churn": {"alarms": {"budget": 1}}}}, "models.churn.alarms.budget"),
        (
            {"models": {"churn": {"retrain": {"cooldown_seconds": -1}}}},
            "models.churn.retrain.cooldown_seconds",
        ),
        (
            {"models": {"churn": {"retrain": {"max_per_day": 0}}}},
            "models.churn.retrain.max_per_day",
        ),
        (
            {"models": {"churn": {"retrain": {"triggers": ["infrastructure"]}}}},
            "models.churn.retrain.triggers[0]",
        ),
        (
            {"models": {"churn": {"retrain": {"triggers": ["concept_drift", "bad"]}}}},
            "models.churn.retrain.triggers[1]",
        ),
        (
            {"models": {"churn": {"retrain": {"confirm": {"signals": 0}}}}},
            "models.churn.retrain.confirm.signals",
        ),
        ({"models": {"churn": {"retrain": {"enabled": "yes"}}}}, "models.churn.retrain.enabled"),
        ({"defaults": {"warmup": "many"}}, "defaults.warmup"),
    ],
)
def test_bad_values_name_their_key(document: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        MonitorConfig.from_mapping(document)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


def test_cooldown_message_reads_as_documented() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^models\.churn\.retrain\.cooldown_seconds: must be a "
        r"number >= 0$",
    ):
        MonitorConfig.from_mapping({"models": {"churn": {"retrain": {"cooldown_seconds": "1h"}}}})


def test_load_config_reads_yaml_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text("models:\n  churn:\n    task: binary\n    warmup: 50\n", encoding="utf-8")
    monkeypatch.setenv("DRIFTRADAR_CONFIG", str(path))
    assert load_config().model("churn").warmup == 50
    monkeypatch.delenv("DRIFTRADAR_CONFIG")
    assert load_config() == MonitorConfig()


def test_load_config_names_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_example_config_is_valid() -> None:
    example = Path(__file__).parents[3] / "examples" / "churn.yaml"
    config = load_config(example)
    assert config.model("churn").task == "binary"
