"""Simulate the run lengths of ADWIN and Page-Hinkley on stable input; write the fits.

The engine feeds both detectors values made uniform by the reference's quantile transform
(``detectors.transform``), so one simulation on uniform values holds for every continuous
feature. For each parameter value on a grid, a stream of uniform values (Page-Hinkley:
standardised, ``(u - 0.5) * sqrt(12)``) is fed until ``--updates`` values; the mean run
length is values / false alarms. Then

* ADWIN: ``ln ARL = a + b ln(1/delta)`` (least squares over the grid, on the shorter run
  length of uniform values and of 0/1 errors at a 20 % rate: error streams are not
  transformed);
* Page-Hinkley (delta 0.5): ``ln ARL = c + theta * lambda`` (Siegmund's form).

``detectors/_sequential_fit.py`` is written with the two fits and the table they come from,
and :mod:`detectors.budget` extrapolates them to run lengths of 1e7-1e9 that cannot be
simulated directly; the benchmark ``benchmarks.false_alarms`` checks the result end to end.

    python -m benchmarks.calibrate_sequential            # ~2 min on 2 cores
    python -m benchmarks.calibrate_sequential --check    # print, do not write
"""

from __future__ import annotations

import argparse
import math
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from detectors.registry import create

ADWIN_DELTAS = (0.5, 0.3, 0.2, 0.1, 0.05, 0.02)
PH_THRESHOLDS = (5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0)
CHUNK = 1_000_000
TARGET = Path(__file__).resolve().parent.parent / "detectors" / "_sequential_fit.py"


def _run(task: tuple[str, float, int, str]) -> tuple[str, float, str, int, int]:
    """(kind, parameter, input, values, false alarms)."""
    kind, value, updates, source = task
    rng = np.random.default_rng([int(value * 1000), len(source)])
    if kind == "adwin":
        detector = create("adwin", {"delta": value})
    else:
        detector = create("page_hinkley", {"threshold": value, "delta": 0.5})
    alarms = done = 0
    while done < updates:
        if source == "uniform":
            chunk = rng.random(CHUNK)
        else:  # 0/1 errors at a 20 % rate: a bounded, discrete input
            chunk = (rng.random(CHUNK) < 0.2).astype(np.float64)
        if kind == "page_hinkley":
            chunk = (chunk - chunk.mean() if source != "uniform" else chunk - 0.5) * math.sqrt(12)
        alarms += int(np.count_nonzero(detector.update_many(chunk) == 2))
        done += CHUNK
    return kind, value, source, done, alarms


def fit(xs: list[float], arls: list[float]) -> tuple[float, float]:
    """Least squares ``ln ARL = a + b x``."""
    slope, intercept = np.polyfit(np.asarray(xs), np.log(np.asarray(arls)), 1)
    return float(intercept), float(slope)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--updates", type=int, default=40_000_000, help="values per grid point")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--check", action="store_true", help="print only")
    args = parser.parse_args(argv)
    tasks = [("adwin", d, args.updates, "uniform") for d in ADWIN_DELTAS]
    tasks += [("adwin", d, args.updates, "bernoulli") for d in ADWIN_DELTAS]
    tasks += [("page_hinkley", t, args.updates, "uniform") for t in PH_THRESHOLDS]
    started = time.perf_counter()
    with Pool(args.processes) as pool:
        rows = pool.map(_run, tasks, chunksize=1)
    print("kind          parameter  input      values       false alarms  mean run length")
    for kind, value, source, done, alarms in rows:
        arl = done / alarms if alarms else math.inf
        print(f"{kind:<13} {value:<10g} {source:<10} {done:>11,} {alarms:>13,}  {arl:>14,.0f}")
    # ADWIN's run length is shorter on skewed 0/1 values than on uniform ones: fit the
    # shorter of the two at each delta, so the fit holds for error streams too
    shortest: dict[float, float] = {}
    for k, v, _, d, a in rows:
        if k == "adwin" and a >= 20:
            shortest[v] = min(shortest.get(v, math.inf), d / a)
    adwin = sorted(shortest.items())
    ph = [(v, d / a) for k, v, s, d, a in rows if k == "page_hinkley" and a >= 20]
    adwin_fit = fit([math.log(1 / v) for v, _ in adwin], [arl for _, arl in adwin])
    ph_fit = fit([v for v, _ in ph], [arl for _, arl in ph])
    print(f"ADWIN: ln ARL = {adwin_fit[0]:.4f} + {adwin_fit[1]:.4f} ln(1/delta)")
    print(f"Page-Hinkley (delta 0.5): ln ARL = {ph_fit[0]:.4f} + {ph_fit[1]:.4f} lambda")
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.check:
        return
    table = "\n".join(
        f"#   {kind:<13} {value:<6g} {source:<10} {done:>11,} values {alarms:>9,} alarms"
        for kind, value, source, done, alarms in rows
    )
    TARGET.write_text(
        '"""Run-length fits of ADWIN and Page-Hinkley on stable input (generated file).\n\n'
        "Written by ``python -m benchmarks.calibrate_sequential``; do not edit by hand.\n"
        '"""\n\n'
        "from typing import Final\n\n"
        f"# Simulated ({args.updates:,} values per row; ADWIN is fitted on the shorter run\n"
        "# length of the two inputs at each delta):\n"
        f"{table}\n\n"
        "#: ADWIN: ln ARL = a + b ln(1/delta).\n"
        f"ADWIN_FIT: Final = ({adwin_fit[0]!r}, {adwin_fit[1]!r})\n"
        "#: Page-Hinkley, delta 0.5, standardised uniform values: ln ARL = c + theta lambda.\n"
        f"PAGE_HINKLEY_FIT: Final = ({ph_fit[0]!r}, {ph_fit[1]!r})\n",
        encoding="utf-8",
    )
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
