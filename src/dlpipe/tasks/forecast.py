"""The forecast task: a Linear(horizon x targets) head trained on scaled values.

| task     | output layer          | loss             | at predict                                   |
|----------|-----------------------|------------------|----------------------------------------------|
| forecast | Linear(horizon * K)   | MSE, MAE, Huber  | reshape (N, horizon, K), inverse the scaler  |

The loss is the run's ``loss``; ``auto`` is MAE for many series (one global model; chosen on
development spans of M1 yearly, docs/series.md) and MSE for one series.

Direct multi-output forecasting predicts all ``horizon`` steps at once; recursive forecasting
trains a one-step model and feeds each prediction back as the newest input row (only possible when
every input column is a target, since other columns' future values are unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dlpipe.core.errors import InvalidConfigError

if TYPE_CHECKING:
    from dlpipe.tasks.losses import LogitLoss

__all__ = ["FORECAST", "ForecastTask"]

FORECAST = "forecast"


@dataclass
class ForecastTask:
    """What a forecaster predicts: target columns, horizon, direct or recursive.

    Example:
        >>> t = ForecastTask(targets=["y"], horizon=3)
        >>> t.n_outputs, t.model_horizon
        (3, 3)
    """

    targets: list[str]
    horizon: int = 1
    recursive: bool = False
    loss: str = "mse"  # mse, mae or huber

    kind = FORECAST

    def __post_init__(self) -> None:
        if not isinstance(self.horizon, int) or self.horizon < 1:
            raise InvalidConfigError(
                f"`horizon` is {self.horizon!r} but must be a positive integer (how many steps ahead to forecast)."
            )

    @property
    def model_horizon(self) -> int:
        """Steps the network itself outputs: 1 for recursive forecasting, else ``horizon``."""
        return 1 if self.recursive else self.horizon

    @property
    def n_outputs(self) -> int:
        return self.model_horizon * len(self.targets)

    def check_recursive(self, input_columns: list[str]) -> None:
        others = [c for c in input_columns if c not in self.targets]
        if self.recursive and others:
            raise InvalidConfigError(
                f"`recursive=True` feeds predictions back as inputs, but the input columns {others} are not forecast, so their future values are unknown; drop `features` or use direct forecasting (recursive=False)."
            )

    def loss_fn(self) -> LogitLoss:
        from dlpipe.tasks.losses import regression_loss

        return regression_loss(self.loss)

    def reshape(self, outputs: np.ndarray) -> np.ndarray:
        """(N, H * K) step-major network outputs -> (N, H, K); NaN or inf outputs are refused (check_outputs)."""
        from dlpipe.data.numbers import check_outputs

        check_outputs(np.asarray(outputs))
        return np.asarray(outputs).reshape(len(outputs), -1, len(self.targets))

    def to_task_dict(self) -> dict[str, Any]:
        """The bundle's ``task`` entry (read by :class:`dlpipe.tasks.Task`, which keeps kind and target)."""
        return {
            "kind": FORECAST,
            "target": self.targets[0],
            "classes": None,
            "y_mean": 0.0,
            "y_std": 1.0,
            "loss": self.loss,
            "class_counts": [],
        }
