"""Checkpoints that write only the models changed since the partition's last checkpoint
(issue 15), and restores assembled from many such partial checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from engine_streams import T0, churn_stream

from streams.core.events import RetrainResult
from streams.engine import InputRecord, MonitorConfig
from streams.engine.engine import SNAPSHOT_FORMAT, Engine
from streams.engine.pending_memory import MemoryPendingStore

CONFIG = MonitorConfig.from_mapping(
    {
        "defaults": {
            "warmup": 100,
            "alarms": {"min_updates": 100},
            "join": {"ttl_seconds": 60},
            "silence_seconds": 30,
        }
    }
)
#: models of partition 0 and of partition 1
MODELS = {"a": 0, "b": 0, "c": 0, "d": 0, "e": 1, "f": 1}


def _round_trip(data: Any) -> Any:
    return msgspec.msgpack.decode(msgspec.msgpack.encode(data))


def _events(model: str, first: int, n: int) -> list[InputRecord]:
    seed = sorted(MODELS).index(model) + 1
    return churn_stream(n, seed=seed, model=model, partition=MODELS[model], first=first)


@dataclass
class _Stored:
    """What Redis holds of one partition: its state and one snapshot per model."""

    state: Any = None
    models: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    written: list[list[str]] = field(default_factory=list)  # model ids, per checkpoint


class _Store:
    """The checkpoint store's semantics, in memory: partial writes update, complete ones
    replace; pending predictions as the Redis script applies them."""

    def __init__(self) -> None:
        self.partitions: dict[int, _Stored] = {}
        self.pending = MemoryPendingStore()

    def checkpoint(self, engine: Engine) -> None:
        for p in sorted(engine.partitions()):
            changes = engine.checkpoint_partition(p)
            stored = self.partitions.setdefault(p, _Stored())
            if changes.complete:
                stored.models, stored.status = {}, {}
            stored.state = _round_trip(changes.state)
            stored.models.update(_round_trip(dict(changes.models)))
            stored.status.update(_round_trip(dict(changes.status)))
            stored.written.append(sorted(changes.models))
            self.pending.apply(p, engine.pending_delta(p))
            engine.pending_saved(p)
            engine.checkpoint_saved(p)

    def restore(self, engine: Engine) -> None:
        for p, stored in sorted(self.partitions.items()):
            engine.restore_partition(p, stored.state, stored.models)


def _feed(engine: Engine, store: _Store, records: list[InputRecord]) -> None:
    store.pending.prefetch(engine, records)
    engine.process(records)


def test_a_checkpoint_writes_only_the_models_that_changed() -> None:
    engine, store = Engine(CONFIG, clock=lambda: T0), _Store()
    _feed(engine, store, _all_models(300))
    store.checkpoint(engine)
    assert store.partitions[0].written == [["a", "b", "c", "d"]]
    assert store.partitions[1].written == [["e", "f"]]
    _feed(engine, store, _events("b", 300, 50))
    changes = engine.checkpoint_partition(0)
    assert sorted(changes.models) == ["b"]
    assert sorted(changes.status) == ["b"]
    assert changes.status["b"]["predictions"] == 350
    assert changes.summary == engine.status()["partitions"][0]
    assert not changes.complete
    assert engine.checkpoint_partition(1).models == {}  # partition 1 had no events
    store.checkpoint(engine)
    assert engine.checkpoint_partition(0).models == {}  # nothing since


def test_dead_letters_and_retrain_results_mark_their_model() -> None:
    engine, store = Engine(CONFIG, clock=lambda: T0), _Store()
    _feed(engine, store, _events("a", 0, 50) + _events("c", 0, 50))
    store.checkpoint(engine)
    engine.record_dead_letter("c", 0, "invalid_json")
    engine.record_dead_letter(None, 0, "invalid_json")  # no model: the partition's state
    assert sorted(engine.checkpoint_partition(0).models) == ["c"]
    store.checkpoint(engine)
    result = RetrainResult("r1", "x", "a", "declined", "test", "2026-01-01T00:00:00Z")
    engine.retrain_result(result, 0)
    assert sorted(engine.checkpoint_partition(0).models) == ["a"]


def test_restore_after_partial_checkpoints_equals_the_engine() -> None:
    """Rounds of events for a few models each, a checkpoint after every round: the restored
    engine holds exactly the state of the original, and both go on alike."""
    clock = [T0]
    original, store = Engine(CONFIG, clock=lambda: clock[0]), _Store()
    rounds = [("a", "b", "c", "d", "e", "f"), ("a",), ("c", "e"), (), ("b",), ("a", "f")]
    position = dict.fromkeys(MODELS, 0)
    for active in rounds:
        records = []
        for model in active:
            records += _events(model, position[model], 200)
            position[model] += 200
        _feed(original, store, sorted(records, key=_at))
        original.record_dead_letter("d", 0, "schema")  # d: no events after the first round
        clock[0] += 10.0
        store.checkpoint(original)
    written = [len(models) for models in store.partitions[0].written]
    assert written == [4, 2, 2, 1, 2, 2]  # d's dead letter each round, then the active ones
    restored = Engine(CONFIG, clock=lambda: clock[0])
    store.restore(restored)
    for p in sorted(original.partitions()):
        assert _round_trip(restored.snapshot_partition(p)) == _round_trip(
            original.snapshot_partition(p)
        )
        assert store.partitions[p].status == _round_trip(
            {m: s for m, s in original.status()["models"].items() if MODELS[m] == p}
        )
    assert restored.status() == original.status()
    assert all(not restored.checkpoint_partition(p).models for p in restored.partitions())
    more = sorted(_events("b", position["b"], 300) + _events("e", position["e"], 300), key=_at)
    _feed(original, store, more)
    _feed(restored, store, more)
    assert restored.status() == original.status()


def test_a_tick_alert_marks_its_model() -> None:
    """Silence raises an alert and changes the model: the next checkpoint writes it."""
    clock = [T0]
    engine, store = Engine(CONFIG, clock=lambda: clock[0]), _Store()
    _feed(engine, store, _events("a", 0, 20) + _events("b", 0, 20))
    store.checkpoint(engine)
    clock[0] += 5.0
    _feed(engine, store, _events("b", 20, 20))
    clock[0] += 30.0
    alerts = engine.tick().alerts
    assert [(a.model_id, a.signal) for a in alerts] == [("a", "silence")]
    assert sorted(engine.checkpoint_partition(0).models) == ["a", "b"]


@pytest.mark.parametrize("old_format", [1, 2])
def test_an_older_single_value_snapshot_is_migrated_then_saved_whole(old_format: int) -> None:
    """A snapshot of an earlier release (every model inside one value) restores, and the
    next checkpoint writes every model of the partition, replacing what is stored."""
    engine, store = Engine(CONFIG, clock=lambda: T0), _Store()
    _feed(engine, store, _all_models(150))
    store.checkpoint(engine)
    old = _round_trip(engine.snapshot_partition(0))
    old["format"] = old_format
    assert len(old["models"]) == 4
    restored = Engine(CONFIG, clock=lambda: T0)
    restored.restore_partition(0, old)
    assert restored.status() == {
        "models": {m: s for m, s in engine.status()["models"].items() if MODELS[m] == 0},
        "partitions": {0: engine.status()["partitions"][0]},
    }
    changes = restored.checkpoint_partition(0)
    assert changes.complete
    assert sorted(changes.models) == ["a", "b", "c", "d"]
    assert changes.state["format"] == SNAPSHOT_FORMAT
    assert "models" not in changes.state
    restored.checkpoint_saved(0)
    again = restored.checkpoint_partition(0)
    assert (again.models, again.complete) == ({}, False)


def test_save_whole_makes_the_next_checkpoint_complete() -> None:
    engine, store = Engine(CONFIG, clock=lambda: T0), _Store()
    _feed(engine, store, _events("a", 0, 20) + _events("b", 0, 20))
    store.checkpoint(engine)
    engine.save_whole(0)
    engine.save_whole(7)  # no model there: the stored ones are replaced by none
    changes = engine.checkpoint_partition(0)
    assert (sorted(changes.models), changes.complete) == (["a", "b"], True)
    empty = engine.checkpoint_partition(7)
    assert (empty.models, empty.complete) == ({}, True)
    engine.checkpoint_saved(0)
    engine.checkpoint_saved(7)
    assert not engine.checkpoint_partition(0).complete
    assert not engine.checkpoint_partition(7).complete


def _all_models(n: int) -> list[InputRecord]:
    """``n`` predictions (and their labels) of every model, in event-time order."""
    return sorted((r for m in MODELS for r in _events(m, 0, n)), key=_at)


def _at(record: InputRecord) -> tuple[float, str]:
    return (record.timestamp, record.event.model_id)
