"""Keras' weight and activity penalties: ``regularizers.l1``, ``l2``, ``l1_l2``.

A layer's ``kernel_regularizer``, ``bias_regularizer``, ``recurrent_regularizer`` and
``activity_regularizer`` add their penalty to the training loss, as Keras 3 does: ``l2(0.001)`` on a
kernel adds ``0.001 * sum(kernel ** 2)`` to every batch's loss (and to ``evaluate``'s loss, as in
Keras); an activity penalty is computed on the layer's output for the batch.

Example:
    >>> import torch
    >>> float(l2(0.5)(torch.tensor([1.0, 2.0])))
    2.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from dlpipe.core.errors import InvalidConfigError, suggest

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "resolve_regularizer"]


@dataclass(frozen=True)
class Regularizer:
    """``l1 * sum(|w|) + l2 * sum(w ** 2)``; the config is JSON (saved with the model)."""

    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self) -> None:
        for name in ("l1", "l2"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise InvalidConfigError(
                    f"regularizer factor `{name}` is {value!r} but must be a number >= 0, e.g. regularizers.l2(0.001)."
                )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(())
        if self.l1:
            total = total + self.l1 * x.abs().sum()
        if self.l2:
            total = total + self.l2 * x.square().sum()
        return total

    def get_config(self) -> dict[str, float]:
        return {"l1": float(self.l1), "l2": float(self.l2)}


def L1(l1: float = 0.01) -> Regularizer:  # noqa: N802 - Keras' class names
    return Regularizer(l1=l1)


def L2(l2: float = 0.01) -> Regularizer:  # noqa: N802
    return Regularizer(l2=l2)


def L1L2(l1: float = 0.0, l2: float = 0.0) -> Regularizer:  # noqa: N802
    return Regularizer(l1=l1, l2=l2)


def l1(l1: float = 0.01) -> Regularizer:
    """``l1 * sum(|w|)``; Keras' default factor 0.01."""
    return Regularizer(l1=l1)


def l2(l2: float = 0.01) -> Regularizer:
    """``l2 * sum(w ** 2)``; Keras' default factor 0.01."""
    return Regularizer(l2=l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> Regularizer:
    """Both penalties; Keras' default factors 0.01 each."""
    return Regularizer(l1=l1, l2=l2)


_BY_NAME = {"l1": l1, "l2": l2, "l1_l2": l1_l2}


def get(identifier: Any) -> Regularizer | None:
    """A regularizer from an object, a name (``"l2"``: default factor) or its saved config."""
    return resolve_regularizer(identifier, "regularizer")


def resolve_regularizer(value: Any, where: str) -> Regularizer | None:
    if value is None or isinstance(value, Regularizer):
        return value
    if isinstance(value, str) and value.lower() in _BY_NAME:
        return _BY_NAME[value.lower()]()
    if isinstance(value, dict) and set(value) <= {"l1", "l2"}:
        return Regularizer(**value)
    raise InvalidConfigError(
        f"`{where}` is {value!r}{suggest(str(value).lower(), _BY_NAME)} but must be regularizers.l1(...), "
        "regularizers.l2(...), regularizers.l1_l2(...) or one of the names 'l1', 'l2', 'l1_l2'."
    )
