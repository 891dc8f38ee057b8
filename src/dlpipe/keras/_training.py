"""What ``fit`` runs on the engine: Keras' optimiser constants, training metrics, the epoch printer, ``History``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dlpipe.keras import callbacks as kcb
from dlpipe.keras._objective import Objective
from dlpipe.keras.optimizers import Optimizer
from dlpipe.training import callbacks as tcb
from dlpipe.training.callbacks import Callback
from dlpipe.training.optim import FlatOptimizer
from dlpipe.training.trainer import TensorData, Trainer, evaluate_tensors

if TYPE_CHECKING:
    from dlpipe.keras.model import Model

__all__ = ["History", "KerasTrainer", "TrainMetrics", "Printer", "LR_CALLBACKS"]

TRAIN_METRIC_ROWS = 4096
LR_CALLBACKS = (
    tcb.ReduceLROnPlateau,
    tcb.CosineSchedule,
    tcb.OneCycleSchedule,
    kcb.LearningRateScheduler,
)


class History:
    """What ``fit`` returns: ``history`` maps each metric (``loss``, ``val_loss``, ``accuracy``...) to per-epoch values.

    When a callback changes the learning rate (``ReduceLROnPlateau``, ``LearningRateScheduler``),
    ``history["lr"]`` (and Keras 3's ``history["learning_rate"]``) holds the rate of each epoch.
    """

    def __init__(
        self,
        records: list[dict[str, float]],
        params: dict[str, Any],
        model: Model,
        with_lr: bool = False,
    ) -> None:
        skip = {"epoch", "time", "lr"}
        keys: list[str] = []
        for r in records:
            keys.extend(k for k in r if k not in skip and k not in keys)
        self.history: dict[str, list[float]] = {
            k: [float(r.get(k, float("nan"))) for r in records] for k in keys
        }
        if with_lr:
            lrs = [float(r.get("lr", float("nan"))) for r in records]
            self.history["lr"] = lrs
            self.history["learning_rate"] = list(lrs)
        self.epoch = list(range(len(records)))
        self.params = params
        self.model = model

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class KerasTrainer(Trainer):
    """The engine with Keras' optimiser constants (epsilon 1e-7, RMSprop rho)."""

    def __init__(self, opt: Optimizer, **kwargs: Any) -> None:
        super().__init__(
            learning_rate=opt.learning_rate,
            optimizer=opt.kind,
            momentum=opt.momentum,
            nesterov=opt.nesterov,
            weight_decay=opt.weight_decay,
            **kwargs,
        )
        self.keras_opt = opt

    def make_optimizer(self, model: nn.Module) -> FlatOptimizer:
        o = self.keras_opt
        return FlatOptimizer(
            model.parameters(),
            o.kind,  # type: ignore[arg-type]
            learning_rate=self.learning_rate,
            momentum=o.momentum,
            nesterov=o.nesterov,
            weight_decay=o.weight_decay,
            betas=(o.beta_1, o.beta_2),
            eps=o.epsilon,
            alpha=o.rho,
        )


class TrainMetrics(Callback):
    """Keras logs metrics on the training data too: measured at epoch end, in eval mode, on up to 4,096 rows."""

    def __init__(self, data: TensorData, objective: Objective) -> None:
        n = min(len(data), TRAIN_METRIC_ROWS)
        self.data = TensorData(tuple(t[:n] for t in data.inputs), data.y[:n])
        self.objective = objective

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        values = evaluate_tensors(
            trainer.model, self.objective, self.data.to(trainer.device), self.objective.metrics
        )
        values.pop("loss")
        numbers = torch.stack([v.float() for v in values.values()]).tolist() if values else []
        new = dict(zip(values, numbers))
        # Keras' key order: loss, metrics, val_loss, val_metrics
        ordered = (
            {k: logs[k] for k in ("epoch", "loss") if k in logs}
            | new
            | {k: v for k, v in logs.items() if k not in ("epoch", "loss")}
        )
        logs.clear()
        logs.update(ordered)
        trainer.history.records[-1] = dict(ordered)


class Printer(Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        parts = " - ".join(
            f"{k}: {v:.4f}" for k, v in logs.items() if k not in ("epoch", "time", "lr")
        )
        print(
            f"Epoch {epoch}/{self.epochs} - {logs.get('time', 0.0):.2f}s - {parts}",
            file=sys.stdout,
            flush=True,
        )
