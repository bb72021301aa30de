"""BatchHistogram agrees with prometheus_client's Histogram; label caps and reason kinds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from streams.core.events import EventDecodeError, decode_ground_truth, decode_prediction
from streams.metrics import REASON_KINDS, LabelCap, reason_kind
from streams.metrics.histogram import BatchHistogram

BUCKETS = (0.01, 0.1, 0.5, 1.0, 10.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, *BUCKETS, 20.0]) | st.floats(0, 50), max_size=40))
def test_batch_histogram_matches_the_reference_histogram(values: list[float]) -> None:
    registry = CollectorRegistry()
    reference = Histogram("ref_seconds", "Ref.", ["topic"], buckets=BUCKETS, registry=registry)
    batch = BatchHistogram("batch_seconds", "Batch.", ["topic"], buckets=BUCKETS)
    registry.register(batch)
    for value in values:
        reference.labels("t").observe(value)
    batch.observe_many(("t",), values)
    if not values:
        assert registry.get_sample_value("batch_seconds_count", {"topic": "t"}) is None
        return
    for le in [*(repr(b) for b in BUCKETS), "+Inf"]:
        labels = {"topic": "t", "le": le}
        assert registry.get_sample_value(
            "batch_seconds_bucket", labels
        ) == registry.get_sample_value("ref_seconds_bucket", labels), le
    assert registry.get_sample_value("batch_seconds_sum", {"topic": "t"}) == pytest.approx(
        registry.get_sample_value("ref_seconds_sum", {"topic": "t"})
    )


def test_batch_histogram_skips_nan_and_checks_its_arguments() -> None:
    hist = BatchHistogram("h", "H.", ["topic"], buckets=(1.0,))
    hist.observe_many(("t",), [float("nan"), 0.5])
    family = next(iter(hist.collect()))
    count = [s.value for s in family.samples if s.name == "h_count"]
    assert count == [1.0]
    with pytest.raises(ValueError, match="expected labels"):
        hist.observe_many(("a", "b"), [1.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        BatchHistogram("h", "H.", [], buckets=(1.0, 0.5))


def test_label_cap_admits_the_first_values_only() -> None:
    cap = LabelCap("feature", limit=2)
    assert [cap.admit(x) for x in ["a", "b", "a", "c"]] == [True, True, True, False]
    assert len(cap) == 2
    with pytest.raises(ValueError, match="'feature'"):
        LabelCap("feature", limit=0)


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        (b'{"model_id": "m", "features": {}, "prediction": 0.5}', "schema"),
        (b'{"event_id": "e", "model_id": "m", "features": {}, "prediction": [1]}', "schema"),
        (b"[]", "schema"),
    ],
)
def test_decoder_errors_fold_into_a_bounded_reason_kind(payload: bytes, kind: str) -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode_prediction(payload)
    assert reason_kind(caught.value) == kind
    assert reason_kind(str(caught.value)) == kind


def test_other_reasons_and_explicit_kinds() -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode_ground_truth(b'{"event_id": "e", "model_id": "m"}')
    assert reason_kind(caught.value) == "schema"
    assert reason_kind("message too large: 2 MiB") == "too_large"
    assert reason_kind("unknown model 'x'") == "unknown_model"
    assert reason_kind(RuntimeError("boom")) == "other"
    assert all(reason_kind(kind) == kind for kind in REASON_KINDS)
