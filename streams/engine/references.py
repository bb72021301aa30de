r"""Reference files: the training data a model's detectors compare with, read into profiles.

``reference: path`` in a model's configuration names a ``.csv``, ``.jsonl``/``.ndjson`` or
``.parquet`` file with one column per feature (and optionally ``prediction``); the engine
reads it once at start and hands each signal its :class:`~detectors.profile.Profile`. The
detector library itself never touches files.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "ref.csv"
>>> _ = path.write_text("tenure,plan\n3,basic\n14,pro\n")
>>> profiles = profiles_from_file(path)
>>> profiles["tenure"].kind, profiles["plan"].counts
('numeric', {'basic': 1, 'pro': 1})
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from detectors.profile import DEFAULT_BINS, Profile, ProfileError, profiles_from_columns

__all__ = ["profiles_from_file"]


def _parse_csv_cell(text: str) -> Any:
    """CSV cells are text: empty is missing, numbers become floats, the rest stay strings."""
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else None if math.isnan(number) else text


def _read_csv(path: Path, columns: Sequence[str] | None) -> dict[str, list[Any]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        wanted = list(columns) if columns is not None else list(header)
        for name in wanted:
            if name not in header:
                raise ProfileError(name, f"no such column in {path} (has: {', '.join(header)})")
        out: dict[str, list[Any]] = {name: [] for name in wanted}
        for row in reader:
            for name in wanted:
                out[name].append(_parse_csv_cell(row.get(name) or ""))
    return out


def _read_jsonl(
    path: Path, columns: Sequence[str] | None, record_key: str | None
) -> dict[str, list[Any]]:
    rows: list[Mapping[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ProfileError("?", f"{path}:{number} is not JSON ({exc.msg})") from None
            if record_key is not None:
                record = record.get(record_key) if isinstance(record, dict) else None
            if not isinstance(record, dict):
                where = f"{record_key!r} of " if record_key else ""
                raise ProfileError("?", f"{where}{path}:{number} is not a JSON object")
            rows.append(record)
    wanted = list(columns) if columns is not None else sorted({k for r in rows for k in r})
    return {name: [row.get(name) for row in rows] for name in wanted}


def _read_parquet(path: Path, columns: Sequence[str] | None) -> dict[str, Any]:
    try:
        import pyarrow.parquet as pq  # optional extra: pip install 'driftradar[parquet]'
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ProfileError(
            "?", "reading Parquet needs pyarrow: pip install 'driftradar[parquet]'"
        ) from None
    table = pq.read_table(path)
    wanted = list(columns) if columns is not None else list(table.column_names)
    out: dict[str, Any] = {}
    for name in wanted:
        if name not in table.column_names:
            raise ProfileError(
                name, f"no such column in {path} (has: {', '.join(table.column_names)})"
            )
        out[name] = table.column(name).to_pylist()
    return out


def profiles_from_file(
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    kinds: Mapping[str, str] | None = None,
    bins: int = DEFAULT_BINS,
    record_key: str | None = None,
) -> dict[str, Profile]:
    """One profile per column of a ``.csv``, ``.jsonl``/``.ndjson`` or ``.parquet`` file.

    ``record_key`` picks a nested object of each JSONL line, e.g. ``"features"`` for a file
    of prediction events. Missing columns and unreadable files raise :class:`ProfileError`.
    """
    path = Path(path)
    if not path.is_file():
        raise ProfileError("?", f"no such file: {path}")
    suffix = path.suffix.lower()
    data: Mapping[str, Any]
    if suffix == ".csv":
        data = _read_csv(path, columns)
    elif suffix in (".jsonl", ".ndjson"):
        data = _read_jsonl(path, columns, record_key)
    elif suffix in (".parquet", ".pq"):
        data = _read_parquet(path, columns)
    else:
        raise ProfileError("?", f"{path}: unknown file type {suffix!r} (csv, jsonl, parquet)")
    return profiles_from_columns(data, kinds=kinds, bins=bins)
