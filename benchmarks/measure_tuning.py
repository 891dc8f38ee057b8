"""Acceptance: `dlpipe tune` with 30 trials on breast_cancer vs the default config (same split, same seed).

What "the default config x 30" means here: one ``dl.train("breast_cancer")`` with the default
config (the same data, split, seed, preprocessing and recipe as every trial; it also fits the
baselines and scores the test split, which trials do not) timed in this process after a warm-up,
median of ``--default-repeats`` runs, times 30. Against it:

* ``search``: the whole ``tune(..., retrain=False)`` call (data loading and preprocessing, study
  creation, the 30 trials, the trials table and parameter importances), and
* ``with retrain``: plus retraining the best configuration with ``dl.train`` (a 31st training),
* ``strict``: the search against 30 x the default config's training alone (trial 0 of the study
  *is* the default config; its in-study time has no data loading, baselines or test scoring).

Also prints where the time went: trials by state (seconds, epochs) and the non-training remainder.

    .venv/bin/python benchmarks/measure_tuning.py [--trials 30] [--pruner hyperband|median|none]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import dlpipe as dl
from dlpipe.tuning import tune


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--pruner", default="hyperband")
    ap.add_argument("--default-repeats", type=int, default=3)
    ap.add_argument(
        "--keep", help="keep the tuning folder here (default: a temporary folder, removed)"
    )
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="dlpipe-tune-"))
    shutil.rmtree(work / "tune", ignore_errors=True)
    load_before = os.getloadavg()
    try:
        dl.train(
            "breast_cancer", progress="quiet", save=False, epochs=2
        )  # warm-up: first-call imports are not training time
        times = []
        for _ in range(args.default_repeats):
            t = time.perf_counter()
            run = dl.train("breast_cancer", progress="quiet", save=False)
            times.append(time.perf_counter() - t)
        default_s = statistics.median(times)
        t = time.perf_counter()
        result = tune(
            "breast_cancer",
            trials=args.trials,
            pruner=args.pruner,
            out=work / "tune",
            progress="quiet",
            retrain=True,
            report=False,
        )
        total_s = time.perf_counter() - t
        s = result.summary
        import pandas as pd

        trials = pd.read_csv(work / "tune" / "trials.csv")
        trial0_s = float(trials.set_index("number").loc[0, "seconds"])
        by_state = {
            state: {
                "trials": int(len(g)),
                "seconds": round(float(g["seconds"].sum()), 2),
                "epochs": int(g["epochs"].fillna(0).sum()) if state == "complete" else None,
            }
            for state, g in trials.groupby("state")
        }
        budget = args.trials * default_s
        out = {
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "trials": args.trials,
            "pruner": args.pruner,
            "complete": s["complete"],
            "pruned": s["pruned"],
            "failed": s["failed"],
            "default_val_loss": s["default_val_loss"],
            "best_val_loss": s["best_val_loss"],
            "default_val_accuracy": s["default_val_score"],
            "best_val_accuracy": s["best_val_score"],
            "default_train_s (median)": round(default_s, 3),
            "default_train_s (all)": [round(x, 3) for x in times],
            "default_epochs": len(run.history),
            "search_s": s["search_s"],
            "retrain_s": s.get("retrain_s"),
            "tune_total_s": round(total_s, 2),
            f"budget_s ({args.trials} x default)": round(budget, 2),
            "ratio search / budget": round(s["search_s"] / budget, 3),
            "ratio search+retrain / budget": round(total_s / budget, 3),
            "default config as trial 0 in the study_s": round(trial0_s, 3),
            "ratio strict: search / (trials x trial 0)": round(
                s["search_s"] / (args.trials * trial0_s), 3
            ),
            "time in trials by state": by_state,
            "search time outside trials_s": round(
                s["search_s"] - float(trials["seconds"].sum()), 2
            ),
            "best_params": s["best_params"],
        }
        print(json.dumps(out, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
