"""Issue #18's M1 yearly acceptance: one global default model, the last 6 points of each series held out.

M1 yearly (../shared/data/forecasting/m1_yearly_dataset.tsf, 181 series, horizon 6) trained with
dlpipe's defaults (`dl.train(path)`: the .tsf file's horizon held out, N-BEATS-style global model,
refit on training + validation windows before the test origin), over seeds. MASE is M4's (scaled by
the in-sample naive MAE, m = 1 for yearly data), averaged over the 181 series; the same run scores
naive, drift and ETS (statsmodels, AICc over none/additive/damped trends) on the same windows, so
the ETS figure is measured here. Coverage: the share of the 181 x 6 held-out points inside the 80% and
95% conformal intervals, whose scale (``dlpipe.data.backtest.interval_scale``) and calibration errors
(validation + four refits cut before the test span) were chosen on development spans before these
points (``benchmarks/interval_scale_dev.py``, ``benchmarks/interval_errors_dev.py``), never on them.

Published on the same protocol (Nixtla's statsforecast / Chronos papers): AutoETS 3.950,
Chronos-Bolt-base (zero-shot) 4.405, AutoCES 3.394, naive 4.894, random walk with drift 3.489.

    nice -n 5 .venv/bin/python benchmarks/m1_suite.py [--seeds 0 1 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

import dlpipe as dl

M1 = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "forecasting"
    / "m1_yearly_dataset.tsf"
)
PUBLISHED = {
    "AutoETS": 3.950,
    "Chronos-Bolt-base": 4.405,
    "AutoCES": 3.394,
    "naive": 4.894,
    "RW drift": 3.489,
}


def run_once(seed: int, **options: object) -> dict[str, object]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = dl.train(str(M1), seed=seed, progress="quiet", save=False, **options)  # type: ignore[arg-type]
    m = run.metrics
    test = m["test"]
    return {
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 1),
        "load": os.getloadavg()[0],
        "windows": test["windows"],
        "epochs": m["best_epoch"],
        "model": test["model"]["mase"],
        **{name: b["mase"] for name, b in test["baselines"].items()},
        "coverage": m["intervals"].get("coverage"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--options", default="{}", help="extra dl.train keyword arguments as JSON")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    options = json.loads(args.options)
    rows = []
    print(
        "| seed | model MASE | naive | drift | ETS (ours) | 80% cov | 95% cov | windows | best epoch | s | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        r = run_once(seed, **options)
        rows.append(r)
        cov = r["coverage"] or {}
        print(
            f"| {seed} | {r['model']:.3f} | {r['naive']:.3f} | {r['drift']:.3f} | {r.get('ets', float('nan')):.3f} "
            f"| {cov.get('80', float('nan')):.3f} | {cov.get('95', float('nan')):.3f} | {r['windows']} | {r['epochs']} "
            f"| {r['seconds']} | {r['load']:.1f} |",
            flush=True,
        )
    model = np.array([r["model"] for r in rows])
    c80 = np.array([(r["coverage"] or {}).get("80", np.nan) for r in rows])
    c95 = np.array([(r["coverage"] or {}).get("95", np.nan) for r in rows])
    print(
        f"\nmean over {len(rows)} seeds: model MASE {model.mean():.3f} ± {model.std():.3f}, "
        f"ETS (ours) {rows[0].get('ets', float('nan')):.3f}, coverage 80% {c80.mean():.3f}, 95% {c95.mean():.3f}"
    )
    print("published: " + ", ".join(f"{k} {v:.3f}" for k, v in PUBLISHED.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
