"""/metrics (streams.metrics.exposition): the same series, in the same text, as the
Prometheus client's own app, in both formats it negotiates; a model's lines are formatted
once per change, so a scrape of an idle monitor formats nothing."""

from __future__ import annotations

import gzip
import tracemalloc
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from streams.metrics import EngineView, MonitorMetrics, snapshots
from streams.metrics.deflate import Deflated
from streams.metrics.exposition import exposition, metrics_app
from tests.unit.metrics.test_metrics_monitor import _batch, _engine_view

OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


@pytest.fixture
def metrics() -> MonitorMetrics:
    metrics = MonitorMetrics(
        CollectorRegistry(), max_features=3, clock=lambda: 5000.0, process_collectors=False
    )
    metrics.observe_batch(_batch())
    metrics.set_lag({("predictions", 0): 12.0})
    view: EngineView = {"models": {**_models("churn"), **_models('we"ird\\id\n')}}
    metrics.update_from_engine(view)
    return metrics


def _models(model: str) -> dict[str, Any]:
    return dict(_engine_view(2, model)["models"])


def _lines(body: bytes) -> list[bytes]:
    return sorted(body.splitlines())


@pytest.mark.parametrize(
    ("accept", "client"),
    [(None, generate_latest), (OPENMETRICS, openmetrics_latest)],
    ids=["prometheus text", "openmetrics"],
)
def test_the_body_holds_the_client_encoders_lines(
    metrics: MonitorMetrics, accept: str | None, client: Callable[[Any], bytes]
) -> None:
    body, content_type = exposition(metrics.registry, metrics.snapshots, accept)
    expected = client(metrics.registry)
    assert _lines(body) == _lines(expected)
    assert b'driftradar_detector_statistic{detector="adwin"' in body
    if accept is not None:
        assert content_type.startswith("application/openmetrics-text")
        assert body.endswith(b"# EOF\n")
    else:
        assert content_type.startswith("text/plain")


def _get(app: Any, query: str = "", **headers: str) -> tuple[str, dict[str, str], bytes]:
    answer: dict[str, Any] = {}

    def start_response(status: str, header_list: list[tuple[str, str]]) -> None:
        answer["status"], answer["headers"] = status, dict(header_list)

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": query}
    environ.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    body: Iterable[bytes] = app(environ, start_response)
    return answer["status"], answer["headers"], b"".join(body)


def test_name_filters_and_gzip_work_as_in_the_client_app(metrics: MonitorMetrics) -> None:
    app = metrics_app(metrics.registry, metrics.snapshots)
    query = "name[]=driftradar_drift_active&name[]=driftradar_events_total"
    status, headers, body = _get(app, query, accept_encoding="gzip")
    assert status == "200 OK"
    assert headers["Content-Encoding"] == "gzip"
    names = {
        line.split(b"{")[0].split(b" ")[0]
        for line in gzip.decompress(body).splitlines()
        if not line.startswith(b"#")
    }
    assert names == {b"driftradar_drift_active", b"driftradar_events_total"}


