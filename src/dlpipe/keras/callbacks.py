"""Keras callbacks with Keras' defaults, running on dlpipe's trainer hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlpipe.core.errors import InvalidConfigError
from dlpipe.training import callbacks as _cb
from dlpipe.training.callbacks import _Monitor

if TYPE_CHECKING:
    from dlpipe.keras.model import Model
    from dlpipe.training.trainer import Trainer

__all__ = ["Callback", "EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint"]


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
        restore_best_weights: bool = False,
        **_: Any,
    ) -> None:
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
        min_lr: float = 0.0,
        **_: Any,
    ) -> None:
        super().__init__(
            monitor=monitor, factor=factor, patience=patience, min_lr=min_lr, min_delta=min_delta
        )
        self.mode = _mode(mode)

    def on_fit_start(self, trainer: Trainer) -> None:
        super().on_fit_start(trainer)
        _set_mode(self._mon, self.mode)


class ModelCheckpoint(_cb.Callback):
    """Save the model (safe format) after each epoch, or only when ``monitor`` improves.

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
        **_: Any,
    ) -> None:
        self.filepath = str(filepath)
        self.monitor = monitor
        self.save_best_only = save_best_only
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
        self.model.save(path)
        self.saved.append(path)
