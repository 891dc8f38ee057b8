"""The one place where ``auto`` settings get their values (and the per-kind defaults behind them).

Every run (``dlpipe train``, ``dl.train``, a tuning trial) resolves ``epochs``, ``batch_size``,
``learning_rate`` and ``lookback`` here, so one key means one thing for every kind of data:

=================  ========================================================================================
key                ``auto`` means
=================  ========================================================================================
``batch_size``     from the training rows: 32 below 2,000, 64 below 10,000, 128 below 50,000, else 256
                   (a recipe may fix its own: a GAN trains on 64)
``epochs``         enough for ~4,000 steps, between 50 and 1,000 (early stopping usually ends sooner);
                   images: ~1,500 steps (one one-cycle schedule) between 4 and 60; a GAN: 100
``learning_rate``  Smith's range test on a throw-away copy of the model for every kind trained on one loss;
                   a GAN (two networks, no single loss): DCGAN's 2e-4
``lookback``       series: the rows the model sees, from the series length (:func:`auto_lookback`)
=================  ========================================================================================

A number given for a key is used as given. ``learning_rate`` has a numeric default (1e-3); a recipe
may name its own default for when the user gave none (a GAN: 2e-4).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dlpipe.core.config import RunConfig

if TYPE_CHECKING:
    from dlpipe.pipeline.recipe import Prepared, Recipe

__all__ = [
    "Settings",
    "resolve_settings",
    "resolve_lookback",
    "auto_batch_size",
    "auto_epochs",
    "RANGE_TEST",
]

RANGE_TEST = "range_test"  # a recipe's auto_learning_rate: run the range test


@dataclass(frozen=True)
class Settings:
    """The engine's resolved numbers for one run; ``find_learning_rate``: run the range test for the rate."""

    epochs: int
    batch_size: int
    learning_rate: float
    find_learning_rate: bool


def auto_batch_size(n_train: int) -> int:
    if n_train < 2_000:
        return 32
    if n_train < 10_000:
        return 64
    if n_train < 50_000:
        return 128
    return 256


def auto_epochs(n_train: int, batch_size: int, steps: int = 4_000) -> int:
    """Enough epochs for ~``steps`` optimiser steps (4,000), between 50 and 1,000; early stopping
    usually ends sooner."""
    per_epoch = max(1, math.ceil(n_train / batch_size))
    return int(min(1000, max(50, math.ceil(steps / per_epoch))))


def resolve_settings(
    cfg: RunConfig,
    recipe: Recipe,
    n_train: int,
    *,
    overrides: dict[str, Any] | None = None,
    prep: Prepared | None = None,
) -> Settings:
    """``epochs``, ``batch_size`` and ``learning_rate`` for ``n_train`` training rows (windows, images...).

    ``overrides`` (a tuning trial's sampled values) win over the config; ``prep`` (the prepared data)
    lets a kind pick its own default rate from it (many series: :meth:`SeriesRecipe.learning_rate_for`).
    """
    tc, given = cfg.train, dict(overrides or {})
    batch = given.get("batch_size", tc.batch_size)
    batch_size = int(recipe.auto_batch_size(n_train) if batch == "auto" else batch)
    epochs_value = given.get("epochs", tc.epochs)
    epochs = int(
        recipe.auto_epochs(n_train, batch_size) if epochs_value == "auto" else epochs_value
    )
    lr: Any = given.get("learning_rate", tc.learning_rate)
    set_by_user = "learning_rate" in given or "learning_rate" in tc.model_fields_set
    find = False
    own = recipe.learning_rate_for(prep)
    if lr == "auto":
        rule = recipe.auto_learning_rate
        find = rule == RANGE_TEST
        lr = (own or 1e-3) if find else float(rule)
    elif not set_by_user and own is not None:
        lr = own  # the kind's own default when none was given (a GAN's 2e-4)
    return Settings(
        epochs=epochs, batch_size=batch_size, learning_rate=float(lr), find_learning_rate=find
    )


def resolve_lookback(
    cfg: RunConfig, n_rows: int, *, lengths: list[int] | None = None, horizon: int = 1
) -> int:
    """``series.lookback``: as given, or from the series length.

    With many series (``lengths``, one global model) ``auto`` is 3 x the horizon, at most the
    median series length (at least 2); one series: a tenth of it, 2 to 30 rows.
    """
    from dlpipe.core.errors import InvalidConfigError
    from dlpipe.data.series import auto_lookback

    value = cfg.series.lookback
    if value == "auto" and lengths:
        lookback: Any = max(2, min(3 * horizon, int(statistics.median(lengths))))
    else:
        lookback = auto_lookback(n_rows) if value == "auto" else value
    if not isinstance(lookback, int) or lookback < 1:
        raise InvalidConfigError(
            f"`lookback` is {lookback!r} but must be a positive integer (rows the model sees) or 'auto'."
        )
    return lookback
