"""Honest baselines, fitted on the same training rows and preprocessed features as the model.

Each baseline is kept as a few plain numbers (class prior, mean, linear coefficients), so a bundle
can carry it as JSON and show it beside the model on any later evaluation file too.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dlpipe.evaluation.directions import best_score, compare_scores

__all__ = ["fit_baselines", "predict_baseline", "verdict"]


def fit_baselines(
    kind: str, x_train: np.ndarray, y_train: np.ndarray, n_classes: int = 0, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Majority class + logistic regression (classification); mean + ridge regression (regression).

    ``y_train`` holds class codes (classification) or values in original units (regression).
    Returns JSON-able parameters per baseline, for :func:`predict_baseline`.
    """
    if kind == "regression":
        from sklearn.linear_model import Ridge

        ridge = Ridge(alpha=1.0).fit(x_train, y_train)
        return {
            "mean": {"value": float(np.mean(y_train))},
            "ridge": {
                "coef": np.ravel(ridge.coef_).tolist(),
                "intercept": float(np.ravel([ridge.intercept_])[0]),
            },
        }
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    codes = y_train.reshape(-1).astype(np.int64)
    prior = np.bincount(codes, minlength=n_classes) / len(codes)
    out: dict[str, dict[str, Any]] = {"majority": {"prior": prior.tolist()}}
    if len(np.unique(codes)) > 1 and x_train.shape[1] > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            logreg = LogisticRegression(max_iter=1000, random_state=seed).fit(x_train, codes)
        out["logistic"] = {
            "coef": logreg.coef_.tolist(),
            "intercept": np.ravel(logreg.intercept_).tolist(),
            "classes": logreg.classes_.astype(int).tolist(),
            "n_classes": n_classes,
        }
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


def verdict(metric: str, model_value: float, baselines: dict[str, dict[str, Any]]) -> str:
    """One plain sentence: does the model beat its best baseline on ``metric`` (by its direction)?"""
    best_of = best_score(metric, {name: m.get(metric) for name, m in baselines.items()})
    if best_of is None:
        return f"The model scores {metric} {model_value:.4f}; no baseline could be computed."
    best_name, best = best_of
    outcome = compare_scores(metric, model_value, best)
    if outcome == "better":
        return f"The model beats its best baseline ({best_name}) on {metric}: {model_value:.4f} vs {best:.4f}."
    if outcome == "tie":
        return (
            f"The model only ties its best baseline ({best_name}) on {metric}: {model_value:.4f}."
        )
    return (
        f"The model loses to its best baseline ({best_name}) on {metric}: {model_value:.4f} vs {best:.4f}; "
        "prefer the baseline or tune the model."
    )
