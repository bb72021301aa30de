"""The transport-independent monitor engine: decoded events in; alerts, retrain requests and
checkpointable state out. No Kafka, no Redis here (the runner in ``streams.runner`` adds them).
See docs/engine.md for the configuration, signals, join, alert and retrain semantics.

Interface used by the runner, with the changes made against the original brief:

- :class:`MonitorConfig` (frozen, validated), :func:`load_config` (``path`` else
  ``$DRIFTRADAR_CONFIG`` else defaults), :class:`ConfigError` (``key``, ``problem``).
- :class:`InputRecord` (event, partition, offset, timestamp) in; :class:`EngineOutput`
  (alerts, retrain_requests) out.
- :class:`Engine` ``(config, *, clock=time.time)``:

  - ``process(records) -> EngineOutput``
  - ``tick(now=None) -> EngineOutput`` — silence and throughput collapse at processing time
    ``now`` (default: the injected clock). Join expiry is NOT done here: it follows each
    model's event-time watermark inside ``process`` (deterministic on replay).
  - ``report_lag({partition: lag}) -> EngineOutput`` — ``consumer_lag`` alerts, model id
    ``"_monitor"``.
  - ``record_dead_letter(model_id | None, partition)``
  - ``snapshot_partition(p) -> dict`` / ``restore_partition(p, data, models=None)`` /
    ``drop_partition(p)`` / ``partitions() -> set[int]``; snapshots are plain data
    (msgpack/JSON-safe) with ``"format": 3``.
  - ``checkpoint_partition(p) -> PartitionChanges`` (the partition's state, and snapshot
    — already msgpack, ``msgspec.Raw`` — and status of the models changed since its last
    checkpoint) / ``checkpoint_saved(p)``
    / ``save_whole(p)`` (the next checkpoint writes every model).
  - ``status() -> {"models": {...}}`` (the ``status --json`` shape, plus ``model_version``,
    ``versions``, ``task``, ``partition`` per model).
  - ``metrics_view() -> {"models": {model_id: ModelView}}`` — a dict shaped like
    ``streams.metrics.EngineView`` (not an iterator), plus engine counters (``join``,
    ``counters``, ``quality``, ``retrain``, ``features``).
  - ``traces()`` (each detector's statistic and threshold now, per model) and
    ``signal_results(model_id, signal)`` (its detectors' results), for
    ``driftradar backtest``.
"""

from streams.engine.config import ConfigError, ModelConfig, MonitorConfig, load_config
from streams.engine.engine import Engine
from streams.engine.records import EngineOutput, InputRecord

__all__ = [
    "ConfigError",
    "Engine",
    "EngineOutput",
    "InputRecord",
    "ModelConfig",
    "MonitorConfig",
    "load_config",
]
