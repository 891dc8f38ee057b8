"""A table run's test split scored beside its baselines (``TableRecipe.evaluate``).

Baselines, all fitted on the model's training rows:

- majority class / mean and logistic / ridge regression on the preprocessed numeric block (scaled
  numbers and one-hot categories): stored in the bundle as JSON numbers, so ``dlpipe evaluate``
  scores them again on new data;
- HistGradientBoosting and a random forest (scikit-learn defaults) on the same block plus the codes of
  the embedded (wide) categorical columns, which HistGradientBoosting splits as categories: run-only
  (metrics.json and the report), since a tree ensemble cannot be stored as plain numbers and a bundle
  never holds a pickle. Trees are unaffected by the scaling, so the preprocessed features lose them
  nothing but the raw text of wide categories, which they see as codes.

``test.cost_s`` holds seconds per entry: the model's training epochs plus its test prediction, each
baseline's fit plus test prediction.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from dlpipe.evaluation.baselines import (
    fit_baselines,
    fit_tree_baselines,
    forest_skip_reason,
    predict_baseline,
)
from dlpipe.evaluation.scoring import score
from dlpipe.pipeline.recipe import Evaluation, RunContext
from dlpipe.training.trainer import predict_logits

__all__ = ["evaluate_table"]

_MAX_CATEGORY_CODE = 254  # HistGradientBoosting's categories must be codes below max_bins (255)


def evaluate_table(ctx: RunContext) -> Evaluation:
    """The test split's scores beside the baselines, the bundle's parts and the predictions."""
    prep, task, cfg = ctx.prep.state, ctx.prep.task, ctx.cfg
    splits = prep["splits"]
    x_tr, c_tr, y_tr = splits["train"]
    x_te, c_te, y_te = splits["test"]
    if task.kind == "regression":
        y_train_base = y_tr.reshape(-1) * task.y_std + task.y_mean
    else:
        y_train_base = y_tr.reshape(-1).astype(np.int64)
    n_classes = task.n_outputs if task.kind == "multiclass" else 2
    cost: dict[str, float] = {}
    baselines = fit_baselines(task.kind, x_tr, y_train_base, n_classes, cfg.seed, seconds=cost)
    for name, params in baselines.items():  # the stored baselines' prediction time on the test rows
        t0 = time.perf_counter()
        predict_baseline(name, params, x_te)
        cost[name] += time.perf_counter() - t0
    pre = prep["preprocessor"]
    cards = list(pre.cardinalities) if c_tr.shape[1] else []
    trees = fit_tree_baselines(
        task.kind,
        np.hstack([x_tr, c_tr]).astype(np.float64),
        y_train_base,
        np.hstack([x_te, c_te]).astype(np.float64),
        n_classes,
        cfg.seed,
        categorical=[False] * x_tr.shape[1] + [k - 1 <= _MAX_CATEGORY_CODE for k in cards],
    )
    cost.update({name: t.seconds for name, t in trees.items()})
    skipped = forest_skip_reason(task.kind, len(x_tr), x_tr.shape[1] + c_tr.shape[1])

    t0 = time.perf_counter()
    test_inputs = [torch.from_numpy(x_te)] + ([torch.from_numpy(c_te)] if c_te.shape[1] else [])
    logits = predict_logits(ctx.model, test_inputs).float().cpu().numpy()
    values, proba = task.decode(logits)
    train_seconds = sum(float(r.get("time", 0.0)) for r in ctx.history.records)
    model_cost = train_seconds + time.perf_counter() - t0
    if task.kind == "regression":
        y_true, output = y_te.reshape(-1) * task.y_std + task.y_mean, values
    else:
        y_true, output = y_te.reshape(-1).astype(np.int64), proba
    test_scores = score(
        task.kind,
        y_true,
        output,
        x_te,
        baselines,
        task.classes,
        metric=cfg.data.metric,
        run_only={name: t.output for name, t in trees.items()},
    )
    test_scores["cost_s"] = {
        "model": round(model_cost, 4),
        **{name: round(cost[name], 4) for name in test_scores["baselines"] if name in cost},
    }
    test_scores["run_only_baselines"] = list(trees)
    if skipped and len(y_true):
        test_scores["baseline_notes"] = [skipped]
    predictions = {  # the test split's predictions, so the report can be rebuilt from the folder
        "y_true": y_true
        if task.kind == "regression"
        else np.asarray(task.classes, dtype=object)[y_true],
        "prediction": values,
        **(
            {f"proba_{c}": proba[:, i] for i, c in enumerate(task.classes or [])}
            if proba is not None
            else {}
        ),
    }
    manifest: dict[str, Any] = {
        "kind": "table",
        "task": task.to_dict(),
        "preprocessor": pre.state(),
        "baselines": baselines,  # the stored (JSON) ones only
        "reference_statistics": prep["reference"],
        "feature_names": pre.feature_names,
    }
    return Evaluation(test=test_scores, manifest=manifest, extras={"predictions": predictions})
