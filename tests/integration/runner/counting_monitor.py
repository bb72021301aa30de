"""A monitor process whose engine records exactly what it was fed (for the runner's tests).

Per model it counts predictions, ground truth and dead letters and keeps, per topic, a running
digest of the (offset, event_id) sequence, so "no record lost, none applied twice, same order"
is checkable by comparing the status with an uninterrupted run; a third digest ("m") follows
the merged sequence of both topics, as the runner's event-time alignment hands it over.
Every 250th prediction of a model raises an alert with a deterministic id (to test
at-least-once publishing). Like the real engine it checkpoints only the models that changed
since their partition's last checkpoint (the store keeps one field per model), so the
kill -9 tests cover restores assembled from many partial checkpoints.

Run like ``driftradar run`` (same arguments and environment).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from streams.commands.run import add_arguments, settings_from
from streams.core.events import Alert, Prediction, RetrainResult, rfc3339
from streams.engine.config import load_config
from streams.engine.records import EngineOutput, InputRecord, PartitionChanges
from streams.runner import app
from streams.runner.app import Runner
from streams.runner.chunks import ModelChunks


class CountingEngine:
    def __init__(self) -> None:
        self.partitions: dict[int, dict[str, dict[str, Any]]] = {}
        self.unsaved: dict[int, set[str]] = {}  # per partition, models changed since saved
        self.whole: set[int] = set()

    def _model(self, partition: int, model_id: str) -> dict[str, Any]:
        models = self.partitions.setdefault(partition, {})
        self.unsaved.setdefault(partition, set()).add(model_id)
        return models.setdefault(
            model_id,
            {
                "predictions": 0,
                "ground_truth": 0,
                "dead_letters": 0,
                "partition": partition,
                "digest": {"p": "", "g": "", "m": ""},
            },
        )

    def process(self, records: list[InputRecord]) -> EngineOutput:
        output = EngineOutput()
        for record in records:
            event = record.event
            model = self._model(record.partition, event.model_id)
            is_prediction = isinstance(event, Prediction)
            model["predictions" if is_prediction else "ground_truth"] += 1
            # one digest per topic: the order *within* a topic-partition is the guarantee
            kind = "p" if is_prediction else "g"
            step = f"{model['digest'][kind]}|{record.offset}:{event.event_id}"
            model["digest"][kind] = hashlib.sha1(step.encode()).hexdigest()
            merged = f"{model['digest']['m']}|{kind}{record.offset}"
            model["digest"]["m"] = hashlib.sha1(merged.encode()).hexdigest()
            if is_prediction and model["predictions"] % 250 == 0:
                output.alerts.append(
                    Alert(
                        alert_id=f"{event.model_id}-{model['predictions']}",
                        type="data_drift",
                        severity="info",
                        model_id=event.model_id,
                        signal="prediction",
                        detector="count",
                        detected_at=rfc3339(record.timestamp),
                    )
                )
        return output

    def tick(self, now: float) -> EngineOutput:
        return EngineOutput()

    def admit(self, model_id: str, partition: int) -> str | None:
        return None

    def retrain_result(self, result: RetrainResult, partition: int) -> EngineOutput:
        return EngineOutput()  # no retrain results in these streams

    def record_dead_letter(self, model_id: str | None, partition: int, reason: str) -> None:
        self._model(partition, model_id or "?")["dead_letters"] += 1

    def monitor_alert(
        self, signal: str, detector: str, key: str, details: Mapping[str, Any], *, severity: str
    ) -> Alert:
        return Alert(
            alert_id=f"_monitor-{signal}-{detector}-{key}",
            type="infrastructure",
            severity=severity,
            model_id="_monitor",
            signal=signal,
            detector=detector,
            detected_at=rfc3339(0.0),
            details=dict(details),
        )

    def report_lag(self, lags: Mapping[int, int]) -> EngineOutput:
        return EngineOutput()

    def checkpoint_partition(self, partition: int) -> PartitionChanges:
        models = self.partitions.get(partition, {})
        changed = models if partition in self.whole else self.unsaved.get(partition, set())
        return PartitionChanges(
            state={"format": "counting"},
            models={m: models[m] for m in changed},
            status={m: models[m] for m in changed},
            complete=partition in self.whole,
        )

    def checkpoint_saved(self, partition: int) -> None:
        self.unsaved.pop(partition, None)
        self.whole.discard(partition)

    def save_whole(self, partition: int) -> None:
        self.whole.add(partition)

    def restore_partition(
        self, partition: int, data: Any, models: Mapping[str, Any] | None = None
    ) -> None:
        self.partitions[partition] = dict(models or {})
        self.unsaved.pop(partition, None)

    def drop_partition(self, partition: int) -> None:
        self.partitions.pop(partition, None)
        self.unsaved.pop(partition, None)
        self.whole.discard(partition)

    def status(self) -> Mapping[str, Any]:
        return {"models": {m: s for models in self.partitions.values() for m, s in models.items()}}


class CompactChunks(ModelChunks):
    """Per-model chunks of 1 000 records that keep waiting records compact from two models
    on (as the runner's do past 256); each new most records held so is appended to the file
    ``$COUNTING_MONITOR_COMPACT_LOG`` at once (a process killed with -9 leaves its count)."""

    most_compact = 0  # (over every session of the process)

    def __init__(self, *, batch_size: int) -> None:
        super().__init__(min_records=1000, held_budget=1000, batch_size=batch_size)

    def take(self, records: Sequence[InputRecord], *, under_load: bool) -> list[InputRecord]:
        due = super().take(records, under_load=under_load)
        compact = sum(len(g) for g in self._held.values() if g.plain is None)
        if compact > CompactChunks.most_compact:
            CompactChunks.most_compact = compact
            with open(os.environ["COUNTING_MONITOR_COMPACT_LOG"], "a") as log:
                log.write(f"{compact}\n")
        return due


def main() -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")
    if os.environ.get("COUNTING_MONITOR_CHUNKS") == "compact":
        app.ModelChunks = CompactChunks  # type: ignore[misc]  # what each session makes
    Runner(settings_from(load_config(args.config), args), CountingEngine()).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
