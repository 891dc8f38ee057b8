"""One series: does the forecast loss of many series (MAE) suit one series too? (issue #18)

Many series train on MAE (chosen on M1 yearly's development spans: ``series_loss_dev.py``); one
series kept MSE, not measured then. Here: default single-series runs with ``loss="mse"`` and
``loss="mae"``, seeds 0-2, one thread, M4's MASE on each run's own test windows. ``--part dev``: the
series the single-series defaults were chosen on (statsmodels' sunspots, co2, nile, and macrodata's
realgdp with four features; ``measure_series.py``); ``--part check``: the two series that re-checked
``relative`` and chose nothing (elec_equip, interest_inflation's R; ``recheck_defaults_b.py``).

    nice -n 5 .venv/bin/python benchmarks/series_one_loss_dev.py --part dev [--series sunspots nile]
    nice -n 5 .venv/bin/python benchmarks/series_one_loss_dev.py --part check
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from measure_series import macro_frame, statsmodels_series  # this folder's sibling scripts
from recheck_defaults_b import series_frames

import dlpipe as dl


def cases(part: str) -> list[tuple[str, Any, str, str, dict[str, Any]]]:
    """(name, frame, target, time column, extra dl.train arguments) of the part's series."""
    if part == "check":
        return [(name, frame, target, "date", {}) for name, frame, target in series_frames()]
    out = [(name, frame, target, tcol, {}) for name, frame, target, tcol in statsmodels_series()]
    features = ["realcons", "realinv", "realgovt", "realdpi"]
    out.append(
        ("macrodata", macro_frame(), "realgdp", "date", {"features": features, "lookback": 30})
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=["dev", "check"], default="dev")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--series", nargs="+", default=None, help="only these series (names as printed)")
    args = p.parse_args()
    summary: dict[tuple[str, str], list[float]] = {}
    naive: dict[str, float] = {}
    for name, frame, target, tcol, extra in cases(args.part):
        if args.series and name not in args.series:
            continue
        for seed in args.seeds:  # the two losses interleaved
            for loss in ("mse", "mae"):
                run = dl.train(
                    frame,
                    target,
                    task="forecast",
                    time_column=tcol,
                    loss=loss,
                    seed=seed,
                    threads=args.threads,
                    progress="quiet",
                    save=False,
                    name=f"{name}-{loss}-{seed}",
                    **extra,
                )
                test = run.metrics["test"]
                summary.setdefault((name, loss), []).append(test["model"]["mase"])
                naive[name] = test["baselines"]["naive"]["mase"]
                print(f"{name} seed {seed} {loss}: MASE {test['model']['mase']:.3f}", flush=True)
    print("\n| series | MSE | MAE | naive |\n|---|---|---|---|")
    for name in naive:
        cells = []
        for loss in ("mse", "mae"):
            v = summary[(name, loss)]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{statistics.mean(v):.3f} ± {sd:.3f}")
        print(f"| {name} | {cells[0]} | {cells[1]} | {naive[name]:.3f} |")


if __name__ == "__main__":
    main()
