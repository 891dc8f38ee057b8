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

Then what a user needs to trust a prediction (issue #20, docs/trust.md), in :func:`_trust`:
a classifier's temperature fitted on the validation rows (kept when it lowers their log loss; the
test scores above are the calibrated model's), a regression's split-conformal intervals from the
validation residuals with their test coverage, permutation importance of every input column on the
test rows (the run's primary metric) and integrated-gradients attributions on a few test rows. Their
cost is ``explanations.seconds`` in metrics.json.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from dlpipe.bundle.card import card_facts
from dlpipe.evaluation.baselines import (
    fit_baselines,
    fit_tree_baselines,
    forest_skip_reason,
    predict_baseline,
)
from dlpipe.evaluation.calibration import calibration_record
from dlpipe.evaluation.conformal import (
    LEVELS,
    conformal_half_widths,
    interval_columns,
    interval_coverage,
)
from dlpipe.evaluation.directions import metric_direction
from dlpipe.evaluation.explain import (
    completeness_error,
    feature_groups,
    group_attributions,
    integrated_gradients,
    metric_scorer,
    model_output,
    permutation_importance,
)
from dlpipe.evaluation.scoring import score
from dlpipe.pipeline.recipe import Evaluation, RunContext
from dlpipe.training.trainer import predict_logits

__all__ = ["evaluate_table"]

_MAX_CATEGORY_CODE = 254  # HistGradientBoosting's categories must be codes below max_bins (255)
# Explanations' caps, so every table run pays a fraction of a second (docs/trust.md has the figures)
PERMUTATION_ROWS, PERMUTATION_REPEATS = 1000, 5
PERMUTATION_BUDGET = 100_000  # shuffled rows in all: a wide table gets fewer rows (at least 200)
IG_ROWS, IG_STEPS = 100, 64


def evaluate_table(ctx: RunContext) -> Evaluation:
    """The test split's scores beside the baselines, the bundle's parts and the predictions."""
    prep, task, cfg = ctx.prep.state, ctx.prep.task, ctx.cfg
    splits = prep["splits"]
    x_tr, c_tr, y_tr = splits["train"]
    x_te, c_te, y_te = splits["test"]
    if prep.get("refit"):  # the model was refitted on train + validation rows: so are the baselines
        x_va, c_va, y_va = splits["val"]
        x_tr, c_tr = np.vstack([x_tr, x_va]), np.vstack([c_tr, c_va])
        y_tr = np.concatenate([y_tr, y_va])
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
    logits = _logits(ctx.model, x_te, c_te)
    train_seconds = sum(float(r.get("time", 0.0)) for r in ctx.history.records)
    model_cost = train_seconds + time.perf_counter() - t0
    t_trust = time.perf_counter()
    calibration = _calibrate(ctx, logits)  # sets task.temperature before anything is decoded
    trust_seconds = time.perf_counter() - t_trust
    values, proba = task.decode(logits)
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
    t_trust = time.perf_counter()
    trust = _trust(ctx, values, y_true, test_scores["primary_metric"], calibration)
    # what issue #20 adds to a table run: calibration, intervals, permutation importance, IG
    trust["explanations"]["seconds"] = round(trust_seconds + time.perf_counter() - t_trust, 4)
    if prep.get(
        "refit"
    ):  # TableRecipe.after_fit: the model was refitted on train + validation rows
        trust["refit"] = prep["refit"]
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
        **interval_columns(values, trust.get("intervals") or {}),
    }
    manifest: dict[str, Any] = {
        "kind": "table",
        "task": task.to_dict(),
        "preprocessor": pre.state(),
        "baselines": baselines,  # the stored (JSON) ones only
        "reference_statistics": prep["reference"],
        "feature_names": pre.feature_names,
        # integrated gradients' baseline: the training rows' mean preprocessed inputs
        "explain": {"baseline": [float(v) for v in x_tr.astype(np.float64).mean(axis=0)]}
        if len(x_tr)
        else {"baseline": [0.0] * x_tr.shape[1]},
    }
    if trust.get("intervals"):
        manifest["intervals"] = {
            k: trust["intervals"][k] for k in ("method", "levels", "half_widths", "validation_rows")
        }
    # MODEL_CARD.md's figures (bundle/card.py): only this evaluation knows the baselines' scores
    manifest["card"] = card_facts(test_scores, trust, prep["split_rows"])
    files = {WORST_ERRORS_FILE: worst_errors(prep, task, y_true, values, proba)}
    return Evaluation(
        test=test_scores,
        manifest=manifest,
        metrics=trust,
        extras={"predictions": predictions, "files": files},
    )


WORST_ERRORS_FILE = "worst_errors.json"
_WORST = 20


def worst_errors(
    prep: dict[str, Any],
    task: Any,
    y_true: np.ndarray,
    values: np.ndarray,
    proba: np.ndarray | None,
) -> bytes:
    """The test rows the model got most wrong, with their inputs as given (the report's worst-errors table).

    Classification: the misclassified rows, lowest probability given to the true class first;
    regression: the largest absolute errors in target units. JSON (``columns`` and ``rows`` of
    ``row``, ``truth``, ``prediction``, ``score``, ``inputs``), so a column named ``prediction``
    cannot collide with ours.
    """
    import json

    frame = prep.get("test_frame")
    schema = prep["schema"]
    columns = [c.name for c in schema.columns] if frame is not None else []
    if task.kind == "regression":
        err = np.abs(np.asarray(values, dtype=np.float64).reshape(-1) - y_true)
        order = np.argsort(-np.nan_to_num(err, nan=-1.0), kind="stable")[:_WORST]
        score, truth, pred = err, y_true.astype(np.float64), np.asarray(values).reshape(-1)
        what = "absolute error (target units)"
    else:
        assert proba is not None
        p_true = proba[np.arange(len(y_true)), y_true]
        wrong = np.flatnonzero(proba.argmax(axis=1) != y_true)
        order = wrong[np.argsort(p_true[wrong], kind="stable")][:_WORST]  # mistakes only
        names = np.asarray(task.classes, dtype=object)
        score, truth, pred = p_true, names[y_true], names[proba.argmax(axis=1)]
        what = "probability given to the true class"
    rows = []
    for i in order.tolist():
        inputs = frame.iloc[i][columns].tolist() if frame is not None else []
        rows.append(
            {
                "row": int(i),
                "truth": _plain(truth[i]),
                "prediction": _plain(pred[i]),
                "score": _plain(score[i]),
                "inputs": [_plain(v) for v in inputs],
            }
        )
    doc = {
        "score": what,
        "test_rows": int(len(y_true)),
        "errors": int(len(wrong)) if task.kind != "regression" else int(len(y_true)),
        "columns": columns,
        "rows": rows,
    }
    return json.dumps(doc, allow_nan=False).encode("utf-8")


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars as Python ones, NaN and missing as None, anything else as text."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, str):
        return value
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _logits(model: torch.nn.Module, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
    inputs = [torch.from_numpy(x_num)] + ([torch.from_numpy(x_cat)] if x_cat.shape[1] else [])
    return predict_logits(model, inputs).float().cpu().numpy()  # type: ignore[no-any-return]


def held_out_logits(model: torch.nn.Module, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
    """The model's logits on rows it did not train on (the validation rows, before a refit)."""
    return _logits(model, x_num, x_cat)


def _val_logits(ctx: RunContext, x_va: np.ndarray, c_va: np.ndarray) -> np.ndarray:
    """Validation logits from a model that did not train on them: the first fit's when the model was
    refitted on train + validation rows (``TableRecipe.after_fit``)."""
    kept = ctx.prep.state.get("val_logits_first_fit")
    return kept if kept is not None else _logits(ctx.model, x_va, c_va)


def _calibrate(ctx: RunContext, test_logits: np.ndarray) -> dict[str, Any] | None:
    """A classifier's temperature from the validation rows (None for regression)."""
    task, prep = ctx.prep.task, ctx.prep.state
    if not task.is_classification:
        return None
    x_va, c_va, y_va = prep["splits"]["val"]
    y_te = prep["splits"]["test"][2]
    same = bool(prep["same_rows"]) or len(y_va) == 0
    record = calibration_record(
        _val_logits(ctx, x_va, c_va) if len(y_va) else test_logits[:0],
        y_va.reshape(-1).astype(np.int64),
        test_logits,
        y_te.reshape(-1).astype(np.int64),
        enabled=not same,
        reason="not fitted: the validation rows are the training rows (a table too small to hold rows out)"
        if same
        else "",
    )
    task.temperature = float(record["temperature"])
    return record


def _trust(
    ctx: RunContext,
    values: np.ndarray,
    y_true: np.ndarray,
    metric: str,
    calibration: dict[str, Any] | None,
) -> dict[str, Any]:
    """metrics.json's ``calibration``, ``intervals`` and ``explanations`` (see the module docstring)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(
        1
    )  # a table model's forward passes here are small: threads cost more than they win
    try:
        return _trust_one_thread(ctx, values, y_true, metric, calibration)
    finally:
        torch.set_num_threads(threads)


def _trust_one_thread(
    ctx: RunContext,
    values: np.ndarray,
    y_true: np.ndarray,
    metric: str,
    calibration: dict[str, Any] | None,
) -> dict[str, Any]:
    task, prep = ctx.prep.task, ctx.prep.state
    splits = prep["splits"]
    x_tr = splits["train"][0]
    x_te, c_te, _ = splits["test"]
    out: dict[str, Any] = {}
    if calibration is not None:
        out["calibration"] = calibration
    if task.kind == "regression":
        x_va, c_va, y_va = splits["val"]
        if prep["same_rows"] or len(y_va) == 0:
            out["intervals"] = {
                "method": "split-conformal",
                "note": "no intervals: the validation rows are the training rows (a table too small to hold rows out)",
            }
        else:
            val_pred, _ = task.decode(_val_logits(ctx, x_va, c_va))
            y_val = y_va.reshape(-1) * task.y_std + task.y_mean
            widths = conformal_half_widths(y_val - val_pred, LEVELS)
            out["intervals"] = {
                "method": "split-conformal",
                "levels": list(LEVELS),
                "half_widths": widths,
                "validation_rows": int(len(y_val)),
                "test_coverage": interval_coverage(y_true, values, widths),
            }
    model = ctx.model.eval()
    groups = feature_groups(prep["preprocessor"].state())

    def predict(xn: np.ndarray, xc: np.ndarray) -> np.ndarray:
        v, p = task.decode(_logits(model, xn.astype(np.float32), xc))
        return v.astype(np.float64) if p is None else p

    explanations: dict[str, Any] = {"columns": [g.name for g in groups]}
    y_score = (
        y_true
        if task.kind == "regression"
        else np.asarray(splits["test"][2]).reshape(-1).astype(np.int64)
    )
    if len(y_score) >= 2 and groups:
        try:
            explanations["permutation"] = {
                "metric": metric,
                **permutation_importance(
                    predict,
                    x_te,
                    c_te,
                    y_score,
                    groups,
                    metric_scorer(metric, task.kind),
                    higher_is_better=metric_direction(metric) == "max",
                    repeats=PERMUTATION_REPEATS,
                    max_rows=min(
                        PERMUTATION_ROWS,
                        max(200, PERMUTATION_BUDGET // (len(groups) * PERMUTATION_REPEATS)),
                    ),
                    seed=ctx.cfg.seed,
                ),
            }
        except ValueError as exc:  # e.g. ROC-AUC on a subsample holding one class
            explanations["permutation"] = {"metric": metric, "note": f"not computed: {exc}"}
    if len(x_te) and groups:
        rows = x_te[:IG_ROWS]
        cats = c_te[:IG_ROWS] if c_te.shape[1] else None
        targets = None
        if task.kind == "multiclass":
            targets = _logits(model, rows, c_te[:IG_ROWS]).argmax(axis=1)
        fn = model_output(model, task.kind, y_std=task.y_std, temperature=task.temperature)
        baseline = x_tr.mean(axis=0) if len(x_tr) else np.zeros(x_tr.shape[1])
        attr, o_x, o_b = integrated_gradients(
            fn, rows, baseline, cats, targets, steps=IG_STEPS, max_steps=256
        )  # float32 here (a summary; dl.explain works in float64)
        per_column = group_attributions(attr, groups)
        explanations["integrated_gradients"] = {
            "rows": int(len(rows)),
            "steps": IG_STEPS,
            "baseline": "training mean",
            "output": {
                "regression": "prediction (target units)",
                "binary": "log-odds (calibrated)",
            }.get(task.kind, "logit of the predicted class (calibrated)"),
            "mean_abs": {
                g.name: float(np.abs(per_column[:, k]).mean()) for k, g in enumerate(groups)
            },
            "completeness_error": completeness_error(attr, o_x, o_b),
        }
    out["explanations"] = explanations
    return out
