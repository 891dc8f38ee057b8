"""Honest baselines, fitted on the same training rows as the model, and the verdict beside them.

Two sorts:

- **Stored** (:func:`fit_baselines`): majority class + logistic regression, or mean + ridge regression.
  Each is a few plain numbers (class prior, mean, linear coefficients), so a bundle carries it as JSON
  and shows it beside the model on any later evaluation file too.
- **Run-only** (:func:`fit_tree_baselines`, tables): scikit-learn's ``HistGradientBoosting`` and a
  random forest with their library defaults. A fitted tree ensemble has no safe JSON form (and a
  bundle never holds a pickle), so they are scored on the run's test split only: metrics.json and the
  report show them, ``dlpipe evaluate`` on a bundle does not.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from dlpipe.core.runtime import free_cores
from dlpipe.evaluation.directions import best_score, compare_scores, is_score

__all__ = [
    "RUN_ONLY_BASELINES",
    "TreeBaseline",
    "fit_baselines",
    "fit_tree_baselines",
    "forest_skip_reason",
    "predict_baseline",
    "verdict",
]

RUN_ONLY_BASELINES = ("hist_gradient_boosting", "random_forest")
# scikit-learn's default forest size. Issue #17 measured 500 trees; on this 2-core machine 500 took 3-5x
# as long (bikeshare, 6,916 x 26: 21.5 s vs 4.4 s; caravan 4.0 s vs 1.2 s; default 5.3 s vs 0.9 s) for
# test scores 0.002-0.011 ROC-AUC / 0.5% RMSE better, and HistGradientBoosting beat both on all three.
FOREST_TREES = 100
# A forest's cost grows with rows x features tried per split (all of them for regression, sqrt for
# classification): 6,000 x 100 regression took 91 s on one busy core (classification, 10 per split: 17 s).
# Above this many, the forest is not fitted (deterministically, so a rerun scores the same baselines) and
# the run says so; HistGradientBoosting, which beat it on every table measured, is always fitted.
FOREST_MAX_WORK = 300_000


def forest_skip_reason(kind: str, n_rows: int, n_features: int) -> str | None:
    """Why the random-forest baseline is not fitted on ``n_rows`` x ``n_features``, or None when it is."""
    per_split = n_features if kind == "regression" else max(1, int(np.sqrt(n_features)))
    if n_rows * per_split <= FOREST_MAX_WORK:
        return None
    return (
        f"random_forest was not fitted: {n_rows:,} training rows x {per_split} features tried per split "
        f"exceed the {FOREST_MAX_WORK:,} a run spends on it (about a minute on 2 cores at that size); "
        "hist_gradient_boosting is the tree baseline here"
    )


class TreeBaseline(NamedTuple):
    """A run-only baseline's test output (values, or (N, C) probabilities) and its cost in seconds (fit + predict)."""

    output: np.ndarray
    seconds: float


