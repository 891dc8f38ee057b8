"""Which way each metric is better: one table that the run listing, comparisons and verdicts read.

A metric named in ``metrics.json`` (or in ``history.csv``, with a ``val_``/``train_``/``test_``
prefix) is either higher-is-better (``"max"``: accuracy, ROC-AUC, R², returns) or
lower-is-better (``"min"``: MAE, MASE, log loss, reconstruction error, losses). A name that is
not in the table and does not end in ``loss``/``error`` has no known direction (``None``): callers
then say so instead of guessing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal, NamedTuple, TypeGuard

__all__ = ["METRICS", "MetricInfo", "metric_direction", "is_score", "best_score", "compare_scores"]

Direction = Literal["max", "min"]
Outcome = Literal["better", "tie", "worse"]


class MetricInfo(NamedTuple):
    """A metric's direction and the words a page shows for it."""

    direction: Direction
    label: str


METRICS: dict[str, MetricInfo] = {
    # classification
    "accuracy": MetricInfo("max", "accuracy"),
    "balanced_accuracy": MetricInfo("max", "balanced accuracy"),
    "precision": MetricInfo("max", "precision"),
    "recall": MetricInfo("max", "recall"),
    "f1": MetricInfo("max", "F1"),
    "precision_macro": MetricInfo("max", "precision (macro)"),
    "recall_macro": MetricInfo("max", "recall (macro)"),
    "f1_macro": MetricInfo("max", "F1 (macro)"),
    "roc_auc": MetricInfo("max", "ROC-AUC"),
    "pr_auc": MetricInfo("max", "PR-AUC"),
    "average_precision": MetricInfo("max", "average precision"),
    "log_loss": MetricInfo("min", "log loss"),
    "brier": MetricInfo("min", "Brier score"),
    "ece": MetricInfo("min", "expected calibration error"),
    # regression
    "r2": MetricInfo("max", "R²"),
    "pearson": MetricInfo("max", "Pearson correlation"),
    "mae": MetricInfo("min", "MAE"),
    "mse": MetricInfo("min", "MSE"),
    "rmse": MetricInfo("min", "RMSE"),
    "mape": MetricInfo("min", "MAPE (%)"),
    # forecasting
    "smape": MetricInfo("min", "sMAPE (%)"),
    "mase": MetricInfo("min", "MASE (M4: over the in-sample seasonal-naive MAE)"),
    "relative_mae": MetricInfo("min", "MAE relative to the naive forecast's on the same windows"),
    "mase_insample": MetricInfo("min", "MASE (in-sample scale)"),
    # generative and embeddings
    "reconstruction_error": MetricInfo("min", "reconstruction error"),
    "reconstruction_mse": MetricInfo("min", "reconstruction MSE"),
    "nn_distance": MetricInfo("min", "distance of a sample to its nearest training row"),
    "knn_accuracy": MetricInfo("max", "kNN accuracy of the embeddings"),
    # training curves
    "loss": MetricInfo("min", "loss"),
    "perplexity": MetricInfo("min", "perplexity"),
    # reinforcement learning
    "mean_return": MetricInfo("max", "mean episode return"),
    "return": MetricInfo("max", "episode return"),
    "episode_return": MetricInfo("max", "episode return"),
    "min_return": MetricInfo("max", "worst episode return"),
    "max_return": MetricInfo("max", "best episode return"),
    # std_return and mean_length have no direction: a longer episode is good in CartPole, bad in MountainCar
}

_PREFIXES = ("val_", "train_", "test_")
_TIE = 1e-9  # the same tolerance the verdict sentence has always used


def metric_direction(name: str) -> Direction | None:
    """``"max"`` when a higher value of ``name`` is better, ``"min"`` when lower is, ``None`` if unknown.

    Example:
        >>> metric_direction("mase"), metric_direction("val_accuracy"), metric_direction("val_loss")
        ('min', 'max', 'min')
        >>> metric_direction("lr") is None
        True
    """
    if not isinstance(name, str):
        return None
    for key in (name, *(name[len(p) :] for p in _PREFIXES if name.startswith(p))):
        if key in METRICS:
            return METRICS[key].direction
        if key.endswith(("_loss", "_error", "_mse")):
            return "min"
    return None


def is_score(value: object) -> TypeGuard[float]:
    """A finite number (not a bool, not null/NaN): something a direction can rank."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def best_score(metric: str, scores: Mapping[str, object]) -> tuple[str, float] | None:
    """The best ``(name, value)`` among ``scores`` by ``metric``'s direction; nulls and NaN are skipped.

    ``None`` when nothing can be ranked (no finite value, or the direction is unknown).

    Example:
        >>> best_score("mase", {"naive": 1.0, "seasonal_naive": 0.4, "moving_average": None})
        ('seasonal_naive', 0.4)
    """
    direction = metric_direction(metric)
    finite = {k: float(v) for k, v in scores.items() if is_score(v)}
    if direction is None or not finite:
        return None
    pick = max if direction == "max" else min
    name = pick(finite, key=finite.__getitem__)
    return name, finite[name]


def compare_scores(metric: str, value: float, other: float) -> Outcome | None:
    """Whether ``value`` is ``"better"`` than, ties (within 1e-9) or is ``"worse"`` than ``other`` on ``metric``.

    ``None`` when either is not a finite number or the direction of ``metric`` is unknown.

    Example:
        >>> compare_scores("mae", 0.8, 1.0), compare_scores("accuracy", 0.8, 1.0), compare_scores("r2", 0.5, 0.5)
        ('better', 'worse', 'tie')
    """
    direction = metric_direction(metric)
    if direction is None or not (is_score(value) and is_score(other)):
        return None
    if abs(value - other) <= _TIE:
        return "tie"
    return "better" if (value > other) == (direction == "max") else "worse"
