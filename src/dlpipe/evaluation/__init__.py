"""Evaluation: metrics from arrays and honest baselines beside every model."""

from dlpipe.evaluation.baselines import (
    RUN_ONLY_BASELINES,
    fit_baselines,
    fit_tree_baselines,
    predict_baseline,
    verdict,
)
from dlpipe.evaluation.directions import METRICS, best_score, compare_scores, metric_direction
from dlpipe.evaluation.metrics import (
    SCORED_METRICS,
    classification_metrics,
    primary_metric,
    regression_metrics,
)
from dlpipe.evaluation.scoring import class_predictions, score

__all__ = [
    "METRICS",
    "RUN_ONLY_BASELINES",
    "SCORED_METRICS",
    "best_score",
    "compare_scores",
    "metric_direction",
    "class_predictions",
    "classification_metrics",
    "fit_baselines",
    "fit_tree_baselines",
    "predict_baseline",
    "primary_metric",
    "regression_metrics",
    "score",
    "verdict",
]