def test_a_scrape_formats_only_the_models_that_changed(
    metrics: MonitorMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = metrics_app(metrics.registry, metrics.snapshots)
    _get(app)  # formats every model once
    formatted: list[str] = []
    real = snapshots._lines

    def counting(name: str, labels: tuple[str, ...], samples: Any) -> bytes:
        formatted.append(name)
        return real(name, labels, samples)

    monkeypatch.setattr(snapshots, "_lines", counting)
    first = _get(app)[2]
    assert formatted == ["driftradar_consumer_lag"]  # replaced whole, not per model
    formatted.clear()
    changed = _models("churn")
    changed["churn"]["prediction_mean"] = 0.77
    metrics.update_from_engine({"models": changed, "model_ids": ["churn", 'we"ird\\id\n']})
    second = _get(app)[2]
    assert b'driftradar_prediction_mean{model_id="churn"} 0.77' in second
    assert b'driftradar_prediction_mean{model_id="churn"} 0.41' in first
    assert len([name for name in formatted if name == "driftradar_prediction_mean"]) == 1
    assert _lines(second) == _lines(generate_latest(metrics.registry))


def test_a_model_that_leaves_leaves_the_scrape(metrics: MonitorMetrics) -> None:
    app = metrics_app(metrics.registry, metrics.snapshots)
    assert b'model_id="churn"' in _get(app)[2]
    metrics.update_from_engine({"models": _models("other")})
    body = _get(app)[2]
    assert b'driftradar_drift_active{detector="psi",model_id="churn"' not in body
    assert b'model_id="other"' in body


def test_a_scraped_model_is_kept_as_its_text_and_read_back_from_it(
    metrics: MonitorMetrics,
) -> None:
    """After a scrape only the text of a model is kept (its samples are dropped); the
    client's collectors read the same samples back, odd label values and floats included."""
    before = generate_latest(metrics.registry)
    gauges = metrics.snapshots
    gauges.set_owner("odd", {"driftradar_prediction_mean": [(('q"\\\n',), float("inf"))]})
    gauges.set_owner("tiny", {"driftradar_prediction_mean": [(("t",), 1e-300)]})
    gauges.set_owner("breaks", {"driftradar_prediction_mean": [(("a\rb\u2028c\x85",), -0.0)]})
    expected = generate_latest(metrics.registry)
    assert expected != before
    exposition(metrics.registry, gauges)
    assert all(isinstance(owned, snapshots._Rendered) for owned in gauges._owned.values())
    assert _lines(generate_latest(metrics.registry)) == _lines(expected)
    assert metrics.value("driftradar_prediction_mean", model_id='q"\\\n') == float("inf")
    assert metrics.value("driftradar_prediction_mean", model_id="t") == 1e-300
    assert metrics.value("driftradar_prediction_mean", model_id="a\rb\u2028c\x85") == 0.0
    assert metrics.value("driftradar_prediction_mean", model_id="churn") == 0.41


def test_a_model_that_changes_during_a_scrape_keeps_its_new_samples(
    metrics: MonitorMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scrape's thread keeps a model's text in place of its samples only if they are
    still the current ones: an update made meanwhile is neither lost nor overwritten."""
    gauges = metrics.snapshots
    real = snapshots._lines
    changed = _models("churn")
    changed["churn"]["prediction_mean"] = 0.77

    def update_meanwhile(name: str, labels: tuple[str, ...], samples: Any) -> bytes:
        text = real(name, labels, samples)
        if changed and b'model_id="churn"' in text:  # while churn's old samples render
            metrics.update_from_engine({"models": changed, "model_ids": ["churn"]})
            changed.clear()
        return text

    monkeypatch.setattr(snapshots, "_lines", update_meanwhile)
    first = exposition(metrics.registry, gauges)[0]
    assert not changed, "the update was made during the scrape"
    assert first.count(b'driftradar_prediction_mean{model_id="churn"}') == 1
    assert metrics.value("driftradar_prediction_mean", model_id="churn") == 0.77
    second = exposition(metrics.registry, gauges)[0]
    assert b'driftradar_prediction_mean{model_id="churn"} 0.77' in second


@pytest.mark.parametrize("accept", [None, OPENMETRICS], ids=["prometheus text", "openmetrics"])
def test_a_gzip_scrape_is_the_plain_body_gzipped(
    metrics: MonitorMetrics, accept: str | None
) -> None:
    """Before and after a change of a model: the gzip body, a single member, holds exactly
    the plain body."""
    for step in range(2):
        plain, _ = exposition(metrics.registry, metrics.snapshots, accept)
        zipped, _ = exposition(metrics.registry, metrics.snapshots, accept, gzip=True)
        assert gzip.decompress(zipped) == plain
        assert zipped[:2] == b"\x1f\x8b"
        assert len(zipped) < len(plain)
        changed = _models("churn")
        changed["churn"]["prediction_mean"] = 0.5 + step
        metrics.update_from_engine({"models": changed, "model_ids": ["churn", 'we"ird\\id\n']})


def test_a_scraped_model_keeps_its_long_families_deflated(metrics: MonitorMetrics) -> None:
    """What an idle monitor holds per model: the detector families deflated, not as text,
    and a gzip scrape writes those pieces as they are."""
    gauges = metrics.snapshots
    exposition(metrics.registry, gauges)
    kept = gauges._owned["churn"]
    assert isinstance(kept, snapshots._Rendered)
    statistic = kept.texts["driftradar_detector_statistic"]
    assert isinstance(statistic, Deflated)
    assert b'driftradar_detector_statistic{detector="adwin"' in statistic.text()
    assert isinstance(kept.texts["driftradar_prediction_mean"], bytes)  # short: as it is
    assert statistic.data in exposition(metrics.registry, gauges, gzip=True)[0]
    read_back = gauges.samples("driftradar_detector_statistic")  # parsed from the pieces
    assert any("churn" in values for values, _ in read_back)


def test_a_model_not_yet_scraped_keeps_its_samples_packed() -> None:
    """Until a scrape renders it, a model keeps its samples: its label tuples and 8 bytes a
    value, not a (labels, value) tuple and a float object each (160 bytes a 4-label sample
    before; 88 now, the label tuple being 72 of them)."""
    gauges = snapshots.SnapshotGauges({"m": ("Doc.", ("a", "b", "c", "d"))})
    n = 20_000  # (the interpreter keeps up to 2 000 freed tuples of each size for reuse)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        names = [f"stat{j}" for j in range(9)]  # detail names: a few shared strings
        samples = [(("model", "signal", "detector", names[i % 9]), i / 7) for i in range(n)]
        gauges.set_owner("model", {"m": samples})
        del samples  # what the view built: only what the owner keeps stays
        per_sample = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert per_sample < 110
    assert gauges.samples("m")[3] == (("model", "signal", "detector", "stat3"), 3 / 7)
