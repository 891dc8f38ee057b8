"""One tuning trial: the table recipe's run (:func:`dlpipe.pipeline.recipe.run_recipe`) with the trial's
parameters, a pruning callback on the validation loss, and no test evaluation.

Everything that does not depend on the trial's parameters (split, fitted preprocessing, the
tensors) is prepared once per study by :meth:`~dlpipe.pipeline._fit.TableRecipe.prepare` and reused
here. A trial applies its network parameters to a copy of the config and builds the model with the
recipe's ``build``; its epochs, batch size and learning rate come from
:func:`~dlpipe.pipeline.settings.resolve_settings` (sampled values as overrides) and its engine from
:func:`~dlpipe.pipeline.recipe.trainer_from_config`, so it trains the network ``dlpipe train`` would
train with the same settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dlpipe.core.config import RunConfig
from dlpipe.core.runtime import require
from dlpipe.training.callbacks import Callback
from dlpipe.training.trainer import Trainer

if TYPE_CHECKING:
    from dlpipe.pipeline.recipe import Prepared, RunContext

__all__ = ["PruningCallback", "train_trial", "trial_config", "trial_model"]


class PruningCallback(Callback):
    """Report ``monitor`` to the Optuna trial each epoch; raise ``TrialPruned`` when the pruner says so.

    The step is the epoch, or with ``cost_per_epoch`` the training compute spent so far in those
    units (``round(epoch * cost_per_epoch)``, at least one more than the last step), so a pruner that
    compares trials at equal steps compares them at equal cost.
    """

    def __init__(
        self, trial: Any, monitor: str = "val_loss", cost_per_epoch: float | None = None
    ) -> None:
        self.trial, self.monitor, self.cost_per_epoch = trial, monitor, cost_per_epoch
        self.step = 0

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        optuna = require("optuna", extra="tune")
        value = logs[self.monitor]
        self.step = (
            epoch
            if self.cost_per_epoch is None
            else max(self.step + 1, round(epoch * self.cost_per_epoch))
        )
        self.trial.report(value if np.isfinite(value) else float("inf"), self.step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} ({self.monitor} {value:.4g})")


def trial_config(cfg: RunConfig, params: Mapping[str, Any]) -> RunConfig:
    """``cfg`` with the trial's network parameters (``hidden``, ``activation``, ``dropout``, ``batch_norm``).

    The training parameters (``learning_rate``, ``batch_size``, ``optimizer``, ``momentum``,
    ``weight_decay``) go to :func:`resolve_settings` and :func:`trainer_from_config` instead.
    An empty ``hidden`` (a space whose ``n_layers`` reaches 0) keeps the config's, as the retrain does.
    """
    update: dict[str, Any] = {}
    if params.get("hidden"):
        update["hidden"] = list(params["hidden"])
    if "activation" in params:
        update["activation"] = params["activation"]
    if "dropout" in params:
        update["dropout"] = float(params["dropout"])
    if "batch_norm" in params:
        update["batch_norm"] = bool(params["batch_norm"])
    return cfg.model_copy(update={"model": cfg.model.model_copy(update=update)})


def _context(cfg: RunConfig, prepared: Prepared, params: Mapping[str, Any]) -> RunContext:
    """The trial's run context with its model built by the table recipe (seeded as run_recipe seeds it)."""
    from dlpipe.pipeline._fit import TableRecipe
    from dlpipe.pipeline.recipe import RunContext

    ctx = RunContext(ds=None, cfg=trial_config(cfg, params), progress="quiet", prep=prepared)
    torch.manual_seed(
        cfg.seed
    )  # as run_recipe does, so the retrained best trial starts from these weights
    ctx.model, ctx.spec = TableRecipe().build(ctx)
    return ctx


