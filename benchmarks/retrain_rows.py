"""How many labelled post-change rows the local trainer needs: candidate quality vs rows.

Run ``python -m benchmarks.retrain_rows [--seeds S] [--sizes N,N,...] [--eval-rows E]``.

For each seed the churn simulator (:mod:`producers.simulator`) generates the
``concept-drift`` scenario offline, all of it after the change (``change_at=0``), with its
default label coverage. The first N labelled events are a retrain window, exactly as the
local trainer sees one: :func:`producers.retrain.evaluation.compare` fits the candidate on
the oldest 75 % and decides on the newest 25 % against the current model (the simulator's
``v1``, :func:`producers.churn.model_parameters`). The candidate is then scored on the
*last* E labelled events of the stream, which no window size reaches — the quality the
deployed model would have — next to two references measured on the same rows: the
current model (the baseline: what staying on ``v1`` costs) and the world's own rule (the
ceiling no model can beat). ``gap closed`` is the candidate's ROC AUC gain over the
baseline as a share of the ceiling's: 100 % is a perfect refit.

A second table repeats the decision with labels replaced by coin flips (same base rate):
every deployment there is a false one.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from typing import Final

import numpy as np

from producers.churn import MODEL_COEFFICIENTS, model_parameters
from producers.retrain.dataset import LabelledEvent
from producers.retrain.evaluation import CurrentModel, DecisionRules, compare
from producers.retrain.trainer import fit_logistic, predict_many, score
from producers.scenarios import SCENARIOS
from producers.simulator import Kind, Outgoing, Simulation, SimulationConfig
from streams.core.events import LogisticParameters, decode_ground_truth, decode_prediction

__all__ = ["main"]

DEFAULT_SIZES: Final = (100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 20000)
SCENARIO: Final = "concept-drift"


def labelled_events(seed: int, count: int) -> list[LabelledEvent]:
    """The first ``count`` labelled events of the seeded post-change stream, by event time."""
    config = SimulationConfig(
        scenario=SCENARIO, events=int(count / 0.85) + 500, seed=seed, change_at=0
    )
    predictions: dict[str, LabelledEvent] = {}
    labels: dict[str, int | float | bool | str] = {}
    for item in Simulation(config):
        if not isinstance(item, Outgoing):
            continue
        if item.kind is Kind.PREDICTION:
            p = decode_prediction(item.value)
            assert isinstance(p.prediction, float)
            predictions[p.event_id] = LabelledEvent(
                p.event_id, p.event_time(), p.model_version, p.features, p.prediction, 0
            )
        else:
            g = decode_ground_truth(item.value)
            labels[g.event_id] = g.label
    joined = [
        LabelledEvent(e.event_id, e.event_time, e.model_version, e.features, e.prediction, label)
        for event_id, e in predictions.items()
        if (label := labels.get(event_id)) is not None
    ]
    joined.sort(key=lambda e: (e.event_time, e.event_id))
    if len(joined) < count:
        raise SystemExit(f"seed {seed}: only {len(joined)} labelled events, wanted {count}")
    return joined[:count]


def _quality(params: LogisticParameters, rows: Sequence[LabelledEvent]) -> tuple[float, float]:
    y = [float(e.label) for e in rows]
    s = score(y, predict_many(params, [e.features for e in rows]))
    assert s.auc is not None
    return s.auc, s.log_loss


def _noisy(events: Sequence[LabelledEvent], rng: np.random.Generator) -> list[LabelledEvent]:
    rate = float(np.mean([float(e.label) for e in events]))
    flips = rng.random(len(events)) < rate
    return [
        LabelledEvent(e.event_id, e.event_time, e.model_version, e.features, e.prediction, int(f))
        for e, f in zip(events, flips, strict=True)
    ]


def _cell(values: Sequence[float]) -> str:
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.3f} ±{spread:.3f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=20, help="seeded streams per size (20)")
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, DEFAULT_SIZES)),
        help="labelled rows per window, comma-separated",
    )
    parser.add_argument("--eval-rows", type=int, default=5000, help="rows scored per seed (5000)")
    args = parser.parse_args(argv)
    sizes = sorted({int(part) for part in args.sizes.split(",")})
    rules = DecisionRules(min_rows=min(sizes))
    current = CurrentModel("v1", model_parameters(MODEL_COEFFICIENTS))
    world = model_parameters(SCENARIOS[SCENARIO].after.world)

    auc: dict[int, list[float]] = {n: [] for n in sizes}
    loss: dict[int, list[float]] = {n: [] for n in sizes}
    closed: dict[int, list[float]] = {n: [] for n in sizes}
    deployed: dict[int, int] = dict.fromkeys(sizes, 0)
    false_deploys: dict[int, int] = dict.fromkeys(sizes, 0)
    baseline: list[tuple[float, float]] = []
    ceiling: list[tuple[float, float]] = []
    for seed in range(args.seeds):
        stream = labelled_events(seed, max(sizes) + args.eval_rows)
        held = stream[-args.eval_rows :]
        base, best = _quality(current.parameters or world, held), _quality(world, held)
        baseline.append(base)
        ceiling.append(best)
        rng = np.random.default_rng(1000 + seed)
        for n in sizes:
            window = stream[:n]
            split = n - max(1, round(n * rules.holdout))
            params = fit_logistic(
                [e.features for e in window[:split]],
                [float(e.label) for e in window[:split]],
                l2=rules.l2,
            )
            a, ll = _quality(params, held)
            auc[n].append(a)
            loss[n].append(ll)
            closed[n].append((a - base[0]) / (best[0] - base[0]))
            deployed[n] += compare(window, current, rules).deploy
            false_deploys[n] += compare(_noisy(window, rng), current, rules).deploy

    print(
        f"{SCENARIO}: candidate fitted on 75 % of N labelled post-change rows, scored on "
        f"{args.eval_rows} later rows; {args.seeds} seeds (mean ±sd)"
    )
    b_auc, b_loss = zip(*baseline, strict=True)
    c_auc, c_loss = zip(*ceiling, strict=True)
    print(f"baseline (current v1): roc_auc {_cell(b_auc)}  log_loss {_cell(b_loss)}")
    print(f"ceiling (world's rule): roc_auc {_cell(c_auc)}  log_loss {_cell(c_loss)}")
    header = (
        f"{'N':>6} {'train':>6} {'roc_auc':>13} {'log_loss':>13} {'gap closed':>11} "
        f"{'deployed':>9} {'noise: deployed':>16}"
    )
    print(header)
    for n in sizes:
        split = n - max(1, round(n * rules.holdout))
        print(
            f"{n:>6} {split:>6} {_cell(auc[n]):>13} {_cell(loss[n]):>13} "
            f"{statistics.fmean(closed[n]):>10.0%} {deployed[n]:>4}/{args.seeds:<4} "
            f"{false_deploys[n]:>11}/{args.seeds:<4}"
        )


if __name__ == "__main__":
    main()
