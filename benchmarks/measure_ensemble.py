"""Acceptance: a soft-voting ensemble of three differently-seeded MLPs on wine vs the mean of its members.

One fixed stratified test split (25 %) that no member trains on; each member is `dl.train` on the
rest with seeds 0, 1, 2 (the seed also changes its train/validation split and initial weights).

    .venv/bin/python benchmarks/measure_ensemble.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json

from sklearn.model_selection import train_test_split

import dlpipe as dl
from dlpipe.ensembles import build_ensemble


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    ds = dl.datasets.load("wine")
    frame = ds.frame
    train, test = train_test_split(frame, test_size=0.25, stratify=frame[ds.target], random_state=0)
    members = [
        dl.train(train, ds.target, test=test, seed=s, progress="quiet", save=False)
        for s in args.seeds
    ]
    ens = build_ensemble([m.bundle for m in members], "soft")
    keys = ("accuracy", "f1_macro", "log_loss")
    rows = {
        f"member seed {s}": m.bundle.evaluate(test)["model"] for s, m in zip(args.seeds, members)
    }
    mean = {k: sum(r[k] for r in rows.values()) / len(rows) for k in keys}
    scores = ens.evaluate(test)
    out = {
        "test_rows": len(test),
        **{n: {k: round(r[k], 4) for k in keys} for n, r in rows.items()},
        "mean of members": {k: round(v, 4) for k, v in mean.items()},
        "soft-voting ensemble": {k: round(scores["model"][k], 4) for k in keys},
        "baselines": {n: round(b["accuracy"], 4) for n, b in scores["baselines"].items()},
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
