"""Explanations of a table bundle on new rows: ``dlpipe.explain`` / ``Bundle.explain`` / ``dlpipe explain``.

The arithmetic lives in :mod:`dlpipe.evaluation.explain`; this module reads the rows through the
bundle's preprocessor and returns an :class:`Explanation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.bundle.attributions import KINDS as INPUT_KINDS
from dlpipe.bundle.attributions import InputExplanation, explain_inputs
from dlpipe.core.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from dlpipe.bundle.bundle import Bundle

__all__ = ["Explanation", "InputExplanation", "explain"]


@dataclass
class Explanation:
    """What :func:`explain` found.

    ``importance``: one row per input column, most important first: ``importance`` and ``std`` (the
    primary metric's mean drop over shuffles and its spread; NaN when the rows carry no target) and
    ``attribution`` (mean absolute integrated-gradients attribution). ``attributions``: one row per
    input row, one column per input column, plus ``output`` and ``baseline_output``: each row's
    attributions add up to ``output - baseline_output`` (completeness) within ``completeness_error``
    (the largest per-row gap relative to that row's ``|output - baseline_output|``).
    """

    importance: pd.DataFrame
    attributions: pd.DataFrame
    metric: str | None
    output: str
    completeness_error: float
    rows: int

    def to_text(self, top: int = 20) -> str:
        """A plain-text table of the ``top`` columns."""
        lines = [
            f"{'column':<30} {'permutation':>12} {'± std':>9} {'|IG| mean':>11}",
        ]
        for _, r in self.importance.head(top).iterrows():
            perm = "" if np.isnan(r["importance"]) else f"{r['importance']:.4g}"
            std = "" if np.isnan(r["std"]) else f"{r['std']:.2g}"
            lines.append(
                f"{str(r['column'])[:30]:<30} {perm:>12} {std:>9} {r['attribution']:>11.4g}"
            )
        if len(self.importance) > top:
            lines.append(f"... {len(self.importance) - top} more columns")
        return "\n".join(lines)


def explain(
    bundle: Bundle | str | Path,
    data: Any,
    *,
    repeats: int = 5,
    max_rows: int = 1000,
    steps: int = 64,
    seed: int = 0,
) -> Explanation | InputExplanation:
    """Permutation importance and integrated-gradients attributions of a table bundle on ``data``; for an
    image, sequence or text classifier, attributions of each input's predicted class to its pixels, time
    steps or tokens (an :class:`InputExplanation`; docs/trust.md).

    Args:
        bundle: A :class:`~dlpipe.Bundle` or its folder.
        data: Rows with the training columns (DataFrame, list of dicts, CSV/Parquet path). With the
            target column too, permutation importance is computed on the run's primary metric. For other
            kinds, what ``predict`` takes: image files or a folder, sequences, documents.
        repeats: Shuffles per column for permutation importance. Defaults to `5`.
        max_rows: Rows used for permutation importance (a seeded sample when there are more); for images,
            sequences and text, the first inputs explained. Defaults to `1000`.
        steps: Trapezoid intervals along each integrated-gradients path. Defaults to `64`.
        seed: Seeds the shuffles and the sample. Defaults to `0`.

    Raises:
        InvalidInputError: the bundle is not a table classifier or regressor nor an image, sequence or text
            classifier, or an option is out of range.

    Example:
        >>> import dlpipe as dl  # doctest: +SKIP
        >>> e = dl.explain("runs/penguins/bundle", "penguins.csv")  # doctest: +SKIP
        >>> print(e.to_text())  # doctest: +SKIP
    """
    import pandas as pd
    import torch

    from dlpipe.bundle.bundle import load_bundle
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
    from dlpipe.evaluation.metrics import primary_metric

    bad = [
        f"`{name}` is {value!r} but must be an integer of at least {low}"
        for name, value, low in (
            ("repeats", repeats, 1),
            ("max_rows", max_rows, 2),
            ("steps", steps, 1),
        )
        if not isinstance(value, int) or isinstance(value, bool) or value < low
    ]
    if bad:
        raise InvalidInputError("; ".join(bad) + "; pass a whole number in range.")
    b = load_bundle(bundle) if isinstance(bundle, (str, Path)) else bundle
    task = b.task
    if b.kind in INPUT_KINDS:  # images, sequences, text: attributions per pixel, step or token
        return explain_inputs(b, data, steps=steps, max_rows=max_rows, seed=seed)
    if b.kind != "table" or task.kind not in ("regression", "binary", "multiclass"):
        raise InvalidInputError(
            f"explanations are computed for table classifiers and regressors and for image, sequence and text "
            f"classifiers, but this bundle is a {b.kind} {task.kind} model; pass a bundle trained on one of those."
        )
    batch = b._prepare(data, with_target=True)
    x_num = batch.inputs[0]
    x_cat = batch.inputs[1] if len(batch.inputs) > 1 else np.zeros((len(x_num), 0), np.int64)
    state = b.preprocessor.state()  # type: ignore[attr-defined]
    groups = feature_groups(state)
    names = [g.name for g in groups]
    model = b.model.eval()

    def logits(xn: np.ndarray, xc: np.ndarray) -> np.ndarray:
        return b.outputs([xn.astype(np.float32)] + ([xc] if xc.shape[1] else []))

    # permutation importance on the labelled rows
    perm: dict[str, dict[str, float]] = {}
    metric: str | None = None
    if batch.targets is not None:
        keep = batch.targets.notna().to_numpy()
        if keep.sum() >= 2:
            y = task.encode(batch.targets[keep], what="explanation target").reshape(-1)
            if task.kind == "regression":
                y = y * task.y_std + task.y_mean
            else:
                y = y.astype(np.int64)
            metric = b._primary_metric() or primary_metric(task.kind)

            def predict(xn: np.ndarray, xc: np.ndarray) -> np.ndarray:
                v, p = task.decode(logits(xn, xc))
                return v.astype(np.float64) if p is None else p

            if task.is_classification and len(np.unique(y)) < 2 and metric == "roc_auc":
                raise InvalidInputError(
                    f"permutation importance is scored on roc_auc, but the {len(y)} labelled rows hold one class only "
                    f"({(task.classes or [])[int(y[0])]!r}); pass rows of both classes, or rows without the target column "
                    "for attributions alone."
                )
            perm = permutation_importance(
                predict,
                x_num[keep],
                x_cat[keep],
                y,
                groups,
                metric_scorer(metric, task.kind),
                higher_is_better=metric_direction(metric) == "max",
                repeats=repeats,
                max_rows=max_rows,
                seed=seed,
            )["features"]

    # integrated gradients on every row
    stored = (b.manifest.get("explain") or {}).get("baseline")
    baseline = (
        np.asarray(stored, dtype=np.float32)
        if isinstance(stored, list) and len(stored) == x_num.shape[1]
        else np.zeros(x_num.shape[1], np.float32)  # bundles from before issue #20: zeros
    )
    targets = logits(x_num, x_cat).argmax(axis=1) if task.kind == "multiclass" else None
    fn = model_output(model, task.kind, y_std=task.y_std, temperature=task.temperature, double=True)
    attr, o_x, o_b = integrated_gradients(
        fn,
        x_num,
        baseline,
        x_cat if x_cat.shape[1] else None,
        targets,
        steps=steps,
        dtype=torch.float64,
    )
    per_column = group_attributions(attr, groups)
    gap_error = completeness_error(attr, o_x, o_b)
    if (
        task.kind == "regression"
    ):  # the model's output is scaled; attribute the prediction in target units
        o_x, o_b = o_x + task.y_mean, o_b + task.y_mean

    importance = pd.DataFrame(
        {
            "column": names,
            "importance": [perm.get(n, {}).get("mean", np.nan) for n in names],
            "std": [perm.get(n, {}).get("std", np.nan) for n in names],
            "attribution": np.abs(per_column).mean(axis=0)
            if len(per_column)
            else np.zeros(len(names)),
        }
    )
    order = "importance" if perm else "attribution"
    importance = importance.sort_values(order, ascending=False, kind="stable").reset_index(
        drop=True
    )
    attributions = pd.DataFrame(per_column, columns=names)
    attributions["output"] = o_x
    attributions["baseline_output"] = o_b
    output = {
        "regression": f"prediction of {task.target!r}",
        "binary": f"log-odds of {task.classes[1]!r}" if task.classes else "log-odds",
    }.get(task.kind, "logit of the predicted class")
    return Explanation(
        importance=importance,
        attributions=attributions,
        metric=metric,
        output=output,
        completeness_error=gap_error,
        rows=int(len(x_num)),
    )
