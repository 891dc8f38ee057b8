"""The callbacks every fitter builds from a TrainConfig: early stopping, an LR schedule, progress."""

from __future__ import annotations

from dlpipe.core.config import TrainConfig
from dlpipe.training.callbacks import (
    Callback,
    CosineSchedule,
    EarlyStopping,
    OneCycleSchedule,
    ProgressCallback,
    ReduceLROnPlateau,
)

__all__ = ["standard_callbacks"]


def standard_callbacks(tc: TrainConfig, has_val: bool, progress: str, *, plateau_divisor: int = 2, plateau_default: int = 10) -> list[Callback]:
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