def trial_model(
    cfg: RunConfig, prepared: Prepared, params: Mapping[str, Any]
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network a trial trains and its spec: what the table recipe builds from ``cfg`` with the trial's sizes.

    With the default space it is a plain Linear/activation/Dropout stack, which the engine trains on
    its MLP fast path (training/fastpath.py); tests/tuning checks that sampled trials stay eligible.
    """
    ctx = _context(cfg, prepared, params)
    return ctx.model, ctx.spec


def model_cost(model: torch.nn.Module) -> int:
    """Multiply-adds per row of the model's dense layers (what an epoch of a table MLP costs, up to a constant)."""
    return int(
        sum(
            m.in_features * m.out_features
            for m in model.modules()
            if isinstance(m, torch.nn.Linear)
        )
    )


def train_trial(
    trial: Any,
    cfg: RunConfig,
    prepared: Prepared,
    params: Mapping[str, Any],
    *,
    max_epochs: int | None = None,
    cost_unit: float | None = None,
) -> tuple[float, float | None, int]:
    """Train one configuration on the prepared split; returns (best val_loss, val score at that epoch, epochs run).

    ``max_epochs`` caps the trial's epochs (the study passes the default config's budget, so no
    trial may train longer than the configuration it is compared with). Trials train on one CPU
    thread unless the config sets ``threads``: on a busy machine a two-thread matrix product of a
    wide layer was measured ~20x slower than one thread, and workers give parallelism instead.
    ``learning_rate: auto`` (not sampled) runs the range test as ``dlpipe train`` does; the rate it
    chose is the trial's ``learning_rate`` user attribute.
    """
    from dlpipe.pipeline._callbacks import standard_callbacks
    from dlpipe.pipeline._fit import TableRecipe
    from dlpipe.pipeline.recipe import range_test, trainer_from_config
    from dlpipe.pipeline.settings import resolve_settings

    recipe = TableRecipe()
    ctx = _context(cfg, prepared, params)
    cost_per_epoch = None if cost_unit is None else model_cost(ctx.model) / cost_unit
    if cost_per_epoch is not None:
        trial.set_user_attr("cost_per_epoch", cost_per_epoch)
    n_train = prepared.n_train if prepared.n_train is not None else len(prepared.train)
    overrides = {k: params[k] for k in ("learning_rate", "batch_size") if k in params}
    ctx.settings = resolve_settings(ctx.cfg, recipe, n_train, overrides=overrides, prep=prepared)
    tc = ctx.cfg.train
    epochs = ctx.settings.epochs if max_epochs is None else min(ctx.settings.epochs, max_epochs)
    trainer = trainer_from_config(
        ctx.cfg,
        ctx.settings,
        epochs=epochs,
        threads=tc.threads if tc.threads is not None else 1,
        optimizer=params.get("optimizer"),
        momentum=float(params["momentum"]) if "momentum" in params else None,
        weight_decay=float(params["weight_decay"]) if "weight_decay" in params else None,
    )
    ctx.trainer = trainer
    ctx.loss_fn = recipe.loss(ctx)
    model = recipe.fit_model(ctx)
    if (
        range_test(ctx, model, recipe.kind) is not None
    ):  # learning_rate: auto, as dlpipe train runs it
        trial.set_user_attr("learning_rate", trainer.learning_rate)
    monitored = tc.model_copy(
        update={"monitor": recipe.monitor(ctx), "schedule": recipe.schedule(ctx.cfg)}
    )
    trainer.callbacks = [
        *recipe.callbacks(ctx),
        *standard_callbacks(
            monitored,
            True,
            "quiet",
            plateau_divisor=recipe.plateau_divisor,
            plateau_default=recipe.plateau_default,
        ),
        PruningCallback(trial, "val_loss", cost_per_epoch),
    ]
    history = trainer.fit(
        model, ctx.loss_fn, prepared.train, prepared.val, metrics_fn=recipe.metrics_fn(ctx)
    )
    losses = [r["val_loss"] for r in history.records]
    best = int(np.nanargmin(losses))
    score = history.records[best].get("val_accuracy")
    return float(losses[best]), (None if score is None else float(score)), len(history)
