"""Acceptance: `dlpipe tune` with 30 trials on breast_cancer vs the default config (same split, same seed).

Reports the best validation loss/accuracy beside the default config's, and the time ratio
tuning / (30 x default training time). Both are measured in this one run.

    .venv/bin/python benchmarks/measure_tuning.py [--trials 30] [--pruner hyperband|median]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import dlpipe as dl
from dlpipe.tuning import tune


def _trial0_seconds(path: Path) -> float:
    import pandas as pd

    return float(pd.read_csv(path).set_index("number").loc[0, "seconds"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--pruner", default="hyperband")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dlpipe-tune-"))
    try:
        dl.train("breast_cancer", progress="quiet", save=False, epochs=2)  # warm-up: first-call imports are not training time
        t = time.perf_counter()
        run = dl.train("breast_cancer", progress="quiet", save=False)
        default_s = time.perf_counter() - t
        t = time.perf_counter()
        result = tune("breast_cancer", trials=args.trials, pruner=args.pruner, out=work / "tune", progress="quiet", retrain=False)
        tune_s = time.perf_counter() - t
        s = result.summary
        out = {
            "trials": args.trials, "pruner": args.pruner,
            "complete": s["complete"], "pruned": s["pruned"], "failed": s["failed"],
            "default_val_loss": s["default_val_loss"], "best_val_loss": s["best_val_loss"],
            "default_val_accuracy": s["default_val_score"], "best_val_accuracy": s["best_val_score"],
            "default_train_s": round(default_s, 2), "default_epochs": len(run.history),
            "tuning_s": round(tune_s, 2), "default_config_as_trial_0_s": round(_trial0_seconds(work / "tune" / "trials.csv"), 2), "budget_s (30 x default)": round(30 * default_s, 2),
            "ratio tuning / (30 x default)": round(tune_s / (30 * default_s), 3),
            "best_params": s["best_params"],
        }
        print(json.dumps(out, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
