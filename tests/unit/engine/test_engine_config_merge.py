"""How ``models.<id>`` combines with ``defaults`` and the built-in defaults (docs/engine.md):
mappings merge key by key, except a detector group, which replaces the group it overrides
(``{}`` or ``null`` disables it)."""

from __future__ import annotations

from typing import Any

from engine_streams import churn_stream, run

from streams.engine import MonitorConfig
from streams.engine.config import DEFAULT_DETECTORS
from streams.engine.engine import Engine

#: The defect this file was written for: a model's numeric group merged into the defaults'.
DEFAULT_NUMERIC = {"defaults": {"detectors": {"numeric": {"adwin": {}, "ks": {}}}}}


def _config(defaults: dict[str, Any], **models: Any) -> MonitorConfig:
    return MonitorConfig.from_mapping({"defaults": defaults, "models": models})


def test_a_models_detector_group_replaces_the_defaults_group() -> None:
    config = _config(
        DEFAULT_NUMERIC["defaults"], churn={"detectors": {"numeric": {"psi": {"bins": 20}}}}
    )
    assert config.model("churn").detectors["numeric"] == {"psi": {"bins": 20}}
    assert config.defaults.detectors["numeric"] == {"adwin": {}, "ks": {}}
    assert config.model("unconfigured").detectors["numeric"] == {"adwin": {}, "ks": {}}
    # the groups neither gives keep their built-in detectors
    assert config.model("churn").detectors["categorical"] == DEFAULT_DETECTORS["categorical"]


def test_a_detectors_parameters_come_whole_from_the_group_that_wins() -> None:
    config = _config(
        {"detectors": {"numeric": {"psi": {"bins": 20, "stride": 500}}}},
        churn={"detectors": {"numeric": {"psi": {}}}},
    )
    assert config.model("churn").detectors["numeric"] == {"psi": {}}


def test_an_empty_or_null_group_disables_it_for_that_model() -> None:
    config = _config(
        DEFAULT_NUMERIC["defaults"],
        quiet={"detectors": {"numeric": {}}},
        silent={"detectors": {"numeric": None, "unseen": {}}},
    )
    assert config.model("quiet").detectors["numeric"] == {}
    assert config.model("silent").detectors["numeric"] == {}
    assert config.model("silent").detectors["unseen"] == {}
    assert config.model("silent").detectors["prediction"] == DEFAULT_DETECTORS["prediction"]


def test_a_model_without_detectors_gets_the_defaults_groups() -> None:
    config = _config(DEFAULT_NUMERIC["defaults"], churn={"task": "binary"}, other=None)
    for model in ("churn", "other"):
        assert config.model(model).detectors["numeric"] == {"adwin": {}, "ks": {}}


def test_a_group_in_defaults_replaces_the_built_in_group() -> None:
    config = MonitorConfig.from_mapping(DEFAULT_NUMERIC)
    assert "page_hinkley" not in config.defaults.detectors["numeric"]
    assert config.defaults.detectors["error"] == DEFAULT_DETECTORS["error"]


def test_other_mappings_merge_key_by_key() -> None:
    config = _config(
        {
            "features": {"age": {"range": [0, 120]}},
            "quality": {"detectors": {"missing_rate": {"window_size": 500}}},
            "severities": {"data_drift": "info"},
            "performance": {"thresholds": {"accuracy": 0.7}},
            "alarms": {"min_updates": 200},
            "retrain": {"cooldown_seconds": 60, "confirm": {"signals": 2}},
        },
        churn={
            "features": {"age": {"max_missing_rate": 0.1}},
            "quality": {"detectors": {"missing_rate": {"alpha": 0.01}, "type": False}},
            "severities": {"concept_drift": "info"},
            "performance": {"thresholds": {"roc_auc": 0.6}},
            "alarms": {"clear_after": 900},
            "retrain": {"confirm": {"within_seconds": 60}},
        },
    )
    churn = config.model("churn")
    age = churn.features["age"]
    assert (age.type, age.range, age.max_missing_rate) == ("numeric", (0.0, 120.0), 0.1)
    assert churn.quality["missing_rate"] == {"alpha": 0.01, "window_size": 500}
    assert churn.quality["type"] is None  # `false` switches it off
    assert churn.quality["value_range"] == {}  # built-in parameters (the budget sets alpha)
    assert (churn.severities["data_drift"], churn.severities["concept_drift"]) == ("info", "info")
    assert churn.severities["infrastructure"] == "critical"
    assert churn.performance.thresholds == {"accuracy": 0.7, "roc_auc": 0.6}
    assert (churn.alarms.min_updates, churn.alarms.clear_after) == (200, 900)
    assert churn.retrain.cooldown_seconds == 60
    assert (churn.retrain.confirm.signals, churn.retrain.confirm.within_seconds) == (2, 60)


def test_null_for_a_section_keeps_the_defaults_and_null_for_a_value_clears_it() -> None:
    config = _config(
        {"retrain": {"cooldown_seconds": 60}, "silence_seconds": 30},
        churn={"retrain": None, "silence_seconds": None},
    )
    assert config.model("churn").retrain.cooldown_seconds == 60
    assert config.model("churn").silence_seconds is None


def test_the_engine_runs_only_the_models_own_group() -> None:
    """End to end, as ``driftradar status --json`` shows it: the model's numeric features
    carry psi alone; an unconfigured model's carry the defaults' adwin and ks."""
    config = MonitorConfig.from_mapping(
        {
            "defaults": {"warmup": 100, **DEFAULT_NUMERIC["defaults"]},
            "models": {"churn": {"detectors": {"numeric": {"psi": {}}}}},
        }
    )
    engine = Engine(config, clock=lambda: 1_900_000_000.0)
    run(engine, churn_stream(600, model="churn") + churn_stream(600, model="other", partition=1))
    models = engine.status()["models"]
    assert set(models["churn"]["signals"]["feature:tenure_months"]) == {"psi"}
    assert set(models["other"]["signals"]["feature:tenure_months"]) == {"adwin", "ks"}
    assert models["churn"]["signals"]["feature:tenure_months"]["psi"]["updates"] == 600
