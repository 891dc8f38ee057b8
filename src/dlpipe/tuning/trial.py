"""One tuning trial: the table recipe of :func:`dlpipe.train` with a pruning callback on the validation loss.

Everything that does not depend on the trial's parameters (split, fitted preprocessing, the
tensors) is prepared once per study by :func:`dlpipe.tuning.study.tune` and reused here; a trial
only builds its model and trains it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dlpipe.core.config import RunConfig
from dlpipe.core.runtime import require
from dlpipe.training.callbacks import Callback
from dlpipe.training.trainer import TensorData, Trainer

__all__ = ["PruningCallback", "train_trial", "study_tensors", "trial_model"]


class PruningCallback(Callback):
    """Report ``monitor`` to the Optuna trial each epoch; raise ``TrialPruned`` when the pruner says so.

    The step is the epoch, or with ``cost_per_epoch`` the training compute spent so far in those
    units (``round(epoch * cost_per_epoch)``, at least one more than the last step), so a pruner that
    compares trials at equal steps compares them at equal cost.
    """

    def __init__(self, trial: Any, monitor: str = "val_loss", cost_per_epoch: float | None = None) -> None:
        self.trial, self.monitor, self.cost_per_epoch = trial, monitor, cost_per_epoch
        self.step = 0

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        optuna = require("optuna", extra="tune")
        value = logs[self.monitor]
        self.step = epoch if self.cost_per_epoch is None else max(self.step + 1, round(epoch * self.cost_per_epoch))
        self.trial.report(value if np.isfinite(value) else float("inf"), self.step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} ({self.monitor} {value:.4g})")


def _tensors(split: tuple[np.ndarray, np.ndarray, np.ndarray]) -> TensorData:
    x_num, x_cat, y = split
    inputs = (torch.from_numpy(x_num),) + ((torch.from_numpy(x_cat),) if x_cat.shape[1] else ())
    return TensorData(inputs, torch.from_numpy(y))


def study_tensors(prep: dict[str, Any]) -> dict[str, TensorData]:
    """The train and validation tensors, made once per study and shared by every trial."""
    return {"train": _tensors(prep["splits"]["train"]), "val": _tensors(prep["splits"]["val"])}


def trial_model(cfg: RunConfig, prep: dict[str, Any], params: dict[str, Any]) -> torch.nn.Module:
    """The network a trial trains: the table MLP of :func:`dlpipe.train` with the trial's sizes (seeded as dlpipe.train seeds it).

    With the default space it is a plain Linear/activation/Dropout stack, which the engine trains on
    its MLP fast path (training/fastpath.py); tests/tuning checks that sampled trials stay eligible.
    """
    from dlpipe.models.mlp import default_hidden, embedding_dim
    from dlpipe.models.registry import build_model

    task, pre = prep["task"], prep["preprocessor"]
    cards = pre.cardinalities
    spec = {
        "family": cfg.model.family, "n_numeric": pre.n_numeric, "n_outputs": task.n_outputs,
        "hidden": list(params.get("hidden") or cfg.model.hidden or default_hidden(prep["split_rows"]["train"])),
        "activation": params.get("activation", cfg.model.activation),
        "dropout": float(params.get("dropout", cfg.model.dropout)),
        "batch_norm": bool(params.get("batch_norm", cfg.model.batch_norm)),
        "cardinalities": cards, "embedding_dims": [cfg.model.embedding_dim or embedding_dim(k) for k in cards],
    }
    torch.manual_seed(cfg.seed)  # as dlpipe.train does, so the retrained best trial reproduces this one
    return build_model(spec)


def model_cost(model: torch.nn.Module) -> int:
    """Multiply-adds per row of the model's dense layers (what an epoch of a table MLP costs, up to a constant)."""
    return int(sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)))


def train_trial(trial: Any, cfg: RunConfig, prep: dict[str, Any], params: dict[str, Any], *,
                max_epochs: int | None = None, tensors: dict[str, TensorData] | None = None,
                cost_unit: float | None = None) -> tuple[float, float | None, int]:
    """Train one configuration on the prepared split; returns (best val_loss, val score at that epoch, epochs run).

    ``max_epochs`` caps the trial's epochs (the study passes the default config's budget, so no
    trial may train longer than the configuration it is compared with). Trials train on one CPU
    thread unless the config sets ``threads``: on a busy machine a two-thread matrix product of a
    wide layer was measured ~20x slower than one thread, and workers give parallelism instead.
    """
    from dlpipe.pipeline._callbacks import standard_callbacks
    from dlpipe.pipeline.settings import auto_batch_size, auto_epochs

    task, splits = prep["task"], prep["splits"]
    n_train = prep["split_rows"]["train"]
    model = trial_model(cfg, prep, params)
    cost_per_epoch = None if cost_unit is None else model_cost(model) / cost_unit
    if cost_per_epoch is not None:
        trial.set_user_attr("cost_per_epoch", cost_per_epoch)
    tc = cfg.train
    batch_size = int(params.get("batch_size", tc.batch_size if tc.batch_size != "auto" else auto_batch_size(n_train)))
    epochs = tc.epochs if tc.epochs != "auto" else auto_epochs(n_train, batch_size)
    if max_epochs is not None:
        epochs = min(epochs, max_epochs)
    lr = params.get("learning_rate", tc.learning_rate if tc.learning_rate != "auto" else 1e-3)
    callbacks: list[Callback] = [*standard_callbacks(tc, True, "quiet"), PruningCallback(trial, "val_loss", cost_per_epoch)]
    trainer = Trainer(
        epochs=epochs, batch_size=batch_size, learning_rate=float(lr),
        optimizer=params.get("optimizer", tc.optimizer), momentum=float(params.get("momentum", tc.momentum)),
        nesterov=tc.nesterov, weight_decay=float(params.get("weight_decay", tc.weight_decay)), clip_grad=tc.clip_grad,
        seed=cfg.seed, device=tc.device, threads=tc.threads if tc.threads is not None else 1, callbacks=callbacks,
    )
    data = tensors or study_tensors(prep)
    class_weights = task.class_weights(splits["train"][2]) if tc.class_weight == "balanced" else None
    history = trainer.fit(model, task.loss_fn(class_weights, device=trainer.device), data["train"], data["val"],
                          metrics_fn=task.batch_metrics())
    losses = [r["val_loss"] for r in history.records]
    best = int(np.nanargmin(losses))
    score = history.records[best].get("val_accuracy")
    return float(losses[best]), (None if score is None else float(score)), len(history)
