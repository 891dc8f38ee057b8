"""Why a model predicts what it does: permutation importance and integrated gradients.

**Permutation importance** (Breiman, 2001; Fisher et al., 2019) shuffles one input column of the
test rows at a time and measures how much the run's primary metric gets worse, ``repeats`` times
with different shuffles (mean and standard deviation are reported). A column is permuted as the
user sees it: its one-hot block, missing-value indicator and embedding code move together. The
rows are capped (``max_rows``) and all shuffled copies of one column go through the model in one
forward pass, so a table run pays well under a second for it.

**Integrated gradients** (Sundararajan et al., 2017) attribute one row's output to its inputs:
``(x - b) * mean over the straight path from b to x of d output / d input``, the mean taken with the
trapezoid rule over ``steps`` intervals. The attributions of a row add up to ``output(x) -
output(b)`` (completeness) up to the quadrature error, which :func:`integrated_gradients` reports.
For tables the baseline ``b`` is the mean of the training rows' preprocessed inputs (zero for the
standardised numbers, the category frequencies for one-hot blocks) and embedded (wide) categorical
columns keep the row's own codes (an embedding code is not on a straight path), so their
attribution is zero. Attributions are summed over each column's inputs.

The output attributed: a regression's prediction in target units, a binary classifier's log-odds
of its second class, a multiclass classifier's logit of the class asked for (default: the predicted
one), after the bundle's temperature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "FeatureGroup",
    "feature_groups",
    "metric_scorer",
    "permutation_importance",
    "integrated_gradients",
    "group_attributions",
    "model_output",
    "completeness_error",
]


@dataclass(frozen=True)
class FeatureGroup:
    """One input column as the model sees it: its columns in ``x_num`` and in ``x_cat``."""

    name: str
    num: tuple[int, ...]
    cat: tuple[int, ...]


def feature_groups(state: dict[str, Any]) -> list[FeatureGroup]:
    """Input columns of a table preprocessor's state (``TabularPreprocessor.state()``) in schema order."""
    num: dict[str, list[int]] = {}
    cat: dict[str, list[int]] = {}
    j = 0
    for e in state["numeric"]:
        num.setdefault(e.get("source", e["name"]), []).append(j)
        j += 1
    for e in state["numeric"]:
        if e["indicator"]:
            num[e.get("source", e["name"])].append(j)
            j += 1
    for e in state["onehot"]:
        width = len(e["categories"]) + int(e["indicator"])
        num.setdefault(e["name"], []).extend(range(j, j + width))
        j += width
    for k, e in enumerate(state["embed"]):
        cat.setdefault(e["name"], []).append(k)
    schema = state.get("schema") or {}
    order = [c["name"] for c in schema.get("columns", [])] or list({**num, **cat})
    return [
        FeatureGroup(name, tuple(num.get(name, ())), tuple(cat.get(name, ())))
        for name in order
        if name in num or name in cat
    ]


def metric_scorer(metric: str, kind: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """``score(y, output)`` for the primary metric: ``output`` is values (regression) or (N, C)
    probabilities; ``y`` values or class codes. Cheap enough to call hundreds of times."""
    if kind == "regression":
        fns: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
            "rmse": lambda y, p: float(np.sqrt(np.mean((y - p) ** 2))),
            "mae": lambda y, p: float(np.mean(np.abs(y - p))),
            "r2": lambda y, p: float(
                1 - np.sum((y - p) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-300)
            ),
            "pearson": lambda y, p: float(np.corrcoef(y, p)[0, 1]) if np.std(p) > 0 else 0.0,
        }
        return fns[metric]
    if metric == "log_loss":
        return lambda y, p: float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1.0)).mean())
    if metric == "accuracy":
        return lambda y, p: float(np.mean(p.argmax(axis=1) == y))
    if metric == "roc_auc":
        if kind == "binary":
            return lambda y, p: _auc(y == 1, p[:, 1])
        return lambda y, p: float(np.mean([_auc(y == k, p[:, k]) for k in range(p.shape[1])]))
    from sklearn import metrics as m

    name, _, avg = metric.partition("_")
    fn = {"precision": m.precision_score, "recall": m.recall_score, "f1": m.f1_score}[name]
    average = "macro" if avg == "macro" else "binary"
    return lambda y, p: float(fn(y, p.argmax(axis=1), average=average, zero_division=0))


