"""`driftradar status`: models, signals and detector state of a monitor group, from Redis.

Reads the checkpoint of every partition the group has written (so it works while the monitor
runs, after it stopped, and with several processes) and merges it per model.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from streams.checkpoint import CheckpointStore, StoredStatus
from streams.core.redis_client import group_id, open_redis, redis_url
from streams.runner.status import merge_models

HELP = "show models, signals and detector state (read from Redis)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.add_argument(
        "--group-id",
        help="monitor consumer group (default: $DRIFTRADAR_GROUP_ID or 'driftradar')",
    )
    parser.add_argument("--redis-url", help="Redis to read (default: $REDIS_URL)")


def run(args: argparse.Namespace) -> int:
    client = open_redis(redis_url(args.redis_url))
    stored = CheckpointStore(client, group_id(args.group_id)).statuses()
    document = status_document(stored)
    if args.json:
        sys.stdout.write(msgspec.json.encode(document).decode() + "\n")
    else:
        _print_tables(group_id(args.group_id), document)
    return 0


def status_document(stored: list[StoredStatus]) -> dict[str, Any]:
    """``{"models": {...}, "partitions": {...}}``: merged models, then per-partition offsets.

    A model whose events arrived on more than one partition (a producer with another
    partitioner: its state on several partitions, or events refused as ``split_model``)
    gets ``split``: the partitions and the refused events per partition.
    """
    models = merge_models(s.status for s in stored)
    for model_id, split in _splits(stored).items():
        if model_id in models:
            models[model_id]["split"] = split
    return {
        "models": models,
        "partitions": {
            str(s.partition): {
                "offsets": dict(s.offsets),
                "updated_at": _time(s.updated_at),
                # dead letters of no known model by kind, events refused by max_models
                "dead_letters": dict(s.summary.get("dead_letters", {})),
                "refused_events": int(s.summary.get("refused_events", 0)),
                "split_events": dict(s.summary.get("split_events", {})),
                "alignment": dict(s.alignment),
            }
            for s in stored
        },
    }


def _splits(stored: list[StoredStatus]) -> dict[str, dict[str, Any]]:
    """Per split model: every partition it was seen on, and the events refused on each."""
    homes: dict[str, set[int]] = {}
    refused: dict[str, dict[str, int]] = {}
    for s in stored:
        for model_id in s.status:
            homes.setdefault(model_id, set()).add(s.partition)
        for model_id, events in s.summary.get("split_events", {}).items():
            refused.setdefault(model_id, {})[str(s.partition)] = int(events)
            homes.setdefault(model_id, set()).add(s.partition)
    return {
        model_id: {"partitions": sorted(partitions), "refused_events": refused.get(model_id, {})}
        for model_id, partitions in homes.items()
        if len(partitions) > 1
    }


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _print_tables(group: str, document: dict[str, Any]) -> None:
    console = Console()
    models: dict[str, Any] = document["models"]
    if not document["partitions"]:
        console.print(f"No checkpoint yet for group [bold]{group}[/]: is `driftradar run` up?")
        return
    table = Table(title=f"driftradar status — group {group}")
    for name in ("model", "predictions", "ground truth", "joined", "dead letters", "in drift"):
        table.add_column(name, justify="left" if name == "model" else "right")
    table.add_column("signals in drift")
    for model_id, status in models.items():
        detectors = [
            (signal, name, state)
            for signal, per_detector in status.get("signals", {}).items()
            for name, state in per_detector.items()
        ]
        drifting = [signal for signal, _, state in detectors if state.get("drift")]
        signals = list(dict.fromkeys(drifting))
        table.add_row(
            model_id,
            str(status.get("predictions", 0)),
            str(status.get("ground_truth", 0)),
            str(status.get("joined", 0)),
            str(status.get("dead_letters", 0)),
            f"{len(drifting)} of {len(detectors)}",
            "[red]" + ", ".join(signals) + "[/]" if signals else "[green]none[/]",
        )
    console.print(table)
    for model_id, status in models.items():
        split = status.get("split")
        if split:
            refused = sum(split["refused_events"].values())
            console.print(
                f"[red]split model {model_id}[/]: events on partitions "
                f"{', '.join(map(str, split['partitions']))} ({refused} refused and "
                "dead-lettered): a producer uses another partitioner than murmur2 "
                "(docs/producers.md, the partitioning rule)"
            )
    console.print(_join_table(models))
    console.print(_retrain_table(models))
    parts = Table(title="checkpointed offsets (next offset to consume per topic) and alignment")
    parts.add_column("partition", justify="right")
    parts.add_column("offsets")
    parts.add_column("waits for")
    parts.add_column("paused")
    parts.add_column("dead letters of no model")
    parts.add_column("updated at")
    for partition, info in document["partitions"].items():
        offsets = ", ".join(f"{topic}={offset}" for topic, offset in info["offsets"].items())
        alignment = info.get("alignment", {})
        junk = ", ".join(f"{kind} {n}" for kind, n in sorted(info["dead_letters"].items()))
        if info["refused_events"]:
            junk += f" ({info['refused_events']} refused by max_models)"
        parts.add_row(
            partition,
            offsets,
            alignment.get("waiting_for") or "-",
            ", ".join(alignment.get("paused", [])) or "-",
            junk or "-",
            info["updated_at"],
        )
    console.print(parts)


def _join_table(models: dict[str, Any]) -> Table:
    """Per model: what waits for its label, how much of it came, how late, what was lost."""
    table = Table(title="prediction / label join")
    columns = (
        "model",
        "pending",
        "label coverage",
        "delay p50",
        "delay p95",
        "expired",
        "evicted (pred / label)",
        "labels w/o prediction",
    )
    for name in columns:
        table.add_column(name, justify="left" if name == "model" else "right")
    for model_id, status in models.items():
        join = status.get("join", {})
        coverage = join.get("label_coverage")
        table.add_row(
            model_id,
            str(join.get("pending_predictions", 0)),
            "-" if coverage is None else f"{coverage:.1%}",
            _duration(join.get("label_delay_p50")),
            _duration(join.get("label_delay_p95")),
            str(join.get("expired_unlabelled", 0)),
            f"{join.get('evicted_predictions', 0)} / {join.get('evicted_labels', 0)}",
            str(join.get("label_without_prediction", 0)),
        )
    return table


def _retrain_table(models: dict[str, Any]) -> Table:
    """Per model: the retrain state, what a pending request waits for, the last decision."""
    table = Table(title="retraining (requests and the worker's decisions)")
    for name in ("model", "state", "waiting for", "requests", "last decision"):
        table.add_column(name, justify="right" if name == "requests" else "left")
    for model_id, status in models.items():
        retrain = status.get("retrain") or {}
        waiting = retrain.get("waiting")
        decision = retrain.get("last_decision")
        table.add_row(
            model_id,
            str(retrain.get("state", "-")),
            "-"
            if not waiting
            else f"{waiting['labelled_pairs']}/{waiting['min_labelled']} labelled pairs "
            f"since {waiting['change_at']} (or until {waiting['deadline']})",
            str(retrain.get("requested", 0)),
            "-"
            if not decision
            else f"{decision['outcome']}"
            + (f" {decision['deployed_version']}" if decision.get("deployed_version") else "")
            + (f": {decision['reason']}" if decision.get("reason") else "")
            + f" ({decision['decided_at']})",
        )
    return table


def _duration(seconds: float | None) -> str:
    """``1h 05m``, ``42s``… for a delay in seconds (``-`` when unknown).

    >>> _duration(3900.0), _duration(42.4), _duration(None), _duration(2 * 86400.0)
    ('1h 05m', '42s', '-', '2d 00h')
    """
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"
