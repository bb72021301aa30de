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