def _auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC from average ranks (Mann-Whitney U); ~30x cheaper than sklearn's checks per call here."""
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    if n1 == 0 or n0 == 0:
        raise ValueError("ROC-AUC needs both classes among the rows scored")
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based, ties share their mean rank
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def permutation_importance(
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x_num: np.ndarray,
    x_cat: np.ndarray,
    y: np.ndarray,
    groups: Sequence[FeatureGroup],
    scorer: Callable[[np.ndarray, np.ndarray], float],
    *,
    higher_is_better: bool,
    repeats: int = 5,
    max_rows: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """How much the score drops when each group's columns are shuffled across rows.

    ``predict(x_num, x_cat)`` returns what ``scorer`` takes. Returns ``{"baseline_score", "rows",
    "repeats", "features": {name: {"mean", "std"}}}`` where a drop is ``baseline - shuffled`` for a
    higher-is-better metric (``shuffled - baseline`` otherwise), so a larger number always means
    the model leans on that column more; near zero or negative: it does not.
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    if n > max_rows:  # a fixed, seeded subsample keeps the cost flat in the test split's size
        keep = np.sort(rng.choice(n, size=max_rows, replace=False))
        x_num, x_cat, y = x_num[keep], x_cat[keep], y[keep]
        n = max_rows
    base = scorer(y, predict(x_num, x_cat))
    sign = 1.0 if higher_is_better else -1.0
    features: dict[str, dict[str, float]] = {}
    for g in groups:
        perms = [rng.permutation(n) for _ in range(repeats)]
        xn = np.tile(x_num, (repeats, 1))  # (repeats * n, F): every shuffle in one forward pass
        xc = np.tile(x_cat, (repeats, 1))
        for r, p in enumerate(perms):
            rows = slice(r * n, (r + 1) * n)
            if g.num:
                xn[rows, list(g.num)] = x_num[p][:, list(g.num)]
            if g.cat:
                xc[rows, list(g.cat)] = x_cat[p][:, list(g.cat)]
        out = predict(xn, xc)
        drops = [sign * (base - scorer(y, out[r * n : (r + 1) * n])) for r in range(repeats)]
        features[g.name] = {"mean": float(np.mean(drops)), "std": float(np.std(drops))}
    return {"baseline_score": base, "rows": int(n), "repeats": int(repeats), "features": features}


def integrated_gradients(
    output: Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None], torch.Tensor],
    x: np.ndarray,
    baseline: np.ndarray,
    x_cat: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    *,
    steps: int = 64,
    tolerance: float | None = 0.01,
    max_steps: int = 4096,
    chunk_rows: int = 256,
    dtype: torch.dtype = torch.float32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrated gradients of a scalar-per-row ``output(x, x_cat, targets)`` (N,) with respect to ``x`` (N, F).

    ``x_cat`` (N, K) codes and ``targets`` (N,) class indices are held fixed along each row's path.

    Returns ``(attributions (N, F), output at x (N,), output at the baseline (N,))``; per row,
    ``attributions.sum(1)`` is ``output(x) - output(baseline)`` up to the trapezoid rule's error.
    A ReLU network's gradient jumps along the path, so that error falls only as 1/steps: rows whose
    gap exceeds ``tolerance`` of their output difference (at least 5% of the rows' mean difference,
    :func:`completeness_error`) are integrated again with 4x the steps, up to ``max_steps`` (the check the method's authors recommend; ``tolerance=None``: no refinement).
    Cost: ``steps + 1`` forward and backward passes per row, in chunks of ``chunk_rows`` rows.
    ``dtype``: the paths' type (float64 with a float64 model leaves the quadrature's error alone).

    Example:
        >>> import numpy as np, torch
        >>> f = lambda x, c, t: (x ** 2).sum(dim=1)  # a quadratic: the trapezoid rule is exact to O(1/steps^2)
        >>> a, out, base = integrated_gradients(f, np.array([[1.0, 2.0]]), np.zeros(2), steps=200)
        >>> np.round(a, 3).tolist(), round(float(out[0] - base[0]), 6)
        ([[1.0, 4.0]], 5.0)
    """
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    x = np.asarray(x, dtype=np_dtype)
    b = np.repeat(np.asarray(baseline, dtype=np_dtype).reshape(1, -1), len(x), axis=0)
    attr, out_x, out_b = _ig_pass(output, x, b, x_cat, targets, steps, chunk_rows, dtype)
    while tolerance is not None and steps < max_steps:
        gap = np.abs(attr.sum(axis=1) - (out_x - out_b))
        redo = np.flatnonzero(gap > tolerance * _completeness_scale(out_x, out_b))
        if not len(redo):
            break
        steps = min(steps * 4, max_steps)
        attr[redo] = _ig_pass(
            output,
            x[redo],
            b[redo],
            None if x_cat is None else x_cat[redo],
            None if targets is None else np.asarray(targets)[redo],
            steps,
            chunk_rows,
            dtype,
        )[0]
    return attr, out_x, out_b


def _ig_pass(
    output: Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None], torch.Tensor],
    x: np.ndarray,
    b: np.ndarray,
    x_cat: np.ndarray | None,
    targets: np.ndarray | None,
    steps: int,
    chunk_rows: int,
    dtype: torch.dtype,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, f = x.shape
    alphas = torch.linspace(0.0, 1.0, steps + 1, dtype=dtype)
    w = torch.full((steps + 1,), 1.0 / steps, dtype=dtype)  # trapezoid weights on [0, 1]
    w[0] = w[-1] = 0.5 / steps
    attr = np.zeros((n, f), dtype=np.float64)
    out_x = np.zeros(n)
    out_b = np.zeros(n)
    chunk_rows = max(1, chunk_rows * 64 // steps)  # about the same batch size whatever the steps
    for s in range(0, n, chunk_rows):
        xs = torch.from_numpy(x[s : s + chunk_rows])
        bs = torch.from_numpy(b[s : s + chunk_rows])
        m = len(xs)
        # (steps + 1, m, F) points on the straight paths, flattened into one batch
        path = (bs[None] + alphas[:, None, None] * (xs - bs)[None]).reshape(-1, f)
        path.requires_grad_(True)
        cats = None
        if x_cat is not None and x_cat.shape[1]:
            cats = torch.from_numpy(np.tile(x_cat[s : s + chunk_rows], (steps + 1, 1)))
        tgt = None
        if targets is not None:
            tgt = torch.from_numpy(
                np.tile(np.asarray(targets[s : s + chunk_rows], np.int64), steps + 1)
            )
        with torch.enable_grad():
            y = output(path, cats, tgt)  # (steps + 1) * m
            (grad,) = torch.autograd.grad(y.sum(), path)
        g = grad.reshape(steps + 1, m, f)
        avg = (w[:, None, None] * g).sum(dim=0)  # (m, F)
        attr[s : s + m] = ((xs - bs) * avg).double().numpy()
        ys = y.detach().reshape(steps + 1, m)
        out_x[s : s + m] = ys[-1].double().numpy()
        out_b[s : s + m] = ys[0].double().numpy()
    return attr, out_x, out_b


def _completeness_scale(out_x: np.ndarray, out_b: np.ndarray) -> np.ndarray:
    """Per row, what a gap is measured against: ``|output - baseline output|``, but at least 5% of its
    mean over the rows. A row whose output nearly equals the baseline's (a difference of 0.001 logits
    where the typical one is 2) would otherwise need tens of thousands of steps for 1% of almost nothing."""
    delta = np.abs(out_x - out_b)
    floor = 0.05 * float(delta.mean()) if len(delta) else 0.0
    return np.maximum(delta, max(floor, 1e-12))  # type: ignore[no-any-return]


def completeness_error(attr: np.ndarray, out_x: np.ndarray, out_b: np.ndarray) -> float:
    """The largest per-row ``|sum of attributions - (output - baseline output)|``, relative to that row's
    ``|output - baseline output|`` (at least 5% of the rows' mean difference)."""
    if not len(attr):
        return 0.0
    gap = np.abs(attr.sum(axis=1) - (out_x - out_b))
    return float((gap / _completeness_scale(out_x, out_b)).max())


def group_attributions(attr: np.ndarray, groups: Sequence[FeatureGroup]) -> np.ndarray:
    """(N, F) input attributions -> (N, columns) attributions per input column (sums keep completeness)."""
    out = np.zeros((attr.shape[0], len(groups)))
    for k, g in enumerate(groups):
        if g.num:
            out[:, k] = attr[:, list(g.num)].sum(axis=1)
    return out


def model_output(
    model: nn.Module,
    kind: str,
    *,
    y_std: float = 1.0,
    temperature: float = 1.0,
    double: bool = False,
) -> Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None], torch.Tensor]:
    """The scalar per row that :func:`integrated_gradients` attributes, from a table model's logits
    (multiclass: the logit of each row's target class). With ``double``, on a float64 copy of the model."""
    import copy

    if double:
        model = copy.deepcopy(model).double()  # a table MLP: kilobytes to megabytes
    model = model.eval()

    def output(
        x: torch.Tensor, cats: torch.Tensor | None, target: torch.Tensor | None
    ) -> torch.Tensor:
        logits = model(x) if cats is None else model(x, cats)
        if kind == "regression":
            return logits.reshape(-1) * y_std
        if kind == "binary":
            return logits.reshape(-1) / temperature
        assert target is not None
        return logits.gather(1, target[:, None]).reshape(-1) / temperature

    return output
