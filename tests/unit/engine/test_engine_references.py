"""Reference files read into profiles (CSV, JSONL, Parquet): the engine's I/O, not the
detector library's."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from detectors.profile import ProfileError, profiles_from_columns
from streams.engine.references import profiles_from_file


@pytest.fixture
def sample() -> dict[str, list[object]]:
    rng = np.random.default_rng(0)
    return {
        "income": [round(float(v), 3) for v in rng.normal(50, 10, 400)],
        "plan": [str(v) for v in rng.choice(["basic", "premium", "pro"], 400)],
    }


def _write_csv(path: Path, sample: dict[str, list[object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(sample))
        writer.writerows(zip(*sample.values(), strict=True))


def test_profiles_from_csv_jsonl_and_parquet(
    tmp_path: Path, sample: dict[str, list[object]]
) -> None:
    expected = profiles_from_columns(sample)
    csv_path = tmp_path / "train.csv"
    _write_csv(csv_path, sample)
    assert profiles_from_file(csv_path) == expected

    jsonl = tmp_path / "events.jsonl"
    rows = [dict(zip(sample, values, strict=True)) for values in zip(*sample.values(), strict=True)]
    jsonl.write_text("\n".join(json.dumps({"features": row}) for row in rows) + "\n")
    assert profiles_from_file(jsonl, record_key="features") == expected

    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    parquet = tmp_path / "train.parquet"
    pq.write_table(pa.table(sample), parquet)
    assert profiles_from_file(parquet, columns=["income"]) == {"income": expected["income"]}


def test_file_errors_are_named(tmp_path: Path, sample: dict[str, list[object]]) -> None:
    csv_path = tmp_path / "train.csv"
    _write_csv(csv_path, sample)
    with pytest.raises(ProfileError, match="no such column") as info:
        profiles_from_file(csv_path, columns=["tenure"])
    assert info.value.column == "tenure"
    text = tmp_path / "x.txt"
    text.write_text("a\n1\n")
    with pytest.raises(ProfileError, match=r"unknown file type '\.txt'"):
        profiles_from_file(text)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\nnot json\n')
    with pytest.raises(ProfileError, match=r"bad\.jsonl:2 is not JSON"):
        profiles_from_file(bad)
