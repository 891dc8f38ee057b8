"""Would K-fold cross-fit bagging beat the default's "first fit + refit" below 2,000 training rows?
(issue #17: breast_cancer, where logistic regression leads; development tables only.)

Not a dlpipe feature: an experiment that mimics one, the way TabArena bags every model (AutoGluon's
K folds). Per table and seed, the rows the default trains on (the suite's training rows: its train +
validation) are cut into K folds (stratified for classification, the seed's shuffle). K copies of
the default model (``dl.train`` defaults, seed ``seed + 100 * k``) each train on K-1 folds with early
stopping on the fold left out, and are not refitted. Test predictions are the mean of the K models'
probabilities (regression: values). For classification, one temperature is fitted on the
out-of-fold logits of every row (``fit_temperature``: the product's rule, kept from 200 rows) and
applied to each model before the mean. Beside it, the default as ``dl.train`` runs it (first fit on
80%, early stopping on 20%, refit on all rows). The in-run tree baselines are switched off for both.
``--control`` replaces the bag by the mean of K default runs (seeds ``seed + 100 * k``, each with its
refit and temperature): as many models, none cross-fitted, to tell the folds from the averaging.

Refuses the suite's tables. Run: ``nice -n 5 .venv/bin/python benchmarks/tabular_bag_dev.py
--tables biopsy,pima,hmda,hastie,mroz --seeds 0,1,2 --folds 5``
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tabular_suite  # noqa: E402


def outputs(run: Any, rows: pd.DataFrame, task: str, classes: list[str]) -> np.ndarray:
    """Regression values (N,), or the model's logits before any temperature (N, 1 or C)."""
    bundle = run.bundle
    bundle.task.temperature = 1.0
    out = bundle.predict(rows)
    if task == "regression":
        return out["prediction"].to_numpy(dtype=float)
    p = np.column_stack([out[f"proba_{c}"].to_numpy(dtype=float) for c in classes])
    p = np.clip(p, 1e-12, 1.0)
    if task == "binary":
        return np.log(p[:, 1:] / p[:, :1])
    return np.log(p)


