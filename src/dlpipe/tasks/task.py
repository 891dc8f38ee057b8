"""The task table: from the target to the output head, the loss and the decoding, in one place.

| task       | output layer | loss (on logits)   | at predict            |
|------------|--------------|--------------------|-----------------------|
| regression | Linear(1)    | MSE (or Huber)     | inverse target scaling|
| binary     | Linear(1)    | BCEWithLogits      | sigmoid, threshold 0.5|
| multiclass | Linear(C)    | CrossEntropy       | softmax, argmax       |

Because the loss is always computed on logits and probabilities only appear in :meth:`Task.decode`,
a "sigmoid before BCE" or "softmax before CrossEntropy" mistake cannot be made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from dlpipe.core.errors import InvalidConfigError, InvalidTargetError, format_names
from dlpipe.data.numbers import FLOAT32_MAX, check_numbers, check_outputs, check_scaled

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from dlpipe.tasks.losses import LogitLoss

__all__ = ["Task", "infer_task", "check_outputs", "TASK_KINDS"]

TaskKind = Literal["regression", "binary", "multiclass"]
TASK_KINDS: tuple[str, ...] = ("regression", "binary", "multiclass")
_MAX_INT_CLASSES = 30


@dataclass
class Task:
    """What is predicted and how: kind, class labels, target scaling and loss.

    Example:
        >>> import pandas as pd
        >>> t = infer_task(pd.Series(["a", "b", "a"]), target="y")
        >>> t.kind, t.classes, t.n_outputs
        ('binary', ['a', 'b'], 1)
    """

    kind: TaskKind
    target: str
    classes: list[Any] | None = None
    y_mean: float = 0.0
    y_std: float = 1.0
    loss: Literal["auto", "mse", "mae", "huber"] = "auto"
    class_counts: list[int] = field(default_factory=list)
    # Temperature scaling of the logits (issue #20): fitted on the validation rows when it lowers their
    # log loss (dlpipe.evaluation.calibration); 1.0 = uncalibrated. Applied in `decode`, so predict,
    # evaluate and the server all give the calibrated probabilities; labels never change.
    temperature: float = 1.0

    @property
    def is_classification(self) -> bool:
        return self.kind in ("binary", "multiclass")

    @property
    def n_outputs(self) -> int:
        return len(self.classes or ()) if self.kind == "multiclass" else 1

    # --------------------------------------------------------------- targets
    def encode(self, y: pd.Series | np.ndarray | list[Any], *, what: str = "target") -> np.ndarray:
        """Labels/values → training targets: (N, 1) float32 for regression/binary, (N,) int64 codes for multiclass."""
        import pandas as pd

        series = (
            y
            if isinstance(y, pd.Series)
            else pd.Series(list(np.asarray(y).tolist()) if isinstance(y, np.ndarray) else y)
        )
        if self.kind == "regression":
            values = pd.to_numeric(series, errors="coerce").to_numpy(np.float64)
            if np.isnan(values).any():
                bad = series[np.isnan(values)].iloc[0]
                raise InvalidTargetError(
                    f"{what} {self.target!r} must be numeric for regression but holds {bad!r}; clean the target or pass task='multiclass'."
                )
            check_numbers(values, self.target, series.index, what=what)
            scaled = (values - self.y_mean) / self.y_std
            check_scaled(scaled[:, None], values[:, None], [self.target], series.index)
            return scaled.astype(np.float32)[:, None]
        assert self.classes is not None
        lookup = {_label_key(c): i for i, c in enumerate(self.classes)}
        keys = [_label_key(v) for v in series.tolist()]
        unknown = sorted({k for k in keys if k not in lookup}, key=str)
        if unknown:
            raise InvalidTargetError(
                f"{what} {self.target!r} holds labels not seen in training: {format_names(unknown)}; known labels are: {format_names(self.classes)}."
            )
        codes = np.array([lookup[k] for k in keys], dtype=np.int64)
        return codes.astype(np.float32)[:, None] if self.kind == "binary" else codes

    def fit_target(self, y_encoded_unscaled: np.ndarray) -> None:
        """Fit the regression target's mean/std on training rows (the loss then sees unit scale)."""
        if self.kind == "regression":
            y = np.asarray(y_encoded_unscaled, dtype=np.float64)
            # Values that :meth:`encode` refuses (inf, beyond float32) must not overflow the statistics
            # first: encode then names their rows.
            y = y[np.isfinite(y) & (np.abs(y) <= FLOAT32_MAX)]
            if len(y) == 0:
                return
            self.y_mean = float(np.mean(y))
            std = float(np.std(y))
            self.y_std = std if std > 1e-12 else 1.0

    def class_weights(self, y_train: np.ndarray) -> np.ndarray | None:
        """``class_weight="balanced"``: n_samples / (n_classes * count_c) per class."""
        if not self.is_classification:
            return None
        codes = y_train.reshape(-1).astype(np.int64)
        counts = np.bincount(codes, minlength=max(self.n_outputs, 2)).astype(np.float64)
        counts[counts == 0] = 1.0
        return len(codes) / (len(counts) * counts)

    # --------------------------------------------------------------- loss
    def loss_fn(
        self, class_weights: np.ndarray | None = None, device: torch.device | None = None
    ) -> LogitLoss:
        """The loss on logits for this task (it also knows its gradient, for the engine's fast path)."""
        import torch

        from dlpipe.tasks.losses import BCEWithLogitsLoss, CrossEntropyLoss, regression_loss

        if self.kind == "regression":
            return regression_loss(self.loss)
        if self.kind == "binary":
            if class_weights is not None:
                return BCEWithLogitsLoss(
                    torch.tensor(
                        [class_weights[1] / class_weights[0]], dtype=torch.float32, device=device
                    )
                )
            return BCEWithLogitsLoss()
        weight = (
            torch.tensor(class_weights, dtype=torch.float32, device=device)
            if class_weights is not None
            else None
        )
        return CrossEntropyLoss(weight)

    def batch_metrics(
        self, *, roc_auc: bool = False
    ) -> Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]] | None:
        """Cheap on-device metrics for the per-epoch log (accuracy for classification).

        Args:
            roc_auc: A binary task also logs the ROC-AUC (:func:`_roc_auc`; ``val_roc_auc`` for the
                validation rows, which early stopping can monitor). Defaults to `False`.
        """
        if self.kind == "binary":
            if roc_auc:
                return lambda logits, y: {
                    "accuracy": ((logits > 0).float() == y).float().mean(),
                    "roc_auc": _roc_auc(logits, y),
                }
            return lambda logits, y: {"accuracy": ((logits > 0).float() == y).float().mean()}
        if self.kind == "multiclass":
            return lambda logits, y: {"accuracy": (logits.argmax(dim=1) == y).float().mean()}
        return None

    # --------------------------------------------------------------- decoding
    def decode(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits → (predictions in original labels/units, class probabilities or None).

        Raises:
            NonFiniteOutputError: a row's output is NaN or infinite (a prediction is never NaN).
        """
        check_outputs(logits)
        if self.kind == "regression":
            return logits.reshape(-1).astype(np.float64) * self.y_std + self.y_mean, None
        assert self.classes is not None
        if self.temperature != 1.0:
            logits = logits.astype(np.float64) / self.temperature
        if self.kind == "binary":
            p1 = 1.0 / (1.0 + np.exp(-logits.reshape(-1).astype(np.float64)))
            proba = np.column_stack([1.0 - p1, p1])
        else:
            z = logits.astype(np.float64)
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            proba = e / e.sum(axis=1, keepdims=True)
        labels = np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)]
        return labels, proba

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        return cls(**data)


def _roc_auc(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """ROC-AUC of scores ``logits`` (N, 1) or (N,) against 0/1 labels ``y``, on the device (no sync).

    The Mann-Whitney statistic with tied scores given their average rank, so it equals
    ``sklearn.metrics.roc_auc_score(y, logits)``; NaN when ``y`` holds one class only.
    """
    import torch

    # rank sums reach N^2 / 2: float64 keeps them exact beyond float32's 2^24 (MPS has no float64)
    dtype = torch.float32 if logits.device.type == "mps" else torch.float64
    s, t = logits.reshape(-1), y.reshape(-1).to(dtype)
    _, inverse, counts = torch.unique(s, sorted=True, return_inverse=True, return_counts=True)
    # average rank (1-based) of each distinct score: last rank of the group minus half its extra ties
    ranks = (torch.cumsum(counts, 0).to(dtype) - (counts - 1).to(dtype) / 2.0)[inverse]  # (N,)
    n_pos = t.sum()
    n_neg = t.numel() - n_pos
    return ((ranks * t).sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _label_key(value: Any) -> Any:
    """Normalise labels so 1, 1.0 and np.int64(1) match the same class."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if float(value).is_integer() else float(value)
    return str(value)


def infer_task(y: pd.Series, *, target: str, task: str = "auto", loss: str = "auto") -> Task:
    """Infer regression / binary / multiclass from the target's values (``task`` overrides).

    Raises:
        InvalidTargetError: the target has a single class, or cannot serve the requested task.
        InvalidConfigError: ``task`` is not a known task name.
    """
    import pandas as pd

    if task not in ("auto", *TASK_KINDS):
        raise InvalidConfigError(
            f"`task` is {task!r} but must be one of auto, {', '.join(TASK_KINDS)}."
        )
    values = y.dropna()
    n_unique = int(values.nunique())
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    integral = numeric and bool((values == values.round()).all())
    if task == "auto":
        if not numeric:
            task = "binary" if n_unique == 2 else "multiclass"
        elif n_unique == 2:
            task = "binary"
        elif integral and n_unique <= _MAX_INT_CLASSES and n_unique < max(3, len(values) // 5):
            task = "multiclass"
        else:
            task = "regression"
    if task == "regression":
        if not numeric:
            example = values[pd.to_numeric(values, errors="coerce").isna()]
            if len(example):
                raise InvalidTargetError(
                    f"target {target!r} holds text such as {example.iloc[0]!r}, so it cannot be a regression target; pass task='multiclass' or clean the column."
                )
        return Task(kind="regression", target=target, loss=loss)  # type: ignore[arg-type]
    if n_unique < 2:
        only = values.iloc[0] if len(values) else None
        raise InvalidTargetError(
            f"target {target!r} has a single class ({only!r}) in {len(values)} rows; a classifier needs at least two classes, so check the data or choose another target."
        )
    if task == "binary" and n_unique != 2:
        raise InvalidTargetError(
            f"target {target!r} has {n_unique} classes but task='binary' needs exactly 2; pass task='multiclass'."
        )
    keys = sorted({_label_key(v) for v in values.tolist()}, key=lambda k: (isinstance(k, str), k))
    counts = pd.Series([_label_key(v) for v in values.tolist()]).value_counts()
    return Task(
        kind=task,  # type: ignore[arg-type]
        target=target,
        classes=keys,
        class_counts=[int(counts.get(k, 0)) for k in keys],
    )
