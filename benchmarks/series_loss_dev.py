"""Choose the global series model's training loss and learning rate on M1 yearly's development spans (issue #18).

Each development span is M1 yearly without the last ``D`` points of every series (D in 6, 9, 12, 15,
18; series left with fewer than 13 points are left out), so the points M1's reported figures hold out
(its last 6) are never read. For each setting (``dl.train`` keyword arguments) and each span and seed,
one default run scores its held-out horizon; the table gives the mean MASE over the spans' seeds per
span, the mean over spans, and drift's MASE on the same windows. The run's ETS baseline is skipped
(it changes no error of the model; a run is ~3x faster).

What it chose (2026-12-07, seeds 0-4): MAE over MSE for many series, and Adam at 3e-4
(``dlpipe.pipeline._fit_series``: ``_loss``, ``PANEL_LEARNING_RATE``; docs/series.md).

    nice -n 5 .venv/bin/python benchmarks/series_loss_dev.py --seeds 0 1 2 3 4 \
        --settings '{"loss": "mse", "learning_rate": 1e-3}' '{"loss": "mae", "learning_rate": 1e-3}' \
                   '{"loss": "mae", "learning_rate": 3e-4}' '{"loss": "mae", "learning_rate": 1e-4}'
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from interval_scale_dev import truncated_m1  # this folder's sibling script

import dlpipe as dl
from dlpipe.pipeline._fit_series import SeriesRecipe


def score(path: str, seed: int, options: dict[str, Any]) -> tuple[float, float]:
    """The model's and drift's mean MASE on the span's held-out horizon (one run, ETS skipped)."""
    original = SeriesRecipe._ets
    SeriesRecipe._ets = lambda self, ctx, part: (None, "skipped")  # type: ignore[method-assign]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = dl.train(path, seed=seed, progress="quiet", save=False, **options)
    finally:
        SeriesRecipe._ets = original  # type: ignore[method-assign]
    test = run.metrics["test"]
    return float(test["model"]["mase"]), float(test["baselines"]["drift"]["mase"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--drops", type=int, nargs="+", default=[6, 9, 12, 15, 18])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument(
        "--settings", nargs="+", default=["{}"], help="dl.train keyword arguments as JSON"
    )
    args = p.parse_args()
    settings = [json.loads(s) for s in args.settings]
    with tempfile.TemporaryDirectory() as tmp:
        spans = {d: truncated_m1(Path(tmp) / f"m1_minus{d}.tsf", d)[0] for d in args.drops}
        table: dict[int, dict[int, list[float]]] = {i: {} for i in range(len(settings))}
        drift: dict[int, float] = {}
        for d, path in spans.items():  # settings interleaved within each span and seed
            for seed in args.seeds:
                for i, options in enumerate(settings):
                    mase, drift[d] = score(path, seed, options)
                    table[i].setdefault(d, []).append(mase)
                    print(
                        f"drop {d} seed {seed} {json.dumps(options)}: MASE {mase:.3f} "
                        f"(drift {drift[d]:.3f}, load {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
    head = " | ".join(f"-{d}" for d in args.drops)
    print(f"\n| setting | {head} | mean |\n|---|" + "---|" * (len(args.drops) + 1))
    for i, options in enumerate(settings):
        per = [float(np.mean(table[i][d])) for d in args.drops]
        cells = " | ".join(f"{v:.3f}" for v in per)
        print(f"| {json.dumps(options)} | {cells} | {np.mean(per):.3f} |")
    cells = " | ".join(f"{drift[d]:.3f}" for d in args.drops)
    print(f"| drift | {cells} | {np.mean([drift[d] for d in args.drops]):.3f} |")


if __name__ == "__main__":
    main()
