"""What every fitter shares: the callbacks built from a TrainConfig (early stopping, an LR schedule,
progress) and the training and environment records of metrics.json."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any

import torch
from torch import nn

from dlpipe.core.config import RunConfig, TrainConfig
from dlpipe.training.callbacks import (
    Callback,
    CosineSchedule,
    EarlyStopping,
    OneCycleSchedule,
    ProgressCallback,
    ReduceLROnPlateau,
)
from dlpipe.training.history import History
from dlpipe.training.trainer import Trainer

__all__ = ["environment", "standard_callbacks", "training_record", "versions"]


def standard_callbacks(
    tc: TrainConfig,
    has_val: bool,
    progress: str,
    *,
    plateau_divisor: int = 2,
    plateau_default: int = 10,
) -> list[Callback]:
    """Early stopping (with a validation split), the configured schedule, then the progress display.

    ReduceLROnPlateau waits ``patience // plateau_divisor`` epochs (at least 2), or ``plateau_default``
    when early stopping is off.
    """
    callbacks: list[Callback] = []
    if tc.patience > 0 and has_val:
        callbacks.append(EarlyStopping(tc.monitor, tc.patience, tc.min_delta, tc.restore_best))
    if tc.schedule == "plateau" and has_val:
        wait = max(2, tc.patience // plateau_divisor) if tc.patience else plateau_default
        callbacks.append(ReduceLROnPlateau(tc.monitor, patience=wait))
    elif tc.schedule == "cosine":
        callbacks.append(CosineSchedule())
    elif tc.schedule == "onecycle":
        callbacks.append(OneCycleSchedule())
    callbacks.append(ProgressCallback(progress))
    return callbacks


def training_record(history: History, model: nn.Module) -> dict[str, Any]:
    """metrics.json's record of the training: epochs run, best and stopping epoch, parameters, best validation scores."""
    best = history.records[history.best_epoch - 1] if history.best_epoch else history.records[-1]
    return {
        "epochs_run": len(history),
        "best_epoch": history.best_epoch,
        "stopped_epoch": history.stopped_epoch,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "val": {k[4:]: v for k, v in best.items() if k.startswith("val_")},
    }


def environment(trainer: Trainer, cfg: RunConfig) -> dict[str, Any]:
    """metrics.json's record of where the run trained: device, threads used, versions, seed, and which
    compiled CPU kernels ran (``native_kernels``: ``{"stem": bool, "lstm": bool}``, models/fused.py)."""
    from dlpipe.models.fused import kernels_used

    model = getattr(trainer, "model", None)
    return {
        "device": str(trainer.device),
        "torch_threads": getattr(trainer, "threads_used", torch.get_num_threads()),
        "cpu_count": os.cpu_count(),
        **versions(),
        "seed": cfg.seed,
        "native_kernels": kernels_used(model)
        if isinstance(model, nn.Module)
        else {"stem": False, "lstm": False},
    }


def versions() -> dict[str, str | None]:
    """The versions a run's numbers depend on: python, torch, dlpipe, numpy, pandas, sklearn (None: not installed)."""
    import numpy as np

    from dlpipe import __version__

    found: dict[str, str | None] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "dlpipe": __version__,
        "numpy": np.__version__,
    }
    for name, dist in (("pandas", "pandas"), ("sklearn", "scikit-learn")):
        try:
            found[name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found
