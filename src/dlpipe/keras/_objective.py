"""What ``fit`` minimises: each output's Keras loss, sample and class weights, and the regularizers.

Targets travel through the engine as one float32 matrix per batch (``pack``): each output's targets
flattened, side by side, then one column of sample weights. So several outputs, ``sample_weight``
and ``class_weight`` need nothing from the engine, whose batches are row slices of one ``y`` tensor.
The loss follows Keras: per sample, the output's loss averaged over its non-batch axes; times the
sample's weight; averaged over the batch (``sum(w * loss) / n``, Keras' ``sum_over_batch_size``);
summed over outputs with ``loss_weights``; plus every weight regularizer's penalty and the activity
penalties of the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dlpipe.core.errors import InvalidInputError
from dlpipe.keras.losses import Loss
from dlpipe.keras.regularizers import Regularizer

__all__ = ["Output", "Objective"]

MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Output:
    """One model output: its layer name, shape, loss, whether the activation is folded, metrics."""

    name: str
    shape: tuple[int, ...]
    loss: Loss
    fold: bool
    activation: str
    weight: float = 1.0
    metrics: dict[str, MetricFn] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return math.prod(self.shape)

    @property
    def sparse(self) -> bool:
        return self.loss.name == "sparse_categorical_crossentropy"

    @property
    def target_shape(self) -> tuple[int, ...]:
        return self.shape[:-1] if self.sparse else self.shape

    @property
    def target_width(self) -> int:
        return math.prod(self.target_shape)

    def per_sample(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N,) losses: the loss averaged over every non-batch axis, as Keras reduces per sample."""
        n = z.shape[0]
        name = self.loss.name
        if name == "binary_crossentropy":
            out = F.binary_cross_entropy_with_logits(z, y, reduction="none")
        elif name in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
            c = z.shape[-1]
            target = y.reshape(-1).long() if self.sparse else y.reshape(-1, c)
            out = F.cross_entropy(z.reshape(-1, c), target, reduction="none")
        elif name == "mae":
            out = (z - y).abs()
        elif name == "huber":
            out = F.huber_loss(z, y, reduction="none")
        else:
            out = (z - y).square()
        return out.reshape(n, -1).mean(dim=1)


class Objective:
    """The training loss ``(outputs, packed targets) -> scalar`` and the metrics, for every output."""

    def __init__(
        self,
        outputs: list[Output],
        penalties: Callable[[], list[tuple[Regularizer, torch.Tensor]]],
        activity: Callable[[], torch.Tensor | None],
    ) -> None:
        self.outputs = outputs
        self.penalties = penalties
        self.activity = activity
        self.multi = len(outputs) > 1

    # ------------------------------------------------------------------ targets
    def pack(self, ys: list[np.ndarray], weights: np.ndarray | None, n: int) -> torch.Tensor:
        """Targets of every output and the sample weights as one (N, targets + 1) float32 matrix."""
        cols = [y.reshape(n, -1).astype(np.float32) for y in ys]
        w = np.ones((n, 1), np.float32) if weights is None else weights.reshape(n, 1)
        return torch.from_numpy(np.ascontiguousarray(np.concatenate([*cols, w], axis=1)))

    def split(
        self, z: torch.Tensor, y: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Each output's (N, *shape) values and (N, *target_shape) targets, and the (N,) weights."""
        n = z.shape[0]
        zs: list[torch.Tensor] = []
        ts: list[torch.Tensor] = []
        zo = to = 0
        for o in self.outputs:
            if self.multi:
                zs.append(z[:, zo : zo + o.width].reshape(n, *o.shape))
                zo += o.width
            else:
                zs.append(z)
            ts.append(y[:, to : to + o.target_width].reshape(n, *o.target_shape))
            to += o.target_width
        return zs, ts, y[:, -1]

    # ------------------------------------------------------------------ loss and metrics
    def __call__(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        zs, ts, w = self.split(z, y)
        total = z.new_zeros(())
        for o, zi, ti in zip(self.outputs, zs, ts):
            total = total + o.weight * (o.per_sample(zi, ti) * w).mean()
        for reg, weight in self.penalties():
            total = total + reg(weight)
        act = self.activity()
        if act is not None:
            total = total + act
        return total

    def metrics(self, z: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        zs, ts, w = self.split(z, y)
        out: dict[str, torch.Tensor] = {}
        for o, zi, ti in zip(self.outputs, zs, ts):
            if self.multi:
                out[f"{o.name}_loss"] = (o.per_sample(zi, ti) * w).mean()
            for key, fn in o.metrics.items():
                out[f"{o.name}_{key}" if self.multi else key] = fn(zi, ti)
        return out

    @property
    def has_metrics(self) -> bool:
        return self.multi or any(o.metrics for o in self.outputs)


def class_weights(
    class_weight: dict[Any, float], y: np.ndarray, output: Output, what: str = "class_weight"
) -> np.ndarray:
    """Per-row weights from Keras' ``class_weight`` dict ({class index: weight}); classes not named weigh 1."""
    if not isinstance(class_weight, dict) or not class_weight:
        raise InvalidInputError(
            f"`{what}` is {class_weight!r} but must be a dict of class index to weight, e.g. {{0: 1.0, 1: 5.0}}."
        )
    bad = [k for k in class_weight if not isinstance(k, (int, np.integer)) or isinstance(k, bool)]
    values = list(class_weight.values())
    if bad or any(
        not isinstance(v, (int, float, np.number)) or not math.isfinite(v) or v < 0 for v in values
    ):
        raise InvalidInputError(
            f"`{what}` is {class_weight!r} but must map integer class indices to finite weights >= 0, e.g. {{0: 1.0, 1: 5.0}}."
        )
    n = y.shape[0]
    name = output.loss.name
    if name == "sparse_categorical_crossentropy":
        codes = y.reshape(n, -1)[:, 0].astype(np.int64)
    elif name == "categorical_crossentropy":
        codes = y.reshape(n, -1).argmax(axis=1)
    elif name == "binary_crossentropy" and output.width == 1:
        codes = (y.reshape(n) > 0.5).astype(np.int64)
    else:
        raise InvalidInputError(
            f"`{what}` weighs classes, but the model's loss is {name!r} over {output.width} outputs; pass `sample_weight` (one weight per row) instead."
        )
    n_classes = 2 if name == "binary_crossentropy" else output.shape[-1]
    unknown = [int(k) for k in class_weight if not 0 <= int(k) < n_classes]
    if unknown:
        raise InvalidInputError(
            f"`{what}` names the classes {unknown} but the model has classes 0..{n_classes - 1}; use class indices as keys."
        )
    table = np.ones(n_classes, np.float32)
    for k, v in class_weight.items():
        table[int(k)] = float(v)
    return table[codes]
