"""An alert raised inside a batch carries the statistics of the moment it was raised: the
same as when every record comes in a batch of its own (detectors fed one value at a time)."""

from __future__ import annotations

from typing import Any

import pytest
from engine_streams import churn_stream, run

from streams.engine import MonitorConfig
from streams.engine.engine import Engine


def _engine(numeric: dict[str, Any]) -> Engine:
    document = {
        "defaults": {
            "warmup": 500,
            "alarms": {"min_updates": 500, "clear_after": 1000},
            "detectors": {"numeric": numeric},
        }
    }
    return Engine(MonitorConfig.from_mapping(document), clock=lambda: 1_900_000_000.0)


@pytest.mark.parametrize(
    ("numeric", "detector"),
    [
        ({"ks": {"stride": 50}}, "ks"),
        ({"adwin": {}}, "adwin"),
        ({"page_hinkley": {}}, "page_hinkley"),
    ],
    ids=["ks", "adwin", "page_hinkley"],
)
def test_alert_details_do_not_depend_on_the_batch_size(
    numeric: dict[str, Any], detector: str
) -> None:
    records = churn_stream(4000, seed=12, data_drift_at=2000)
    one_by_one, _ = run(_engine(numeric), records, size=1)
    batched, _ = run(_engine(numeric), records, size=len(records))
    drift = [a for a in one_by_one if a.type == "data_drift"]
    assert [a.detector for a in drift] == [detector]
    assert drift[0].details["updates"] < 3900, "inside the batch, not at its end"
    assert [(a.alert_id, a.details) for a in batched if a.type == "data_drift"] == [
        (a.alert_id, a.details) for a in drift
    ]


@pytest.mark.parametrize("numeric", ["ks", "psi", "adwin", "page_hinkley"])
def test_every_drift_alert_reads_the_same_way(numeric: str) -> None:
    """statistic and threshold in the same units (the statistic passed it), effect size and
    budget share, ``position`` the model's prediction index, not the detector's count."""
    records = churn_stream(4000, seed=12, data_drift_at=2000)
    alerts, _ = run(_engine({numeric: {}}), records)
    (alert,) = [a for a in alerts if a.type == "data_drift"]
    details = alert.details
    assert details["statistic"] > details["threshold"]
    assert 0 < details["budget_share"] < 1
    assert 2000 < details["position"] < 4000  # predictions: the shift starts at 2000
    # x_unused moves by 3 reference sd; a window test's window is partly shifted when it fires
    if numeric in ("ks", "adwin"):
        assert details["effect"].startswith("mean shift")
        assert details["effect_size"] > 0.5
    if numeric == "psi":
        assert details["effect"] == "PSI"
        assert details["effect_size"] == details["statistic"]
        assert details["mean_shift_sd"] > 0.3
    if numeric in ("ks", "adwin", "psi"):
        assert 0 <= details["p_value"] < 1e-3
    if numeric in ("adwin", "page_hinkley"):  # fed the quantile transform (warm-up included)
        assert details["detector_updates"] == details["position"]
        assert details["input"].startswith("reference quantile")


def test_metric_alerts_carry_reference_spread_and_tail() -> None:
    records = churn_stream(9000, seed=3, concept_drift_at=4500)
    alerts, _ = run(_engine({}), records)
    metric = [a for a in alerts if a.signal.startswith("metric:")]
    assert metric
    for alert in metric:
        details = alert.details
        assert details["statistic"] == details["value"]
        assert details["threshold"] == details["limit"]
        assert details["p_value"] < 1e-3
        assert details["effect"] == "metric change"
        assert details["position"] > 1000  # pairs: after the 1000 reference pairs


def test_a_stable_stream_raises_no_performance_alert() -> None:
    records = churn_stream(12_000, seed=8)
    alerts, _ = run(_engine({}), records)
    assert [a for a in alerts if a.type == "performance_degradation"] == []
