"""Callbacks: small objects the trainer calls at fixed points (Keras-style hooks, no positional soup).

Hooks: ``on_fit_start(trainer)``, ``on_epoch_end(trainer, epoch, logs)`` with ``logs`` a flat
``dict[str, float]`` (``val_`` prefix for validation), ``on_batch_end(trainer, step)`` (only called
for callbacks that define it, so the step loop pays nothing otherwise) and ``on_fit_end(trainer, logs)``.
Every callback resets its state in ``on_fit_start``, so one instance can be reused.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any

import torch

from dlpipe.core.errors import InvalidConfigError

if TYPE_CHECKING:
    from dlpipe.training.trainer import Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "ReduceLROnPlateau",
    "CosineSchedule",
    "OneCycleSchedule",
    "ProgressCallback",
    "monitor_mode",
]

_MAX_METRICS = ("accuracy", "auc", "f1", "r2", "precision", "recall")


def monitor_mode(monitor: str) -> str:
    """``"max"`` for scores that grow when better (accuracy, AUC, F1, R²), else ``"min"``."""
    return "max" if any(k in monitor for k in _MAX_METRICS) else "min"


class Callback:
    """Base class; override the hooks you need."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_fit_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        pass


class _Monitor:
    def __init__(self, monitor: str, min_delta: float) -> None:
        self.monitor = monitor
        self.mode = monitor_mode(monitor)
        self.min_delta = min_delta
        self.best = math.inf if self.mode == "min" else -math.inf

    def improved(self, logs: dict[str, float]) -> bool:
        if self.monitor not in logs:
            raise InvalidConfigError(
                f"`monitor` is {self.monitor!r} but the training logs hold {', '.join(sorted(logs))}; monitor one of those."
            )
        value = logs[self.monitor]
        better = (
            value < self.best - self.min_delta
            if self.mode == "min"
            else value > self.best + self.min_delta
        )
        if better:
            self.best = value
        return better


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Args:
        monitor: A key of the epoch logs. Defaults to `"val_loss"`.
        patience: Epochs without improvement before stopping. Defaults to `20`.
        min_delta: The smallest change that counts as improvement. Defaults to `0.0`.
        restore_best_weights: Put back the best epoch's weights at the end. Defaults to `True`.

    Example:
        >>> EarlyStopping(patience=5).patience
        5
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 20,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
    ) -> None:
        if patience < 0:
            raise InvalidConfigError(f"`patience` is {patience!r} but must be >= 0.")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best_weights = restore_best_weights

    def on_fit_start(self, trainer: Trainer) -> None:
        self._mon = _Monitor(self.monitor, self.min_delta)
        self.wait = 0
        self.best_epoch = 0
        self.stopped_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if self._mon.improved(logs):
            self.wait = 0
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_state = {
                    k: v.detach().clone() for k, v in trainer.model.state_dict().items()
                }
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                trainer.stop_training = True

    def on_fit_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        trainer.history.best_epoch = self.best_epoch
        trainer.history.stopped_epoch = self.stopped_epoch
        if self.restore_best_weights and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.5,
        patience: int = 8,
        min_lr: float = 1e-6,
        min_delta: float = 1e-4,
    ) -> None:
        if not 0 < factor < 1:
            raise InvalidConfigError(f"`factor` is {factor!r} but must be between 0 and 1.")
        self.monitor, self.factor, self.patience, self.min_lr, self.min_delta = (
            monitor,
            factor,
            patience,
            min_lr,
            min_delta,
        )

    def on_fit_start(self, trainer: Trainer) -> None:
        self._mon = _Monitor(self.monitor, self.min_delta)
        self.wait = 0

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if self._mon.improved(logs):
            self.wait = 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                # never raise the rate: a start below min_lr stays where it is
                trainer.optimizer.lr = min(
                    trainer.optimizer.lr, max(trainer.optimizer.lr * self.factor, self.min_lr)
                )
                self.wait = 0


class CosineSchedule(Callback):
    """Cosine decay from the initial rate to ``min_factor`` x it over all steps of the fit."""

    def __init__(self, min_factor: float = 0.01) -> None:
        self.min_factor = min_factor

    def on_fit_start(self, trainer: Trainer) -> None:
        self.base = trainer.optimizer.lr
        self.total = max(trainer.total_steps, 1)

    def on_batch_end(self, trainer: Trainer, step: int) -> None:
        t = min(step / self.total, 1.0)
        trainer.optimizer.lr = self.base * (
            self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * t))
        )


