"""Metrics: arrays in, plain numbers out (scikit-learn does the arithmetic)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidConfigError, suggest

__all__ = ["SCORED_METRICS", "regression_metrics", "classification_metrics", "primary_metric"]


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, R² and Pearson correlation."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    out = {
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
    }
    if len(y_true) > 1 and np.std(y_pred) > 0 and np.std(y_true) > 0:
        out["pearson"] = float(np.corrcoef(y_true, y_pred)[0, 1])
    else:
        out["pearson"] = float("nan")
    return out


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, classes: list[Any]
) -> dict[str, Any]:
    """Accuracy, precision/recall/F1 (macro and per class), ROC-AUC, log loss, confusion matrix, report.

    ``y_true`` holds class codes 0..C-1; ``proba`` is (N, C).
    """
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        log_loss,
        precision_recall_fscore_support,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y_true = np.asarray(y_true).reshape(-1).astype(np.int64)
    labels = list(range(len(classes)))
    y_pred = proba.argmax(axis=1)
    out: dict[str, Any] = {"accuracy": float(accuracy_score(y_true, y_pred))}
    binary = len(classes) == 2
    if binary:
        out["precision"] = float(precision_score(y_true, y_pred, labels=labels, zero_division=0))
        out["recall"] = float(recall_score(y_true, y_pred, labels=labels, zero_division=0))
        out["f1"] = float(f1_score(y_true, y_pred, labels=labels, zero_division=0))
    out["precision_macro"] = float(
        precision_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )
    out["recall_macro"] = float(
        recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )
    out["f1_macro"] = float(
        f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )
    present = np.unique(y_true)
    if len(present) == len(classes):
        if binary:
            out["roc_auc"] = float(roc_auc_score(y_true, proba[:, 1]))
        else:
            out["roc_auc"] = float(roc_auc_score(y_true, proba, multi_class="ovr", labels=labels))
    else:
        out["roc_auc"] = float("nan")  # undefined when a class is absent from the test split
    clipped = np.clip(proba, 1e-15, 1 - 1e-15)
    out["log_loss"] = float(
        log_loss(y_true, clipped / clipped.sum(axis=1, keepdims=True), labels=labels)
    )
    out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out["per_class"] = {
        str(c): {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, c in enumerate(classes)
    }
    return out


# The metrics `score` computes for each task kind, so a chosen `metric` can be checked before training.
SCORED_METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("rmse", "mae", "r2", "pearson"),
    "binary": (
        "roc_auc",
        "log_loss",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "precision_macro",
        "recall_macro",
        "f1_macro",
    ),
    "multiclass": (
        "log_loss",
        "accuracy",
        "roc_auc",
        "precision_macro",
        "recall_macro",
        "f1_macro",
    ),
}

# As TabArena scores tabular tasks: ROC-AUC (binary), log loss (multiclass), RMSE (regression).
_DEFAULT_PRIMARY = {"regression": "rmse", "binary": "roc_auc", "multiclass": "log_loss"}


def primary_metric(task_kind: str, metric: str | None = None) -> str:
    """The metric a verdict is judged on: ``metric`` when given (not ``"auto"``), else the task's default.

    The defaults are TabArena's: ``roc_auc`` for binary, ``log_loss`` for multiclass, ``rmse`` for
    regression (``"loss"`` for any other kind).

    Raises:
        InvalidConfigError: ``metric`` is not one of the metrics scored for ``task_kind``.

    Example:
        >>> primary_metric("binary"), primary_metric("multiclass"), primary_metric("regression", "mae")
        ('roc_auc', 'log_loss', 'mae')
    """
    if metric is None or metric == "auto":
        return _DEFAULT_PRIMARY.get(task_kind, "loss")
    allowed = SCORED_METRICS.get(task_kind)
    if allowed is None or metric not in allowed:
        choices = ", ".join(allowed) if allowed else "none (only `auto`)"
        raise InvalidConfigError(
            f"`metric` is {metric!r} but a {task_kind} task is scored on {choices}"
            f"{suggest(metric, allowed or ())}; pass one of them or `auto`."
        )
    return metric