def fit_baselines(
    kind: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    n_classes: int = 0,
    seed: int = 0,
    seconds: dict[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Majority class + logistic regression (classification); mean + ridge regression (regression).

    ``y_train`` holds class codes (classification) or values in original units (regression).
    Returns JSON-able parameters per baseline, for :func:`predict_baseline`. When ``seconds`` is given,
    each baseline's fitting time is put in it by name.
    """
    clock = {} if seconds is None else seconds
    if kind == "regression":
        from sklearn.linear_model import Ridge

        t0 = time.perf_counter()
        out = {"mean": {"value": float(np.mean(y_train))}}
        t1 = time.perf_counter()
        ridge = Ridge(alpha=1.0).fit(x_train, y_train)
        out["ridge"] = {
            "coef": np.ravel(ridge.coef_).tolist(),
            "intercept": float(np.ravel([ridge.intercept_])[0]),
        }
        clock.update(mean=t1 - t0, ridge=time.perf_counter() - t1)
        return out
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    codes = y_train.reshape(-1).astype(np.int64)
    prior = np.bincount(codes, minlength=n_classes) / len(codes)
    out_c: dict[str, dict[str, Any]] = {"majority": {"prior": prior.tolist()}}
    t1 = time.perf_counter()
    clock["majority"] = t1 - t0
    if len(np.unique(codes)) > 1 and x_train.shape[1] > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            logreg = LogisticRegression(max_iter=1000, random_state=seed).fit(x_train, codes)
        out_c["logistic"] = {
            "coef": logreg.coef_.tolist(),
            "intercept": np.ravel(logreg.intercept_).tolist(),
            "classes": logreg.classes_.astype(int).tolist(),
            "n_classes": n_classes,
        }
        clock["logistic"] = time.perf_counter() - t1
    return out_c


def fit_tree_baselines(
    kind: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    n_classes: int = 0,
    seed: int = 0,
    categorical: Sequence[bool] | None = None,
) -> dict[str, TreeBaseline]:
    """HistGradientBoosting and a random forest (scikit-learn defaults), fitted and scored on ``x_test``.

    ``categorical`` marks the columns of ``x_train`` holding category codes (0..254), which
    HistGradientBoosting splits as categories. Only ``random_state`` (the run's seed) and the threads
    are set: as many as other processes leave cores free (:func:`~dlpipe.core.runtime.free_cores`).
    Empty rows, or classification with a single class in the training rows, get none. Returns each baseline's test output (values in original units, or (N, C) probabilities over
    ``n_classes``) and its seconds to fit and predict.
    """
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    if len(x_test) == 0 or len(x_train) == 0:
        return {}  # nothing to fit or score (`score` says so for the model's empty test split)
    mask = list(categorical) if categorical is not None and any(categorical) else None
    # As many threads as other processes leave cores free: an OpenMP thread that shares its core with
    # another job stalls every parallel region (breast_cancer's 340 rows: 0.2-0.3 s on one thread, 9-48 s
    # on two beside one other job at load 1.8 of 2 cores), and the report shows each baseline's seconds
    threads = free_cores()
    if kind == "regression":
        models: dict[str, Any] = {
            "hist_gradient_boosting": HistGradientBoostingRegressor(
                categorical_features=mask, random_state=seed
            ),
            "random_forest": RandomForestRegressor(
                n_estimators=FOREST_TREES, n_jobs=threads, random_state=seed
            ),
        }
        y: np.ndarray = np.asarray(y_train, dtype=np.float64).reshape(-1)
    else:
        y = np.asarray(y_train).reshape(-1).astype(np.int64)
        if len(np.unique(y)) < 2 or x_train.shape[1] == 0:
            return {}
        models = {
            "hist_gradient_boosting": HistGradientBoostingClassifier(
                categorical_features=mask, random_state=seed
            ),
            "random_forest": RandomForestClassifier(
                n_estimators=FOREST_TREES, n_jobs=threads, random_state=seed
            ),
        }
    if forest_skip_reason(kind, len(x_train), x_train.shape[1]) is not None:
        del models["random_forest"]
    out: dict[str, TreeBaseline] = {}
    for name, est in models.items():
        t0 = time.perf_counter()
        with threadpool_limits(threads):
            est.fit(x_train, y)
            if kind == "regression":
                output = np.asarray(est.predict(x_test), dtype=np.float64)
            else:
                output = np.zeros((len(x_test), n_classes))
                output[:, est.classes_.astype(int)] = est.predict_proba(x_test)
        out[name] = TreeBaseline(output, time.perf_counter() - t0)
    return out


def predict_baseline(name: str, params: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Values (regression) or class probabilities (N, C) of one fitted baseline."""
    n = len(x)
    if name == "mean":
        return np.full(n, params["value"])
    if name == "ridge":
        return x @ np.asarray(params["coef"]) + params["intercept"]
    if name == "majority":
        return np.tile(np.asarray(params["prior"]), (n, 1))
    if name == "logistic":
        coef, intercept = np.asarray(params["coef"]), np.asarray(params["intercept"])
        z = x @ coef.T + intercept
        if coef.shape[0] == 1:  # binary: one decision function for the larger class code
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            sub = np.column_stack([1 - p1, p1])
        else:
            z = z - z.max(axis=1, keepdims=True)
            sub = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        proba = np.zeros((n, params["n_classes"]))
        proba[:, params["classes"]] = sub
        return proba
    raise KeyError(name)


# The metrics a verdict also weighs beside the primary one: the TabArena metric and the plain one.
_ALSO = ("roc_auc", "log_loss", "accuracy", "rmse", "mae", "r2")
_WORDS = {"better": "beats", "tie": "only ties", "worse": "loses to"}


def verdict(
    metric: str,
    model: float | Mapping[str, Any],
    baselines: Mapping[str, Mapping[str, Any]],
    also: Sequence[str] | None = None,
) -> str:
    """A short paragraph: does the model beat its best baseline on ``metric``, and where do metrics disagree?

    The best baseline is the best by ``metric`` (by its direction). With the model's scores as a
    mapping, the verdict also compares it with that baseline on ``also`` (default: whichever of
    ROC-AUC, log loss, accuracy, RMSE, MAE and R² were scored) and names every one whose outcome
    differs from the primary one's, and the ones that agree in brief.

    Example:
        >>> base = {"ridge": {"rmse": 3.4, "mae": 2.5, "r2": 0.74}}
        >>> print(verdict("rmse", {"rmse": 3.1, "mae": 2.1, "r2": 0.71}, base))
        The model beats its best baseline (ridge) on rmse: 3.1000 vs 3.4000, and on mae (2.1000 vs 2.5000); but it loses to ridge on r2 (0.7100 vs 0.7400).
    """
    scores: Mapping[str, Any] = {metric: model} if not isinstance(model, Mapping) else model
    others = [m for m in (_ALSO if also is None else also) if m != metric and m in scores]
    if not isinstance(model, Mapping):
        others = []
    judge = _judge(metric, scores, baselines)
    prefix = ""
    if (
        judge is None
    ):  # the primary cannot rank (undefined on these rows): judge on the next that can
        for m in others:
            judge = _judge(m, scores, baselines)
            if judge is not None:
                prefix = f"The model's {metric} is undefined or has no baseline to compare on these rows, so it is judged on {m}. "
                metric = m
                others = [o for o in others if o != m]
                break
    if judge is None:
        value = scores.get(metric)
        shown = f"{value:.4f}" if is_score(value) else "undefined"
        return f"The model scores {metric} {shown}; no baseline could be computed."
    best_name, best, outcome = judge
    value = float(scores[metric])
    head = f"The model {_WORDS[outcome]} its best baseline ({best_name}) on {metric}: "
    head += f"{value:.4f}" if outcome == "tie" else f"{value:.4f} vs {best:.4f}"
    same: list[str] = []
    differ: list[tuple[str, str]] = []
    for m in others:
        theirs, mine = baselines[best_name].get(m), scores.get(m)
        if not (is_score(mine) and is_score(theirs)):
            continue
        result = compare_scores(m, mine, theirs)
        if result is None:
            continue
        text = f"{m} ({mine:.4f} vs {theirs:.4f})"
        if result == outcome:
            same.append(text)
        else:
            differ.append((result, text))
    if same:
        head += ", and on " + _join(same)
    turns: list[str] = []  # "beats ridge on r2 (...)", then "only ties it on mae (...)"
    for kind in ("better", "tie", "worse"):
        names = [t for r, t in differ if r == kind]
        if names:
            turns.append(f"{_WORDS[kind]} {'it' if turns else best_name} on {_join(names)}")
    if turns:
        head += "; but it " + " and ".join(turns)
    text = prefix + head + "."
    if outcome == "worse":
        text += " Prefer the baseline or tune the model."
    return text


def _judge(
    metric: str, scores: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]]
) -> tuple[str, float, str] | None:
    value = scores.get(metric)
    best_of = best_score(metric, {name: m.get(metric) for name, m in baselines.items()})
    if best_of is None or not is_score(value):
        return None
    outcome = compare_scores(metric, float(value), best_of[1])
    return None if outcome is None else (best_of[0], best_of[1], outcome)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
