"""Would blending the logistic baseline into the default's probabilities help small binary tables?
(issue #17: breast_cancer, where logistic regression leads; development tables only.)

Not a dlpipe feature: an experiment that mimics one. Per table and seed, the training rows are cut
80/20 (A / B, stratified, the seed's cut). The default model and a logistic regression (median
impute, scaling, one-hot; as the suite's) are fitted on A; the blend weight ``w`` in 0, 0.1, ..., 1
is the one whose ``w * p_net + (1 - w) * p_logistic`` has the lowest log loss on B. Then both are
fitted on all training rows (the default exactly as ``dl.train`` runs it) and the test rows are
scored for the default alone, logistic alone and the blend with that ``w``: ROC-AUC and accuracy.

Refuses the suite's tables. Run: ``nice -n 5 .venv/bin/python benchmarks/linear_blend_dev.py
--tables biopsy,pima,hmda,hastie,mroz --seeds 0,1,2``
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tabular_suite  # noqa: E402

WEIGHTS = np.round(np.linspace(0.0, 1.0, 11), 2)


def net_proba(
    train: pd.DataFrame, rows: pd.DataFrame, target: str, positive: str, seed: int
) -> np.ndarray:
    """The default model's probability of ``positive`` on ``rows``, trained on ``train``."""
    import dlpipe as dl

    run = dl.train(train, target, save=False, report=False, progress="quiet", seed=seed)
    out = run.bundle.predict(rows.drop(columns=target))
    return out[f"proba_{positive}"].to_numpy(dtype=float)


def logistic_proba(
    train: pd.DataFrame, rows: pd.DataFrame, target: str, positive: str
) -> np.ndarray:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    x = train.drop(columns=target)
    cats = [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c])]
    nums = [c for c in x.columns if c not in cats]
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats),
        ]
    )
    pipe = make_pipeline(pre, LogisticRegression(max_iter=5000))
    pipe.fit(x, train[target].astype(str).to_numpy())
    col = list(pipe.classes_).index(positive)
    return pipe.predict_proba(rows.drop(columns=target))[:, col]  # type: ignore[no-any-return]


def one(name: str, seed: int) -> dict[str, Any]:
    from sklearn import metrics
    from sklearn.model_selection import train_test_split

    train, test, target, task = tabular_suite.load_table(name)
    if task != "binary":
        raise SystemExit(f"{name} is {task}; this experiment is for binary tables")
    train = train.assign(**{target: train[target].astype(str)})
    test = test.assign(**{target: test[target].astype(str)})
    positive = sorted(train[target].unique())[-1]
    a, b = train_test_split(train, test_size=0.2, stratify=train[target], random_state=seed)
    yb = (b[target] == positive).to_numpy()
    pn, pl = net_proba(a, b, target, positive, seed), logistic_proba(a, b, target, positive)
    losses = [
        metrics.log_loss(yb, np.clip(w * pn + (1 - w) * pl, 1e-7, 1 - 1e-7), labels=[False, True])
        for w in WEIGHTS
    ]
    w = float(WEIGHTS[int(np.argmin(losses))])
    yt = (test[target] == positive).to_numpy()
    tn, tl = (
        net_proba(train, test, target, positive, seed),
        logistic_proba(train, test, target, positive),
    )
    out: dict[str, Any] = {"table": name, "seed": seed, "w": w}
    for label, p in (("net", tn), ("logistic", tl), ("blend", w * tn + (1 - w) * tl)):
        out[label] = {
            "roc_auc": float(metrics.roc_auc_score(yt, p)),
            "accuracy": float(np.mean((p >= 0.5) == yt)),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    tables = tabular_suite.development_tables(ap, args.tables)
    warnings.filterwarnings("ignore")
    rows = [one(t, int(s)) for t in tables for s in args.seeds.split(",")]
    print("| table | seed | w | net ROC-AUC / acc | logistic | blend |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        cells = [
            f"{r[k]['roc_auc']:.4f} / {r[k]['accuracy']:.4f}" for k in ("net", "logistic", "blend")
        ]
        print(f"| {r['table']} | {r['seed']} | {r['w']:.1f} | " + " | ".join(cells) + " |")
    for t in tables:
        mine = [r for r in rows if r["table"] == t]
        means = {
            k: (np.mean([r[k]["roc_auc"] for r in mine]), np.mean([r[k]["accuracy"] for r in mine]))
            for k in ("net", "logistic", "blend")
        }
        print(f"{t}: " + ", ".join(f"{k} {v[0]:.4f} / {v[1]:.4f}" for k, v in means.items()))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
