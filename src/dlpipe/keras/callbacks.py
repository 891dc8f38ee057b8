"""Keras callbacks with Keras' defaults, running on dlpipe's trainer hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlpipe.core.errors import InvalidConfigError
from dlpipe.training import callbacks as _cb
from dlpipe.training.callbacks import _Monitor

if TYPE_CHECKING:
    from dlpipe.keras.model import Model
    from dlpipe.training.trainer import Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "ReduceLROnPlateau",
    "ModelCheckpoint",
    "LearningRateScheduler",
]


def _reject(where: str, unknown: dict[str, Any], known: list[str]) -> None:
    if unknown:
        from dlpipe.keras._layer import unknown_keywords

        raise unknown_keywords(where, unknown, known)


def _mode(mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise InvalidConfigError(f"`mode` is {mode!r} but must be 'auto', 'min' or 'max'.")
    return mode


def _set_mode(mon: _Monitor, mode: str) -> None:
    if mode != "auto":
        mon.mode = mode
        mon.best = float("inf") if mode == "min" else float("-inf")


class Callback:
    """Keras' base class for your own hooks: override ``on_epoch_end(self, epoch, logs)``,
    ``on_train_begin(self, logs)`` or ``on_train_end(self, logs)``; ``self.model`` is the Keras model."""

    model: Model

    def set_model(self, model: Model) -> None:
        self.model = model

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        pass

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        pass


class KerasHooks(_cb.Callback):
    """Runs a Keras-style :class:`Callback` on the trainer's hooks (Keras counts epochs from 0)."""

    def __init__(self, callback: Callback) -> None:
        self.callback = callback

    def on_fit_start(self, trainer: Trainer) -> None:
        self.callback.on_train_begin({})

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        self.callback.on_epoch_end(epoch - 1, logs)

    def on_fit_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        self.callback.on_train_end(logs)


class EarlyStopping(_cb.EarlyStopping):
    """Keras' EarlyStopping: stop after ``patience`` epochs without improvement of ``monitor``."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
        **unknown: Any,
    ) -> None:
        _reject(
            "`EarlyStopping`",
            unknown,
            [
                "monitor",
                "min_delta",
                "patience",
                "verbose",
                "mode",
                "baseline",
                "restore_best_weights",
                "start_from_epoch",
            ],
        )
        if baseline is not None or start_from_epoch != 0:
            raise InvalidConfigError(
                "`EarlyStopping(baseline=..., start_from_epoch=...)` are not supported by dlpipe.keras; leave them out."
            )
        super().__init__(
            monitor=monitor,
            patience=patience,
            min_delta=abs(min_delta),
            restore_best_weights=restore_best_weights,
        )
        self.mode = _mode(mode)

    def on_fit_start(self, trainer: Trainer) -> None:
        super().on_fit_start(trainer)
        _set_mode(self._mon, self.mode)


class ReduceLROnPlateau(_cb.ReduceLROnPlateau):
    """Keras' ReduceLROnPlateau: multiply the rate by ``factor`` after ``patience`` stalled epochs."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        **unknown: Any,
    ) -> None:
        _reject(
            "`ReduceLROnPlateau`",
            unknown,
            ["monitor", "factor", "patience", "verbose", "mode", "min_delta", "cooldown", "min_lr"],
        )
        if cooldown != 0:
            raise InvalidConfigError(
                "`ReduceLROnPlateau(cooldown=...)` is not supported by dlpipe.keras; leave it out."
            )
        super().__init__(
            monitor=monitor, factor=factor, patience=patience, min_lr=min_lr, min_delta=min_delta
        )
        self.mode = _mode(mode)

    def on_fit_start(self, trainer: Trainer) -> None:
        super().on_fit_start(trainer)
        _set_mode(self._mon, self.mode)


class ModelCheckpoint(_cb.Callback):
    """Save the model (a bundle; with ``save_weights_only`` a weights file) after each epoch, or only when ``monitor`` improves.

    ``filepath`` may hold ``{epoch}`` and log keys, as in Keras: ``"ckpt/e{epoch:02d}"``.
    """

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        mode: str = "auto",
        save_weights_only: bool = False,
        save_freq: Any = "epoch",
        initial_value_threshold: float | None = None,
        **unknown: Any,
    ) -> None:
        _reject(
            "`ModelCheckpoint`",
            unknown,
            [
                "filepath",
                "monitor",
                "verbose",
                "save_best_only",
                "mode",
                "save_weights_only",
                "save_freq",
                "initial_value_threshold",
            ],
        )
        if save_freq != "epoch" or initial_value_threshold is not None:
            raise InvalidConfigError(
                "`ModelCheckpoint` saves once per epoch here; leave `save_freq` and `initial_value_threshold` out."
            )
        self.filepath = str(filepath)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.save_weights_only = bool(save_weights_only)
        self.mode = _mode(mode)
        self.model: Model | None = None

    def set_model(self, model: Model) -> None:
        self.model = model

    def on_fit_start(self, trainer: Trainer) -> None:
        self._mon = _Monitor(self.monitor, 0.0)
        _set_mode(self._mon, self.mode)
        self.saved: list[str] = []

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if self.save_best_only and not self._mon.improved(logs):
            return
        assert self.model is not None, "fit() sets the model"
        path = self.filepath.format(**{**logs, "epoch": epoch})
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        self.saved.append(path)


class LearningRateScheduler(_cb.Callback):
    """Keras' LearningRateScheduler: ``schedule(epoch, lr) -> new lr`` before each epoch (epochs from 0).

    Its rate of each epoch is in ``history.history["lr"]``.
    """

    def __init__(self, schedule: Any, verbose: int = 0, **unknown: Any) -> None:
        _reject("`LearningRateScheduler`", unknown, ["schedule", "verbose"])
        if not callable(schedule):
            raise InvalidConfigError(
                f"`LearningRateScheduler(schedule=...)` is {schedule!r} but must be a function (epoch, lr) -> lr."
            )
        self.schedule = schedule

    def _set(self, trainer: Trainer, epoch: int) -> None:
        lr = self.schedule(epoch, trainer.optimizer.lr)
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
            raise InvalidConfigError(
                f"the learning-rate schedule returned {lr!r} for epoch {epoch}; it must return a positive number."
            )
        trainer.optimizer.lr = float(lr)

    def on_fit_start(self, trainer: Trainer) -> None:
        self._set(trainer, 0)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if epoch < trainer.epochs:
            self._set(trainer, epoch)  # the trainer counts from 1: this sets epoch `epoch` (from 0)
