"""Score a model's outputs and its baselines' on the same rows, with a verdict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dlpipe.core.errors import InvalidInputError
from dlpipe.evaluation.baselines import predict_baseline, verdict
from dlpipe.evaluation.metrics import classification_metrics, primary_metric, regression_metrics

__all__ = ["class_predictions", "score"]


def score(
    kind: str,
    y_true: np.ndarray,
    output: np.ndarray,
    x_baseline: np.ndarray,
    baselines: dict[str, dict[str, Any]],
    classes: list[Any] | None = None,
    *,
    metric: str | None = None,
    run_only: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Metrics of the model (``output``: values or (N, C) probabilities) and of each baseline.

    ``y_true`` holds class codes (classification) or values in original units (regression).
    ``metric`` is the primary metric (``None``/``"auto"``: the task's default, :func:`primary_metric`);
    ``run_only`` holds outputs of baselines that were scored on these rows but are not stored
    (:func:`~dlpipe.evaluation.baselines.fit_tree_baselines`), scored after the stored ones.

    Raises:
        InvalidConfigError: ``metric`` is not scored for this kind of task.
        InvalidInputError: there are no rows to score (every target cell was empty).
    """
    metric = primary_metric(kind, metric)
    if len(y_true) == 0:
        raise InvalidInputError(
            "there are no labelled rows to score: the target is empty in every row; "
            "fill in the target column, or use predict for unlabelled rows."
        )
    if kind == "regression":
        model = regression_metrics(y_true, output)
        base = {
            name: regression_metrics(y_true, predict_baseline(name, p, x_baseline))
            for name, p in baselines.items()
        }
        base.update(
            {name: regression_metrics(y_true, out) for name, out in (run_only or {}).items()}
        )
    else:
        assert classes is not None
        model = classification_metrics(y_true, output, classes)
        base = {
            name: classification_metrics(y_true, predict_baseline(name, p, x_baseline), classes)
            for name, p in baselines.items()
        }
        base.update(
            {
                name: classification_metrics(y_true, out, classes)
                for name, out in (run_only or {}).items()
            }
        )
    return {
        "rows": int(len(y_true)),
        "primary_metric": metric,
        "model": model,
        "baselines": base,
        "verdict": verdict(metric, model, base),
    }


def class_predictions(
    y_true: np.ndarray, proba: np.ndarray, classes: list[Any] | tuple[Any, ...]
) -> dict[str, Any]:
    """The columns of a classifier's predictions.csv: ``y_true``, ``prediction`` (class names) and ``proba_<class>``.

    ``y_true``: class codes (N,); ``proba``: (N, K) probabilities in the order of ``classes``.
    """
    names = np.asarray(list(classes), dtype=object)
    codes = np.asarray(y_true).reshape(-1).astype(np.int64)
    return {
        "y_true": names[codes],
        "prediction": names[proba.argmax(axis=1)],
        **{f"proba_{c}": proba[:, i] for i, c in enumerate(classes)},
    }