def bagged(
    train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, classes: list[str], **kw: Any
) -> tuple[dict[str, float], float]:
    """The K-fold bag's test scores and its temperature (kw: seed, folds)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    from dlpipe.evaluation.calibration import fit_temperature, probabilities
    from dlpipe.pipeline import _fit

    train_module = importlib.import_module("dlpipe.pipeline.train")  # the package exports train()

    seed, k = kw["seed"], kw["folds"]
    y = train[target].to_numpy()
    cut = (KFold if task == "regression" else StratifiedKFold)(k, shuffle=True, random_state=seed)
    split, refit = train_module._split, _fit.TABLE_MODEL_DEFAULTS["refit_below"]
    oof: np.ndarray | None = None
    tests = []
    _fit.TABLE_MODEL_DEFAULTS["refit_below"] = (
        0  # each fold's model is kept as early stopping left it
    )
    try:
        for i, (tr, va) in enumerate(cut.split(train, y)):
            train_module._split = lambda *a, tr=tr, va=va: (tr, va, np.zeros(0, np.int64))
            run = _default_run(train, target, test, seed + 100 * i)
            held = outputs(run, train.iloc[va].drop(columns=target), task, classes)
            if oof is None:
                oof = np.zeros((len(train),) + held.shape[1:])
            oof[va] = held
            tests.append(outputs(run, test.drop(columns=target), task, classes))
    finally:
        train_module._split, _fit.TABLE_MODEL_DEFAULTS["refit_below"] = split, refit
    assert oof is not None
    if task == "regression":
        pred = np.mean(tests, axis=0)
        return tabular_suite.score(task, test[target].to_numpy(), pred, None, []), 1.0
    codes = np.asarray([classes.index(str(v)) for v in y])
    temperature = fit_temperature(oof, codes)[0]
    proba = np.mean([probabilities(t, temperature) for t in tests], axis=0)
    pred = np.asarray(classes)[proba.argmax(axis=1)]
    return tabular_suite.score(task, test[target].to_numpy(), pred, proba, classes), temperature


def _default_run(train: pd.DataFrame, target: str, test: pd.DataFrame, seed: int) -> Any:
    """One ``dl.train`` with the defaults, nothing saved."""
    import dlpipe as dl

    return dl.train(train, target, test=test, save=False, report=False, progress="quiet", seed=seed)


def seeds_mean(
    train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, classes: list[str], **kw: Any
) -> tuple[dict[str, float], float]:
    """The control: the mean of K default runs (refit and temperature as ``dl.train`` gives them)."""
    seed, outs = kw["seed"], []
    for i in range(kw["folds"]):
        run = _default_run(train, target, test, seed + 100 * i)
        out = run.bundle.predict(test.drop(columns=target))
        cols = ["prediction"] if task == "regression" else [f"proba_{c}" for c in classes]
        outs.append(out[cols].to_numpy(dtype=float))
    mean = np.mean(outs, axis=0)
    if task == "regression":
        return tabular_suite.score(task, test[target].to_numpy(), mean[:, 0], None, []), 1.0
    pred = np.asarray(classes)[mean.argmax(axis=1)]
    return tabular_suite.score(task, test[target].to_numpy(), pred, mean, classes), 1.0


def one(name: str, seed: int, folds: int, control: bool = False) -> dict[str, Any]:
    train, test, target, task = tabular_suite.load_table(name)
    classes: list[str] = []
    if task != "regression":
        train = train.assign(**{target: train[target].astype(str)})
        test = test.assign(**{target: test[target].astype(str)})
        classes = sorted(train[target].unique())
    default = tabular_suite.run_dlpipe(train, test, target, task, classes, seed, {})
    start = time.perf_counter()
    fit = seeds_mean if control else bagged
    scores, temperature = fit(train, test, target, task, classes, seed=seed, folds=folds)
    bag = {**scores, "seconds": time.perf_counter() - start, "temperature": temperature}
    print(f"done {name} seed {seed}", file=sys.stderr, flush=True)
    return {"table": name, "task": task, "seed": seed, "default": default, "bag": bag}


def main(argv: list[str] | None = None) -> int:
    from dlpipe.pipeline import _table_eval

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--control",
        action="store_true",
        help="instead of the bag: the mean of --folds default runs (seeds seed + 100 * i)",
    )
    args = ap.parse_args(argv)
    tables = tabular_suite.development_tables(ap, args.tables)
    warnings.filterwarnings("ignore")
    _table_eval.fit_tree_baselines = lambda *args, **kwargs: {}
    started, load = time.strftime("%H:%M UTC", time.gmtime()), os.getloadavg()
    rows = []
    for t in tables:
        for s in args.seeds.split(","):
            rows.append(one(t, int(s), args.folds, args.control))
            if args.out:
                Path(args.out).write_text(json.dumps(rows, indent=1, default=float))
    label = f"mean of {args.folds} runs" if args.control else f"{args.folds}-fold bag"
    print(f"| table | seed | metrics | default | {label} | T | seconds |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        ms = (tabular_suite.PRIMARY[r["task"]], tabular_suite.SECONDARY[r["task"]])
        d, b = (" / ".join(f"{r[k][m]:.4f}" for m in ms) for k in ("default", "bag"))
        secs = f"{r['default']['seconds']:.0f} / {r['bag']['seconds']:.0f}"
        print(
            f"| {r['table']} | {r['seed']} | {' / '.join(ms)} | {d} | {b} | {r['bag']['temperature']:.2f} | {secs} |"
        )
    for t in tables:
        mine = [r for r in rows if r["table"] == t]
        m = tabular_suite.PRIMARY[mine[0]["task"]]
        sign = 1 if tabular_suite.HIGHER_BETTER[m] else -1
        better = sum(sign * (r["bag"][m] - r["default"][m]) > 0 for r in mine)
        worse = sum(sign * (r["bag"][m] - r["default"][m]) < 0 for r in mine)
        means = [np.mean([r[k][m] for r in mine]) for k in ("default", "bag")]
        print(
            f"{t}: {m} default {means[0]:.4f}, bag {means[1]:.4f} (bag better {better}, worse {worse})"
        )
    print(
        f"started {started}, load {load}, ended {time.strftime('%H:%M UTC', time.gmtime())}, load {os.getloadavg()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
