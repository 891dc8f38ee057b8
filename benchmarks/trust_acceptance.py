"""Issue #20's acceptance figures for calibration and conformal intervals, from dlpipe's own runs.

For each table and seed, ``dl.train`` with the defaults; the figures are read from the run's
metrics.json as the run wrote them:

- classification (breast_cancer, wine, digits, caravan): test-split ECE (15 bins, top label) before
  and after temperature scaling (``calibration.test_ece``) and the temperature kept;
- regression (diabetes, bikeshare): empirical test coverage of the split-conformal 80/90/95% intervals
  (``intervals.test_coverage``);
- every run: ``explanations.seconds`` (calibration + intervals + permutation importance + integrated
  gradients, the cost these add to a table run).

sklearn sets are split by dlpipe (seeded); the shared CSVs carry their own ``split`` column, whose
test rows are passed as ``test=`` (the seed then changes the train/validation split and the model).

    nice -n 5 .venv/bin/python benchmarks/trust_acceptance.py --seeds 0,1,2 --out /tmp/trust.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

SHARED = Path(os.environ.get("DLPIPE_SHARED_DATA", "/work/shared/data/tabular"))
TABLES = {
    "breast_cancer": "sklearn",
    "wine": "sklearn",
    "digits": "sklearn",
    "caravan": "csv:Purchase",
    "diabetes": "sklearn",
    "bikeshare": "csv:bikers",
}


def load(name: str) -> tuple[pd.DataFrame, pd.DataFrame | None, str]:
    source = TABLES[name]
    if source == "sklearn":
        from sklearn import datasets

        frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
        return frame, None, "target"
    target = source.split(":", 1)[1]
    df = pd.read_csv(SHARED / f"{name}.csv")
    train = df[df["split"] == "train"].drop(columns="split").reset_index(drop=True)
    test = df[df["split"] == "test"].drop(columns="split").reset_index(drop=True)
    return train, test, target


def one(name: str, seed: int, workdir: Path) -> dict[str, Any]:
    import dlpipe as dl

    frame, test, target = load(name)
    t0 = time.perf_counter()
    dl.train(
        frame,
        target=target,
        test=test,
        seed=seed,
        out=workdir / f"{name}-{seed}",
        progress="none",
        report=False,
        overwrite=True,
    )
    wall = time.perf_counter() - t0
    m = json.loads((workdir / f"{name}-{seed}" / "metrics.json").read_text())
    row: dict[str, Any] = {
        "table": name,
        "seed": seed,
        "wall_s": round(wall, 2),
        "trust_s": m["explanations"].get("seconds"),
        "load1": os.getloadavg()[0],
    }
    cal = m.get("calibration")
    if cal:
        row.update(
            temperature=cal["temperature"],
            ece_before=cal["test_ece"]["before"],
            ece_after=cal["test_ece"]["after"],
            test_log_loss_before=cal["test_log_loss"]["before"],
            test_log_loss_after=cal["test_log_loss"]["after"],
        )
    iv = m.get("intervals")
    if iv and iv.get("test_coverage"):
        row.update(
            {f"coverage_{int(100 * lv)}": c for lv, c in zip(iv["levels"], iv["test_coverage"])}
        )
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default=",".join(TABLES))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.tables.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                row = one(name, seed, Path(tmp))
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
