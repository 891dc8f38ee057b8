"""Score a model's outputs and its baselines' on the same rows, with a verdict."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlpipe.evaluation.baselines import predict_baseline, verdict
from dlpipe.evaluation.metrics import classification_metrics, primary_metric, regression_metrics

__all__ = ["score"]


def score(
    kind: str,
    y_true: np.ndarray,
    output: np.ndarray,
    x_baseline: np.ndarray,
    baselines: dict[str, dict[str, Any]],
    classes: list[Any] | None = None,
) -> dict[str, Any]:
    """Metrics of the model (``output``: values or (N, C) probabilities) and of each baseline.

    ``y_true`` holds class codes (classification) or values in original units (regression).
    """
    if kind == "regression":
        model = regression_metrics(y_true, output)
        base = {name: regression_metrics(y_true, predict_baseline(name, p, x_baseline)) for name, p in baselines.items()}
    else:
        assert classes is not None
        model = classification_metrics(y_true, output, classes)
        base = {name: classification_metrics(y_true, predict_baseline(name, p, x_baseline), classes) for name, p in baselines.items()}
    metric = primary_metric(kind)
    return {
        "rows": int(len(y_true)),
        "primary_metric": metric,
        "model": model,
        "baselines": base,
        "verdict": verdict(metric, model[metric], base),
    }