class OneCycleSchedule(Callback):
    """Smith's one-cycle: warm up to the peak rate for ``pct_start`` of the steps, then anneal (cosine)."""

    def __init__(
        self, pct_start: float = 0.3, div_factor: float = 25.0, final_div_factor: float = 1e4
    ) -> None:
        self.pct_start, self.div_factor, self.final_div_factor = (
            pct_start,
            div_factor,
            final_div_factor,
        )

    def on_fit_start(self, trainer: Trainer) -> None:
        self.peak = trainer.optimizer.lr
        self.total = max(trainer.total_steps, 1)
        trainer.optimizer.lr = self.peak / self.div_factor

    def on_batch_end(self, trainer: Trainer, step: int) -> None:
        warm = max(int(self.total * self.pct_start), 1)
        start, end = (
            self.peak / self.div_factor,
            self.peak / (self.div_factor * self.final_div_factor),
        )
        if step <= warm:
            a, b, t = start, self.peak, step / warm
        else:
            a, b, t = self.peak, end, min((step - warm) / max(self.total - warm, 1), 1.0)
        trainer.optimizer.lr = b + (a - b) * 0.5 * (1 + math.cos(math.pi * t))


class ProgressCallback(Callback):
    """Per-epoch progress: a Rich live line on a terminal, a few plain lines otherwise, nothing if quiet.

    With Rich, an epoch that runs longer than ``batch_after_s`` also gets a bar of its batches. Only
    then is ``on_batch_end`` defined (the trainer calls per-step hooks only on callbacks that have
    one), so plain and quiet runs pay nothing per step.

    Args:
        mode: ``"auto"`` (Rich on a terminal, plain elsewhere), ``"rich"``, ``"plain"`` or ``"quiet"``. Defaults to `"auto"`.
        batch_after_s: Seconds into an epoch after which the batch bar appears. Defaults to `2.0`.
    """

    def __init__(self, mode: str = "auto", stream: Any = None, batch_after_s: float = 2.0) -> None:
        self.mode = mode
        self.stream = stream
        self.batch_after_s = batch_after_s
        if mode == "rich" or (
            mode == "auto" and getattr(stream or sys.stderr, "isatty", lambda: False)()
        ):
            self.on_batch_end = self._on_batch

    def on_fit_start(self, trainer: Trainer) -> None:
        stream = self.stream or sys.stderr
        mode = self.mode
        if mode == "auto":
            mode = "rich" if getattr(stream, "isatty", lambda: False)() else "plain"
        self._mode = mode
        self._stream = stream
        self._t0 = time.perf_counter()
        self._every = max(1, trainer.epochs // 10)
        self._progress = None
        if mode == "rich":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("epoch"),
                MofNCompleteColumn(),
                BarColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[logs]}"),
                console=Console(file=stream),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=trainer.epochs, logs="")
        self._batch_task: Any = None
        self._epoch_t0 = time.perf_counter()
        self._epoch_step0 = 0
        self._steps = max(1, trainer.total_steps // max(trainer.epochs, 1))

    def _on_batch(self, trainer: Trainer, step: int) -> None:
        if self._progress is None or step & 7:  # look at the clock every 8 steps only
            return
        if self._batch_task is None:
            if time.perf_counter() - self._epoch_t0 < self.batch_after_s:
                return
            self._batch_task = self._progress.add_task(
                "train", total=self._steps, logs="batches of this epoch"
            )
        self._progress.update(
            self._batch_task, completed=min(max(step - self._epoch_step0, 0), self._steps)
        )

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        text = "  ".join(
            f"{k} {v:.4g}" for k, v in logs.items() if k not in ("epoch", "time", "lr")
        )
        self._epoch_t0 = time.perf_counter()
        self._epoch_step0 = epoch * self._steps
        if self._batch_task is not None and self._progress is not None:
            self._progress.update(self._batch_task, completed=0)
        if self._progress is not None:
            self._progress.update(self._task, completed=epoch, logs=text)
        elif self._mode == "plain" and (epoch % self._every == 0 or epoch == 1):
            print(f"epoch {epoch}/{trainer.epochs}  {text}", file=self._stream, flush=True)

    def on_fit_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        if self._progress is not None:
            self._progress.stop()
        elif self._mode == "plain":
            h = trainer.history
            stop = (
                f", stopped early at epoch {h.stopped_epoch} (best {h.best_epoch})"
                if h.stopped_epoch
                else ""
            )
            print(
                f"trained {len(h)} epochs in {time.perf_counter() - self._t0:.2f} s{stop}",
                file=self._stream,
                flush=True,
            )
